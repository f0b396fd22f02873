// Replays of the log into a handler (replay.hpp): every event the filters select, in
// seq order, each Context saying it is a replay; batches; a handler that fails.

#include "eventlite/replay.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

TEST(Replay, DeliversTheSelectedEventsInSeqOrderMarkedAsAReplay) {
  Store store = Store::open(":memory:");
  for (int i = 0; i < 100; ++i)
    store.append("s-" + std::to_string(i % 3), event(i % 2 ? "A" : "B"));
  std::vector<Seq> seen;
  const std::uint64_t n = replay(
      store,
      [&](const Context& c) {
        EXPECT_TRUE(c.replay());
        EXPECT_FALSE(c.transactional());
        EXPECT_EQ(c.subscription(), "replay");
        seen.push_back(c.event().seq);
      },
      {.from = 10, .types = {"A"}});
  EXPECT_EQ(n, seen.size());
  ASSERT_EQ(seen.size(), 46u);  // the even seqs from 10 to 100
  for (std::size_t i = 0; i < seen.size(); ++i)
    EXPECT_EQ(seen[i], 10 + 2 * static_cast<Seq>(i));
}

TEST(Replay, BatchesHoldAtMostTheBatchSize) {
  Store store = Store::open(":memory:");
  store.append("s", numbered_events(1001));
  std::vector<std::size_t> sizes;
  Seq last = 0;
  const std::uint64_t n = replay(
      store,
      BatchHandler([&](const BatchContext& b) {
        EXPECT_TRUE(b.replay());
        sizes.push_back(b.size());
        for (std::size_t i = 0; i < b.size(); ++i) EXPECT_EQ(b.event(i).seq, ++last);
        return BatchResult::ok();
      }),
      {}, 250);
  EXPECT_EQ(n, 1001u);
  EXPECT_EQ(sizes, (std::vector<std::size_t>{250, 250, 250, 250, 1}));
}

TEST(Replay, AHandlerThatThrowsEndsItWithItsError) {
  Store store = Store::open(":memory:");
  store.append("s", numbered_events(10));
  int calls = 0;
  EXPECT_THROW(replay(store,
                      [&](const Context& c) {
                        ++calls;
                        if (c.event().seq == 4) throw std::runtime_error("bad");
                      }),
               std::runtime_error);
  EXPECT_EQ(calls, 4);
  std::uint64_t done = 0;
  EXPECT_THROW(done = replay(store,
                             BatchHandler([](const BatchContext&) {
                               return BatchResult::failed(
                                   2, std::make_exception_ptr(std::runtime_error("x")));
                             }),
                             {}, 5),
               std::runtime_error);
  EXPECT_EQ(done, 0u);
}

TEST(Replay, ALiveDeliveryIsNotAReplay) {
  const Event e{};
  EXPECT_FALSE(Context(e, "live").replay());
}

}  // namespace
}  // namespace eventlite
