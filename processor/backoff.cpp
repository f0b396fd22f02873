#include "processor/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace eventlite::detail {

std::chrono::milliseconds retry_delay(const RetryPolicy& policy, int failed_attempts,
                                      std::mt19937_64& rng) {
  double wait = static_cast<double>(policy.base.count()) *
                std::pow(policy.factor, std::max(failed_attempts - 1, 0));
  wait = std::min(wait, static_cast<double>(policy.cap.count()));
  if (policy.jitter > 0) {
    std::uniform_real_distribution<double> spread(1.0 - policy.jitter,
                                                  1.0 + policy.jitter);
    wait *= spread(rng);
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(wait)));
}

std::chrono::milliseconds Backoff::next() {
  // No jitter: the generator is never drawn from.
  static thread_local std::mt19937_64 unused;
  failures_ = std::min(failures_ + 1, 62);
  return retry_delay(policy_, failures_, unused);
}

}  // namespace eventlite::detail
