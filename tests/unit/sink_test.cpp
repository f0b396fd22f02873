// Sinks: forwarding to an outside copy (here an in-memory one that fails on command)
// with reconciliation, backoff while it is down, permanent refusals parked, closing.

#include "eventlite/sink.hpp"

#include <gtest/gtest.h>

#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;
using namespace std::chrono_literals;

// An outside copy of the events, like a Redis stream: it knows its last entry.
class MemorySink : public Sink {
 public:
  std::optional<Seq> open(const SinkContext& context) override {
    std::lock_guard lock(mu_);
    ++tries_;
    if (down_) throw BrokerError("memory", true, "connection refused");
    if (conflict_) throw DestinationConflict("memory", "another store's entries there");
    ++opens_;
    is_open_ = true;
    context_ = context;
    if (!reconciles_ || copy_.empty()) return std::nullopt;
    return copy_.back();
  }
  BatchResult publish(const BatchContext& batch) override {
    std::lock_guard lock(mu_);
    EXPECT_TRUE(is_open_);
    ++calls_;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const Seq seq = batch.event(i).seq;
      if (down_ || (fail_after_ && seq > *fail_after_)) {
        fail_after_.reset();
        return BatchResult::failed(
            i, std::make_exception_ptr(BrokerError("memory", true, "connection lost")));
      }
      if (refused_.count(seq))
        return BatchResult::failed(i, std::make_exception_ptr(BrokerError(
                                          "memory", false, "payload too large")));
      copy_.push_back(seq);
    }
    return BatchResult::ok();
  }
  void close() noexcept override {
    std::lock_guard lock(mu_);
    ++closes_;
    is_open_ = false;
  }

  void set_conflict(bool conflict) {
    std::lock_guard lock(mu_);
    conflict_ = conflict;
  }
  SinkContext context() {
    std::lock_guard lock(mu_);
    return context_;
  }
  void set_down(bool down) {
    std::lock_guard lock(mu_);
    down_ = down;
  }
  // The next publish acknowledges events up to `seq`, then the connection drops.
  void drop_after(Seq seq) {
    std::lock_guard lock(mu_);
    fail_after_ = seq;
  }
  void refuse(Seq seq) {
    std::lock_guard lock(mu_);
    refused_.insert(seq);
  }
  void preload(std::vector<Seq> seqs) {
    std::lock_guard lock(mu_);
    copy_ = std::move(seqs);
  }
  void lose_everything() {
    std::lock_guard lock(mu_);
    copy_.clear();
  }
  void no_reconcile() {
    std::lock_guard lock(mu_);
    reconciles_ = false;
  }
  std::vector<Seq> copy() {
    std::lock_guard lock(mu_);
    return copy_;
  }
  int opens() {
    std::lock_guard lock(mu_);
    return opens_;
  }
  int tries() {
    std::lock_guard lock(mu_);
    return tries_;
  }
  int closes() {
    std::lock_guard lock(mu_);
    return closes_;
  }
  int calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::vector<Seq> copy_;
  std::set<Seq> refused_;
  std::optional<Seq> fail_after_;
  bool down_ = false;
  bool conflict_ = false;
  bool reconciles_ = true;
  bool is_open_ = false;
  SinkContext context_;  // guarded by mu_: as of the last open()
  int tries_ = 0;
  int opens_ = 0;
  int closes_ = 0;
  int calls_ = 0;
};

std::vector<Seq> range(Seq from, Seq to) {
  std::vector<Seq> out;
  for (Seq s = from; s <= to; ++s) out.push_back(s);
  return out;
}

void append_mixed(Store& store, int n) {
  for (int i = 0; i < n; ++i) store.append("s-" + std::to_string(i % 3), event("E"));
}

SubscriptionStatus status_of(Store& store, const std::string& name) {
  for (auto& s : status(store).subscriptions)
    if (s.name == name) return s;
  ADD_FAILURE() << "no status for " << name;
  return {};
}

RetryPolicy fast_retry() {
  return RetryPolicy{.max_attempts = 3, .base = 1ms, .factor = 2, .cap = 5ms, .jitter = 0};
}

TEST(Sink, ForwardsEveryEventInSeqOrderInBatchesAndCheckpoints) {
  auto store = Store::open(":memory:");
  append_mixed(store, 100);
  auto sink = std::make_shared<MemorySink>();
  Processor p(store, {.worker_threads = 4});
  p.sink("out", sink);
  EXPECT_EQ(p.run_until_idle(), 100u);
  EXPECT_EQ(sink->copy(), range(1, 100));  // one lane by default: seq order
  EXPECT_EQ(sink->opens(), 1);
  EXPECT_LT(sink->calls(), 100);  // batches, not one call per event
  EXPECT_EQ(status_of(store, "out").position, 100);
}

TEST(Sink, OpenIsGivenTheStoresIdentityAndItsEventIds) {
  TempDir dir;
  auto store = Store::open(dir / "a.db");
  store.set_name("billing");
  append_mixed(store, 3);
  auto sink = std::make_shared<MemorySink>();
  Processor p(store);
  p.sink("out", sink);
  p.run_until_idle();
  const SinkContext c = sink->context();
  EXPECT_EQ(c.store, store.identity());
  EXPECT_EQ(c.store.name, "billing");
  EXPECT_NE(c.logger, nullptr);
  std::vector<std::string> ids;
  for (const Event& e : store.read_all()) ids.push_back(e.id);
  ASSERT_TRUE(c.event_id);
  EXPECT_EQ(c.event_id(2), ids[1]);
  EXPECT_EQ(c.event_id(4), std::nullopt);
}

// Another store's entries at the destination: nothing is parked and the checkpoint
// does not move; metrics say so, and the sink tries again after its backoff.
TEST(Sink, ADestinationConflictHoldsTheSinkAndParksNothing) {
  auto store = Store::open(":memory:");
  append_mixed(store, 20);
  auto sink = std::make_shared<MemorySink>();
  sink->set_conflict(true);
  Processor p(store);
  p.sink("out", sink, {.retry = fast_retry()});
  p.run_until_idle();
  SubscriptionMetrics m = p.metrics().at(0);
  EXPECT_TRUE(m.destination_conflict);
  EXPECT_TRUE(m.failing_since.has_value());
  EXPECT_NE(m.last_error.find("another store"), std::string::npos) << m.last_error;
  EXPECT_EQ(m.dead, 0u);
  EXPECT_EQ(status_of(store, "out").position, 0);
  EXPECT_TRUE(sink->copy().empty());
  sink->set_conflict(false);
  ASSERT_TRUE(wait_until(
      [&] { return p.run_until_idle() == 0 && sink->copy().size() == 20; }, 10s));
  m = p.metrics().at(0);
  EXPECT_FALSE(m.destination_conflict);
  EXPECT_EQ(status_of(store, "out").position, 20);
}

TEST(Sink, StartedSinkForwardsAndIsClosedOnStop) {
  auto store = Store::open(":memory:");
  auto sink = std::make_shared<MemorySink>();
  Processor p(store);
  p.sink("out", sink);
  p.start();
  append_mixed(store, 10);
  ASSERT_TRUE(wait_until([&] { return sink->copy().size() == 10; }, 10s));
  p.stop();
  EXPECT_EQ(sink->copy(), range(1, 10));
  EXPECT_EQ(sink->opens(), sink->closes());
}

TEST(Sink, ABrokerThatIsDownMakesLagNotDeadLettersAndResumesAlone) {
  auto store = Store::open(":memory:");
  append_mixed(store, 20);
  auto sink = std::make_shared<MemorySink>();
  sink->set_down(true);
  Processor p(store);
  p.sink("out", sink, {.retry = fast_retry()});
  p.start();
  // Several failed tries (more than max_attempts): still no dead letter.
  ASSERT_TRUE(wait_until([&] { return sink->tries() >= 5; }, 10s));
  EXPECT_TRUE(dead_letters(store, "out").empty());
  EXPECT_EQ(status_of(store, "out").lag, 20);
  EXPECT_TRUE(sink->copy().empty());
  // Any process's `status` tells it is retrying, since when, and why.
  ASSERT_TRUE(wait_until(
      [&] { return status_of(store, "out").activity == Activity::retrying; }, 10s));
  const SubscriptionStatus failing = status_of(store, "out");
  ASSERT_TRUE(failing.sink);
  EXPECT_TRUE(failing.sink->failing_since);
  EXPECT_EQ(failing.sink->last_error, "memory: connection refused");
  EXPECT_GE(failing.sink->failed, 1u);
  EXPECT_EQ(failing.sink->owner, failing.lease->owner);
  EXPECT_GT(failing.lag_time.count(), 0);  // the oldest unconfirmed event's age
  sink->set_down(false);
  ASSERT_TRUE(wait_until([&] { return sink->copy().size() == 20; }, 10s));
  ASSERT_TRUE(wait_until(
      [&] { return status_of(store, "out").activity == Activity::caught_up; }, 10s));
  const SubscriptionStatus recovered = status_of(store, "out");
  EXPECT_FALSE(recovered.sink->failing_since);
  EXPECT_EQ(recovered.sink->last_error, "");
  EXPECT_EQ(recovered.sink->forwarded, 20u);
  EXPECT_GT(recovered.sink->round_trip_p99.count(), 0);
  EXPECT_GT(p.metrics()[0].round_trip_p99.count(), 0);
  p.stop();
  EXPECT_EQ(sink->copy(), range(1, 20));
  EXPECT_TRUE(dead_letters(store, "out").empty());
}

TEST(Sink, OnStartTheCheckpointMovesToWhatTheOutsideCopyHolds) {
  // A forwarder killed between the broker's ack and its checkpoint commit: the
  // broker holds 1..6, the checkpoint says 0.
  auto store = Store::open(":memory:");
  append_mixed(store, 10);
  auto sink = std::make_shared<MemorySink>();
  sink->preload(range(1, 6));
  Processor p(store);
  p.sink("out", sink);
  EXPECT_EQ(p.run_until_idle(), 4u);
  EXPECT_EQ(sink->copy(), range(1, 10));  // nothing sent twice
  EXPECT_EQ(status_of(store, "out").position, 10);
}

TEST(Sink, AnOutsideCopyFarAheadIsSkippedToInOneStep) {
  auto store = Store::open(":memory:");
  append_mixed(store, 1200);  // more than two batches
  auto sink = std::make_shared<MemorySink>();
  sink->preload(range(1, 1100));
  Processor p(store);
  p.sink("out", sink);
  p.run_until_idle();
  EXPECT_EQ(sink->copy(), range(1, 1200));
  EXPECT_EQ(status_of(store, "out").position, 1200);
}

TEST(Sink, AFailureInsideABatchResumesFromTheFirstEventTheBrokerLacks) {
  auto store = Store::open(":memory:");
  append_mixed(store, 30);
  auto sink = std::make_shared<MemorySink>();
  sink->drop_after(12);  // acks 1..12 of the first batch, then the connection drops
  Processor p(store);
  p.sink("out", sink, {.retry = fast_retry()});
  ASSERT_TRUE(wait_until(
      [&] {
        p.run_until_idle();
        return sink->copy().size() >= 30;
      },
      10s));
  EXPECT_EQ(sink->copy(), range(1, 30));  // no duplicate, no reordering
  EXPECT_GE(sink->closes(), 1);
  EXPECT_EQ(sink->opens(), 2);
}

TEST(Sink, APayloadTheBrokerRefusesIsParkedAtOnceWithItsMessage) {
  auto store = Store::open(":memory:");
  append_mixed(store, 9);
  auto sink = std::make_shared<MemorySink>();
  sink->refuse(4);
  Processor p(store);
  p.sink("out", sink);  // default retry: 5 attempts, which a refusal does not use
  p.run_until_idle();
  std::vector<Seq> expected = range(1, 9);
  expected.erase(expected.begin() + 3);
  EXPECT_EQ(sink->copy(), expected);
  auto dead = dead_letters(store, "out");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].seq, 4);
  EXPECT_EQ(dead[0].attempts, 1);
  EXPECT_NE(dead[0].last_error.find("payload too large"), std::string::npos)
      << dead[0].last_error;
}

TEST(Sink, RewindRefillsABrokerThatLostItsCopy) {
  auto store = Store::open(":memory:");
  append_mixed(store, 10);
  auto sink = std::make_shared<MemorySink>();
  {
    Processor p(store);
    p.sink("out", sink);
    p.run_until_idle();
  }
  sink->lose_everything();
  rewind(store, "out", 1);
  Processor p(store);
  p.sink("out", sink);
  p.run_until_idle();
  EXPECT_EQ(sink->copy(), range(1, 10));
}

TEST(Sink, WhatTheBrokerAcknowledgedBeforeAFailureCountsEvenWithoutReconciliation) {
  auto store = Store::open(":memory:");
  append_mixed(store, 10);
  auto sink = std::make_shared<MemorySink>();
  sink->no_reconcile();
  sink->drop_after(4);
  Processor p(store);
  p.sink("out", sink, {.retry = fast_retry()});
  ASSERT_TRUE(wait_until(
      [&] {
        p.run_until_idle();
        return status_of(store, "out").position == 10;
      },
      10s));
  // 1..4 were acknowledged before the connection dropped: not sent again.
  EXPECT_EQ(sink->copy(), range(1, 10));
}

TEST(Sink, ADeadLetterBeforeABrokerFailureIsKept) {
  // A refused payload (dead at once), then the connection drops later in the same
  // batch: the dead letter and what went before it are kept, nothing is skipped.
  auto store = Store::open(":memory:");
  append_mixed(store, 12);
  auto sink = std::make_shared<MemorySink>();
  sink->refuse(3);
  sink->drop_after(8);
  Processor p(store);
  p.sink("out", sink, {.retry = fast_retry()});
  ASSERT_TRUE(wait_until(
      [&] {
        p.run_until_idle();
        return status_of(store, "out").position == 12;
      },
      10s));
  std::vector<Seq> expected = range(1, 12);
  expected.erase(expected.begin() + 2);
  EXPECT_EQ(sink->copy(), expected);
  auto dead = dead_letters(store, "out");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].seq, 3);
}

TEST(Sink, HeldStreamsAreRecordedBeforeAnythingAfterThemIsForwarded) {
  // OnDead::hold: stream s-0's events after the dead letter wait. A sink never
  // forwards past an event that has a row before that row is committed, so the
  // broker's last entry never stands past an event it lacks and nobody recorded.
  auto store = Store::open(":memory:");
  append_mixed(store, 9);  // s-0: 1 4 7, s-1: 2 5 8, s-2: 3 6 9
  auto sink = std::make_shared<MemorySink>();
  sink->refuse(1);
  Processor p(store);
  p.sink("out", sink, {.on_dead = OnDead::hold});
  p.run_until_idle();
  EXPECT_EQ(sink->copy(), (std::vector<Seq>{2, 3, 5, 6, 8, 9}));
  const auto st = status_of(store, "out");
  EXPECT_EQ(st.position, 9);
  EXPECT_EQ(st.dead, 1u);
  EXPECT_EQ(st.owed, 2u);  // 4 and 7 wait behind 1
  EXPECT_EQ(st.held, 1u);
}

TEST(Sink, AnOutsideCopyPastTheHeadIsNotSkippedTo) {
  auto store = Store::open(":memory:");
  append_mixed(store, 5);
  auto sink = std::make_shared<MemorySink>();
  sink->preload({100});  // another store forwards there too
  Processor p(store);
  p.sink("out", sink);
  EXPECT_EQ(p.run_until_idle(), 5u);
  const auto copy = sink->copy();
  EXPECT_EQ(std::vector<Seq>(copy.begin() + 1, copy.end()), range(1, 5));
}

TEST(Sink, IsRefusedAsTransactional) {
  auto store = Store::open(":memory:");
  Processor p(store);
  EXPECT_THROW(p.sink("out", std::make_shared<MemorySink>(), {.transactional = true}),
               InvalidArgument);
  EXPECT_THROW(p.sink("out", nullptr), InvalidArgument);
}

TEST(Sink, OnlyTheLeaseHolderForwardsAndMetricsCountIt) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  append_mixed(store, 5);
  auto a_sink = std::make_shared<MemorySink>();
  auto b_sink = std::make_shared<MemorySink>();
  Processor a(store, {.owner = "A"});
  Processor b(store, {.owner = "B"});
  a.sink("out", a_sink);
  b.sink("out", b_sink);
  EXPECT_EQ(a.run_until_idle(), 5u);
  append_mixed(store, 1);
  EXPECT_EQ(b.run_until_idle(), 0u);  // A holds the lease
  EXPECT_EQ(b_sink->opens(), 0);
  EXPECT_EQ(a.run_until_idle(), 1u);
  EXPECT_EQ(a_sink->copy(), range(1, 6));
  const auto m = a.metrics()[0];
  EXPECT_EQ(m.delivered, 6u);
  EXPECT_EQ(m.position, 6);
  EXPECT_EQ(m.lag, 0);
  EXPECT_TRUE(m.leased);
  EXPECT_EQ(status_of(store, "out").lease->owner, "A");
}

}  // namespace
}  // namespace eventlite
