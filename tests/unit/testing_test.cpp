// The public test harness (testing.hpp), used as an application's test would: append,
// run, assert; retries stepped through on the manual clock, no sleeping.

#include "eventlite/testing.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "eventlite/event.hpp"
#include "eventlite/transaction.hpp"

namespace eventlite {
namespace {

using namespace std::chrono_literals;

TEST(TestingHarness, AppendRunAssertInAFewLines) {
  testing::Harness h;
  h.processor.subscribe(
      "billing",
      [](const Context& c) {
        if (c.event().type != "OrderPlaced") return;
        c.transaction().append("invoice-" + c.event().stream.substr(6),
                               make_event("InvoiceIssued", {{"for", c.event().id}}));
      },
      {.transactional = true});
  h.store.append("order-7", make_event("OrderPlaced", {{"total", 12}}));
  EXPECT_EQ(h.run(), 2u);  // the order, then the invoice it appended
  EXPECT_EQ(h.types("invoice-7"), std::vector<std::string>{"InvoiceIssued"});
  EXPECT_EQ(h.position("billing"), 2);  // its own invoice too: it saw it and let it be
  EXPECT_EQ(h.events().size(), 2u);
}

TEST(TestingHarness, RetriesComeDueAsTheClockMovesNeverBefore) {
  testing::Harness h;
  int calls = 0;
  h.processor.subscribe(
      "mailer",
      [&](const Context&) {
        if (++calls < 3) throw std::runtime_error("smtp down");
      },
      {.retry = RetryPolicy{.max_attempts = 5, .base = 1s, .factor = 2.0, .cap = 60s,
                            .jitter = 0.0}});
  h.store.append("user-1", make_event("UserSignedUp", {{"email", "a@example.com"}}));
  h.run();
  EXPECT_EQ(calls, 1);
  h.run();  // not due yet: the clock has not moved
  EXPECT_EQ(calls, 1);
  h.advance(999ms);
  EXPECT_EQ(calls, 1);
  h.advance(1ms);  // the first retry, 1 s after the failure
  EXPECT_EQ(calls, 2);
  h.advance(2s);  // the second, 2 s after that: it goes through
  EXPECT_EQ(calls, 3);
  EXPECT_TRUE(h.dead().empty());
  EXPECT_EQ(h.position("mailer"), 1);
}

TEST(TestingHarness, ADeliveryThatNeverWorksIsParked) {
  testing::Harness h;
  h.processor.subscribe(
      "mailer", [](const Context&) { throw std::runtime_error("no such user"); },
      {.retry = RetryPolicy{.max_attempts = 2, .base = 1s, .jitter = 0.0}});
  h.store.append("user-1", make_event("UserSignedUp", {{"email", "b@example.com"}}));
  h.run();
  h.advance(1s);
  ASSERT_EQ(h.dead("mailer").size(), 1u);
  EXPECT_EQ(h.dead()[0].last_error, "no such user");
}

}  // namespace
}  // namespace eventlite
