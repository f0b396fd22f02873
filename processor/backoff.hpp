#pragma once

// Waits that grow with each failure: the retry schedule of deliveries (with jitter)
// and the pauses of the processor's own failing steps (without).

#include <chrono>
#include <random>

#include "eventlite/processor.hpp"

namespace eventlite::detail {

// The wait before the retry that follows `failed_attempts` failures:
// min(cap, base * factor^(failed_attempts - 1)), spread by the policy's jitter.
std::chrono::milliseconds retry_delay(const RetryPolicy& policy, int failed_attempts,
                                      std::mt19937_64& rng);

// Exponential backoff with no jitter for one failing mechanism: base, 2 base,
// 4 base... up to cap; reset() after a success.
// Thread safety: one thread at a time.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap) noexcept
      : policy_{.max_attempts = 1, .base = base, .factor = 2.0, .cap = cap, .jitter = 0} {}
  // Counts one more failure and returns the wait before trying again.
  std::chrono::milliseconds next();
  void reset() noexcept { failures_ = 0; }
  int failures() const noexcept { return failures_; }

 private:
  RetryPolicy policy_;
  int failures_ = 0;
};

}  // namespace eventlite::detail
