#include "processor/latency.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace eventlite::detail {

namespace {

std::size_t bucket_of(std::chrono::microseconds took) noexcept {
  const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(took.count(), 0));
  return std::min<std::size_t>(static_cast<std::size_t>(std::bit_width(us)), 39);
}

}  // namespace

void LatencyHistogram::Local::record(std::chrono::microseconds took) noexcept {
  ++buckets[bucket_of(took)];
  max = std::max<std::int64_t>(max, took.count());
}

void LatencyHistogram::add(const Local& local) noexcept {
  for (std::size_t i = 0; i < buckets_.size(); ++i)
    if (local.buckets[i])
      buckets_[i].fetch_add(local.buckets[i], std::memory_order_relaxed);
  auto prev = max_.load(std::memory_order_relaxed);
  while (local.max > prev &&
         !max_.compare_exchange_weak(prev, local.max, std::memory_order_relaxed)) {
  }
}

void LatencyHistogram::record(std::chrono::microseconds took) noexcept {
  const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(took.count(), 0));
  const std::size_t bucket =
      std::min<std::size_t>(static_cast<std::size_t>(std::bit_width(us)), 39);
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  auto prev = max_.load(std::memory_order_relaxed);
  while (took.count() > prev &&
         !max_.compare_exchange_weak(prev, took.count(), std::memory_order_relaxed)) {
  }
}

std::chrono::microseconds LatencyHistogram::quantile(double q) const noexcept {
  std::uint64_t total = 0;
  for (const auto& b : buckets_) total += b.load(std::memory_order_relaxed);
  if (total == 0) return std::chrono::microseconds(0);
  const auto want = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i].load(std::memory_order_relaxed);
    if (seen >= std::max<std::uint64_t>(want, 1)) {
      // Bucket i holds values below 2^i microseconds.
      return std::min(std::chrono::microseconds(std::int64_t{1} << i), max());
    }
  }
  return max();
}

}  // namespace eventlite::detail
