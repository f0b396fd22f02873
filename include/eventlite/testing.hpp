#pragma once

// A store and its processor for an application's own unit tests: in memory, no
// threads, time on a manual clock. Appending, processing and asserting take a few
// lines:
//
//   #include <eventlite/testing.hpp>
//
//   TEST(Billing, InvoicesEachPlacedOrderOnce) {
//     eventlite::testing::Harness h;
//     h.processor.subscribe("billing", billing_handler);  // the application's own
//     h.store.append("order-7", eventlite::make_event("OrderPlaced", {{"total", 12}}));
//     h.run();                                   // every delivery that is due
//     EXPECT_EQ(h.types("invoice-7"), std::vector<std::string>{"InvoiceIssued"});
//     h.advance(std::chrono::minutes(1));        // retries due within it, delivered
//     EXPECT_TRUE(h.dead().empty());
//   }
//
// The processor is never start()ed: run() is run_until_idle() on the test's thread,
// and retry delays, leases and periodic tasks follow the clock, which moves only when
// the test says so. Header-only: link eventlite::eventlite as usual.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eventlite/clock.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/read.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"

namespace eventlite::testing {

// Thread safety: the test's thread (handlers run on it too).
class Harness {
 public:
  // `options.clock` is replaced by the harness's manual clock, which starts at
  // `start`.
  explicit Harness(ProcessorOptions options = {},
                   std::chrono::system_clock::time_point start =
                       std::chrono::system_clock::now())
      : clock(std::make_shared<ManualClock>(start)),
        store(Store::open(":memory:")),
        processor(store, with_clock(std::move(options), clock)) {}

  std::shared_ptr<ManualClock> clock;
  Store store;
  Processor processor;

  // Delivers everything due now, events the handlers append included; returns how
  // many deliveries ran.
  std::size_t run() { return processor.run_until_idle(); }
  // Moves the clock on by `d`, then run(): what came due meanwhile is delivered.
  std::size_t advance(std::chrono::milliseconds d) {
    clock->advance(d);
    return run();
  }

  // The events of `stream` (all of them when empty), in seq order.
  std::vector<Event> events(std::string_view stream = {}) const {
    ReadOptions options;
    options.stream = std::string(stream);
    return store.read_all(std::move(options)).to_vector();
  }
  // Their types, for short assertions.
  std::vector<std::string> types(std::string_view stream = {}) const {
    std::vector<std::string> out;
    for (const Event& e : events(stream)) out.push_back(e.type);
    return out;
  }
  // Parked deliveries (of one subscription when given).
  std::vector<DeadLetter> dead(std::string_view subscription = {}) const {
    return dead_letters(store, subscription);
  }
  // Where `subscription` stands.
  Seq position(std::string_view subscription) const {
    for (const SubscriptionStatus& s : status(store).subscriptions)
      if (s.name == subscription) return s.position;
    return 0;
  }

 private:
  static ProcessorOptions with_clock(ProcessorOptions options,
                                     const std::shared_ptr<ManualClock>& clock) {
    options.clock = clock;
    return options;
  }
};

}  // namespace eventlite::testing
