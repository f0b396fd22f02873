#pragma once

// Latencies (handler run times, sink round trips) on a log2 scale of microseconds.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace eventlite::detail {

// Handler run times on a log2 scale of microseconds.
// Thread safety: safe to share.
class LatencyHistogram {
 public:
  // Counts per bucket, gathered without atomics by one thread and added at once.
  struct Local {
    std::array<std::uint64_t, 40> buckets{};
    std::int64_t max = 0;
    void record(std::chrono::microseconds took) noexcept;
  };
  void record(std::chrono::microseconds took) noexcept;
  void add(const Local& local) noexcept;
  // The upper bound of the bucket holding quantile `q` (0..1); 0 when empty.
  std::chrono::microseconds quantile(double q) const noexcept;
  std::chrono::microseconds max() const noexcept {
    return std::chrono::microseconds(max_.load(std::memory_order_relaxed));
  }

 private:
  std::array<std::atomic<std::uint64_t>, 40> buckets_{};
  std::atomic<std::int64_t> max_{0};
};

}  // namespace eventlite::detail
