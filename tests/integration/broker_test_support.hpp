#pragma once

// What the broker tests share: a sink subscription that retries quickly, and events
// to forward.

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

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

// Service A's events for the bridge tests: n over four streams, two types.
inline void append_order_events(Store& store, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    store.append(
        "order-" + std::to_string(i % 4),
        event(i % 2 ? "OrderPaid" : "OrderPlaced", "{\"n\":" + std::to_string(i) + "}"));
}

inline std::vector<Event> events_of(const Store& store) {
  std::vector<Event> out;
  for (const Event& e : store.read_all()) out.push_back(e);
  return out;
}

// B holds A's events, each once, with A's id, stream, type, time, data and
// metadata, in A's order within each stream.
inline void expect_same_events(const Store& a, const Store& b) {
  const auto from = events_of(a);
  std::vector<Event> to;
  for (const Event& e : events_of(b))
    if (e.stream.rfind("eventlite-rejected-", 0) != 0) to.push_back(e);
  ASSERT_EQ(to.size(), from.size());
  std::map<std::string, Event> by_id;
  for (const Event& e : to)
    EXPECT_TRUE(by_id.emplace(e.id, e).second) << "twice: " << e.id;
  for (const Event& e : from) {
    const auto it = by_id.find(e.id);
    ASSERT_NE(it, by_id.end()) << "missing " << e.id;
    EXPECT_EQ(it->second.stream, e.stream);
    EXPECT_EQ(it->second.type, e.type);
    EXPECT_EQ(it->second.time, e.time);
    EXPECT_EQ(it->second.data, e.data);
    EXPECT_EQ(it->second.metadata, e.metadata);
    EXPECT_EQ(it->second.version, e.version);  // per-stream order kept
  }
}

}  // namespace eventlite::test
