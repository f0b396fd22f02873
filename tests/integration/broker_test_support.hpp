#pragma once

// What the broker tests share: a sink subscription that retries quickly, and events
// to forward.

#include <chrono>
#include <string>

#include "eventlite/processor.hpp"
#include "eventlite/store.hpp"
#include "test_support.hpp"

namespace eventlite::test {

// One lane (seq order into one broker stream), and retries quick enough that a test
// of a broker coming back does not wait long.
inline SubscriptionOptions sink_options() {
  SubscriptionOptions o;
  o.max_lanes = 1;
  o.retry = RetryPolicy{.max_attempts = 3,
                        .base = std::chrono::milliseconds(20),
                        .factor = 2.0,
                        .cap = std::chrono::milliseconds(100),
                        .jitter = 0.0};
  return o;
}

// Appends events first .. first + n - 1, spread over three streams, one a call.
inline void append_user_events(Store& store, std::size_t n, std::size_t first = 0) {
  for (std::size_t i = first; i < first + n; ++i)
    store.append("user-" + std::to_string(i % 3),
                 event("UserCreated", "{\"i\":" + std::to_string(i) + "}"));
}

}  // namespace eventlite::test
