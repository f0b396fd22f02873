// Batch handlers and lanes per subscription: a lane's events at once, failures at an
// index retried as single deliveries are, transactional batches, max_lanes.

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "eventlite/transaction.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;
using namespace std::chrono_literals;

ProcessorOptions manual(const std::shared_ptr<ManualClock>& clock) {
  ProcessorOptions o;
  o.clock = clock;
  o.retry = RetryPolicy{.max_attempts = 3, .base = 1s, .factor = 2, .jitter = 0};
  return o;
}

// Records every batch call; fails the first delivery of the seqs in `fail_once`.
struct BatchRecorder {
  std::mutex mu;
  std::vector<std::vector<Seq>> calls;
  std::vector<Seq> done;
  std::map<Seq, int> attempts;
  std::vector<Seq> fail_once;

  BatchHandler handler() {
    return [this](const BatchContext& batch) {
      std::lock_guard lock(mu);
      std::vector<Seq> seqs;
      for (const Event* e : batch.events()) seqs.push_back(e->seq);
      calls.push_back(seqs);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        const Seq seq = batch.event(i).seq;
        attempts[seq] = batch.attempt(i);
        auto it = std::find(fail_once.begin(), fail_once.end(), seq);
        if (it != fail_once.end()) {
          fail_once.erase(it);
          return BatchResult::failed(i, std::make_exception_ptr(std::runtime_error("boom")));
        }
        done.push_back(seq);
      }
      return BatchResult::ok();
    };
  }
};

TEST(BatchHandler, TakesALanesEventsAtOnceInSeqOrder) {
  auto store = Store::open(":memory:");
  for (int i = 0; i < 50; ++i) store.append("s-" + std::to_string(i % 5), event("E"));
  BatchRecorder rec;
  Processor p(store);
  p.subscribe_batch("b", rec.handler());
  EXPECT_EQ(p.run_until_idle(), 50u);
  ASSERT_EQ(rec.calls.size(), 1u);  // run_until_idle: one lane, one batch
  std::vector<Seq> all;
  for (Seq s = 1; s <= 50; ++s) all.push_back(s);
  EXPECT_EQ(rec.done, all);
}

TEST(BatchHandler, AFailureRetriesThatEventAndItsStreamWhileOthersGoOn) {
  auto store = Store::open(":memory:");
  store.append("a", numbered_events(3));  // 1 2 3
  store.append("b", numbered_events(3));  // 4 5 6
  auto clock = std::make_shared<ManualClock>();
  BatchRecorder rec;
  rec.fail_once = {2};
  Processor p(store, manual(clock));
  p.subscribe_batch("b", rec.handler());
  EXPECT_EQ(p.run_until_idle(), 5u);  // 1, 2 (failed), then 4 5 6 in a second call
  EXPECT_EQ(rec.done, (std::vector<Seq>{1, 4, 5, 6}));
  ASSERT_EQ(rec.calls.size(), 2u);
  EXPECT_EQ(rec.calls[1], (std::vector<Seq>{4, 5, 6}));  // 3 waits behind 2
  EXPECT_EQ(status(store).subscriptions[0].owed, 2u);
  clock->advance(1s);
  p.run_until_idle();
  EXPECT_EQ(rec.done, (std::vector<Seq>{1, 4, 5, 6, 2, 3}));
  EXPECT_EQ(rec.attempts[2], 2);
  EXPECT_EQ(rec.attempts[3], 1);
  EXPECT_EQ(status(store).subscriptions[0].owed, 0u);
  const auto m = p.metrics()[0];
  EXPECT_EQ(m.delivered, 6u);
  EXPECT_EQ(m.failed, 1u);
}

TEST(BatchHandler, AfterItsAttemptsTheEventIsDeadAndOnDeadStopStopsThere) {
  auto store = Store::open(":memory:");
  store.append("a", numbered_events(4));
  BatchRecorder rec;
  rec.fail_once = {2};
  Processor p(store);
  p.subscribe_batch("b", rec.handler(),
                    {.retry = RetryPolicy{.max_attempts = 1}, .on_dead = OnDead::stop});
  p.run_until_idle();
  EXPECT_EQ(rec.done, (std::vector<Seq>{1}));
  EXPECT_EQ(dead_letters(store, "b").size(), 1u);
  EXPECT_TRUE(p.metrics()[0].stopped);
  EXPECT_EQ(status(store).subscriptions[0].position, 2);
}

TEST(BatchHandler, TransactionalBatchWritesCommitOnceAndAFailureUndoesTheCall) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  {
    auto txn = store.transaction();
    txn.database().exec("CREATE TABLE seen(seq INTEGER PRIMARY KEY)");
    txn.commit();
  }
  store.append("a", numbered_events(3));  // 1 2 3
  store.append("b", numbered_events(3));  // 4 5 6
  auto clock = std::make_shared<ManualClock>();
  std::vector<Seq> fail_once = {5};
  int calls = 0;
  Processor p(store, manual(clock));
  p.subscribe_batch(
      "proj",
      [&](const BatchContext& batch) {
        ++calls;
        SQLite::Statement insert(batch.transaction().database(),
                                 "INSERT INTO seen(seq) VALUES (?)");
        for (std::size_t i = 0; i < batch.size(); ++i) {
          const Seq seq = batch.event(i).seq;
          auto it = std::find(fail_once.begin(), fail_once.end(), seq);
          if (it != fail_once.end()) {
            fail_once.erase(it);
            return BatchResult::failed(
                i, std::make_exception_ptr(std::runtime_error("boom")));
          }
          insert.bind(1, static_cast<std::int64_t>(seq));
          insert.exec();
          insert.reset();
        }
        return BatchResult::ok();
      },
      {.transactional = true});
  p.run_until_idle();
  // The failed call's inserts (1..4) were undone; the handler was called again with
  // them, and 6 waits behind 5.
  EXPECT_EQ(calls, 2);
  RawDb raw(dir / "app.db");
  EXPECT_EQ(raw.query_column("SELECT seq FROM seen ORDER BY seq"),
            (std::vector<std::string>{"1", "2", "3", "4"}));
  clock->advance(1s);
  p.run_until_idle();
  EXPECT_EQ(raw.query_column("SELECT seq FROM seen ORDER BY seq"),
            (std::vector<std::string>{"1", "2", "3", "4", "5", "6"}));
}

TEST(BatchHandler, ATransactionalStopKeepsTheEventsBeforeTheDeadLetter) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  {
    auto txn = store.transaction();
    txn.database().exec("CREATE TABLE seen(seq INTEGER PRIMARY KEY)");
    txn.commit();
  }
  store.append("a", numbered_events(4));
  Processor p(store);
  p.subscribe_batch(
      "proj",
      [&](const BatchContext& batch) {
        SQLite::Statement insert(batch.transaction().database(),
                                 "INSERT INTO seen(seq) VALUES (?)");
        for (std::size_t i = 0; i < batch.size(); ++i) {
          if (batch.event(i).seq == 3)
            return BatchResult::failed(
                i, std::make_exception_ptr(PermanentError("never")));
          insert.bind(1, static_cast<std::int64_t>(batch.event(i).seq));
          insert.exec();
          insert.reset();
        }
        return BatchResult::ok();
      },
      {.on_dead = OnDead::stop, .transactional = true});
  p.run_until_idle();
  RawDb raw(dir / "app.db");
  // 1 and 2 were undone with the failed call, then delivered again before stopping.
  EXPECT_EQ(raw.query_column("SELECT seq FROM seen ORDER BY seq"),
            (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(status(store).subscriptions[0].position, 3);
  EXPECT_EQ(dead_letters(store, "proj").size(), 1u);
}

TEST(BatchHandler, AFailureIndexPastTheEndIsTheLastEvents) {
  auto store = Store::open(":memory:");
  store.append("a", numbered_events(3));
  Processor p(store);
  p.subscribe_batch(
      "b",
      [](const BatchContext&) { return BatchResult::failed(99, nullptr); },
      {.retry = RetryPolicy{.max_attempts = 1}});
  p.run_until_idle();
  auto dead = dead_letters(store, "b");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].seq, 3);
  EXPECT_NE(dead[0].last_error.find("without an error"), std::string::npos);
}

TEST(MaxLanes, OneLaneGivesTheSubscriptionSeqOrderOnOneThreadAtATime) {
  auto store = Store::open(":memory:");
  std::mutex mu;
  std::vector<Seq> seen;
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  Processor p(store, {.worker_threads = 4});
  p.subscribe(
      "ordered",
      [&](const Context& ctx) {
        const int now = ++running;
        int prev = most.load();
        while (now > prev && !most.compare_exchange_weak(prev, now)) {
        }
        {
          std::lock_guard lock(mu);
          seen.push_back(ctx.event().seq);
        }
        --running;
      },
      {.max_lanes = 1});
  p.start();
  for (int i = 0; i < 400; ++i) store.append("s-" + std::to_string(i % 40), event("E"));
  ASSERT_TRUE(wait_until(
      [&] {
        std::lock_guard lock(mu);
        return seen.size() == 400;
      },
      20s));
  p.stop();
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(most.load(), 1);
}

TEST(MaxLanes, ZeroIsTheWorkerCountAndLanesRunInParallel) {
  auto store = Store::open(":memory:");
  for (int i = 0; i < 4; ++i) store.append("s-" + std::to_string(i), event("E"));
  // Every one of 4 streams' first deliveries waits until all 4 run at once: only
  // 4 lanes in parallel get past it.
  std::atomic<int> arrived{0};
  std::atomic<bool> timed_out{false};
  Processor p(store, {.worker_threads = 4});
  p.subscribe("parallel", [&](const Context&) {
    ++arrived;
    if (!wait_until([&] { return arrived.load() >= 4; }, 10s)) timed_out = true;
  });
  p.start();
  ASSERT_TRUE(p.wait_idle(20s));
  p.stop();
  EXPECT_FALSE(timed_out.load());
}

}  // namespace
}  // namespace eventlite
