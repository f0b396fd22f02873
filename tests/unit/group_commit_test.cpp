#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <future>
#include <latch>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"
#include "store/store_impl.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

// What one concurrent appender ended with: its seqs or the error it got.
struct Outcome {
  std::vector<Seq> seqs;
  std::optional<ErrorCode> error;
  std::string what;
};

// Runs `body(t)` on `threads` threads released together, and returns their outcomes.
template <class Body>
std::vector<Outcome> race(int threads, Body body) {
  std::vector<Outcome> outcomes(static_cast<std::size_t>(threads));
  std::latch start(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto& out = outcomes[static_cast<std::size_t>(t)];
      start.arrive_and_wait();
      try {
        out.seqs = body(t);
      } catch (const Error& e) {
        out.error = e.code();
        out.what = e.what();
      } catch (const std::exception& e) {
        out.error = ErrorCode::broker;  // not an eventlite error: fails every check
        out.what = std::string("unexpected exception: ") + e.what();
      }
    });
  }
  for (auto& thread : pool) thread.join();
  return outcomes;
}

std::vector<Version> versions_of(const std::vector<Event>& events) {
  std::vector<Version> out;
  for (const auto& e : events) out.push_back(e.version);
  return out;
}

std::vector<Version> one_to(Version n) {
  std::vector<Version> out;
  for (Version v = 1; v <= n; ++v) out.push_back(v);
  return out;
}

TEST(GroupCommit, ConcurrentSingleAppendsGetDistinctSeqsAndContiguousVersions) {
  TempDir dir;
  StoreOptions options;
  options.durability = Durability::full;  // the case group commit exists for
  auto store = Store::open(dir / "app.db", options);
  constexpr int kThreads = 8;
  constexpr int kAppends = 40;
  std::vector<std::string> failures(kThreads);
  auto outcomes = race(kThreads, [&](int t) {
    std::vector<Seq> seqs;
    for (int i = 0; i < kAppends; ++i) {
      const std::string stream = "shared-" + std::to_string(i % 3);
      const std::string data =
          "{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) + "}";
      const Seq seq = store.append(stream, event("Step", data));
      if (store.head() < seq)
        failures[static_cast<std::size_t>(t)] = "head below a returned seq";
      seqs.push_back(seq);
    }
    return seqs;
  });

  std::vector<Seq> all;
  for (int t = 0; t < kThreads; ++t) {
    const auto& o = outcomes[static_cast<std::size_t>(t)];
    ASSERT_FALSE(o.error) << o.what;
    EXPECT_EQ(failures[static_cast<std::size_t>(t)], "");
    EXPECT_TRUE(std::is_sorted(o.seqs.begin(), o.seqs.end())) << "thread " << t;
    all.insert(all.end(), o.seqs.begin(), o.seqs.end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads * kAppends));
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], static_cast<Seq>(i + 1));

  std::size_t total = 0;
  for (int s = 0; s < 3; ++s) {
    auto events = store.read_stream("shared-" + std::to_string(s)).to_vector();
    EXPECT_EQ(versions_of(events), one_to(static_cast<Version>(events.size())));
    total += events.size();
  }
  EXPECT_EQ(total, all.size());
  EXPECT_TRUE(store.verify().empty());
}

TEST(GroupCommit, OneWrongExpectedVersionFailsAloneOthersCommit) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  store.append("taken", event("Exists"));
  constexpr int kRounds = 20;
  constexpr int kThreads = 8;
  for (int round = 0; round < kRounds; ++round) {
    auto outcomes = race(kThreads, [&](int t) {
      if (t == 0) return store.append("taken", numbered_events(3), Expected::no_stream());
      return store.append("r" + std::to_string(round) + "-t" + std::to_string(t),
                          numbered_events(3), Expected::no_stream());
    });
    ASSERT_EQ(outcomes[0].error, ErrorCode::version_conflict) << outcomes[0].what;
    for (int t = 1; t < kThreads; ++t) {
      ASSERT_FALSE(outcomes[static_cast<std::size_t>(t)].error)
          << "round " << round << " thread " << t << ": "
          << outcomes[static_cast<std::size_t>(t)].what;
      EXPECT_EQ(outcomes[static_cast<std::size_t>(t)].seqs.size(), 3u);
    }
  }
  EXPECT_EQ(store.head(), 1 + kRounds * (kThreads - 1) * 3);
  EXPECT_EQ(store.stream_version("taken"), 1);
  EXPECT_TRUE(store.verify().empty());
}

TEST(GroupCommit, OneBadEventFailsAloneOthersCommit) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  constexpr int kRounds = 20;
  constexpr int kThreads = 8;
  for (int round = 0; round < kRounds; ++round) {
    auto outcomes = race(kThreads, [&](int t) {
      auto events = numbered_events(3);
      if (t == 0) events[2].data = "{broken";
      return store.append("r" + std::to_string(round) + "-t" + std::to_string(t), events);
    });
    ASSERT_EQ(outcomes[0].error, ErrorCode::invalid_event) << outcomes[0].what;
    for (int t = 1; t < kThreads; ++t) {
      ASSERT_FALSE(outcomes[static_cast<std::size_t>(t)].error)
          << outcomes[static_cast<std::size_t>(t)].what;
    }
    EXPECT_EQ(store.stream_version("r" + std::to_string(round) + "-t0"), 0);
  }
  EXPECT_EQ(store.head(), kRounds * (kThreads - 1) * 3);
  EXPECT_TRUE(store.verify().empty());
}

TEST(GroupCommit, OneIdConflictFailsAloneOthersCommit) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  NewEvent stored = event("Stored", "{\"v\":1}");
  stored.id = new_event_id();
  store.append("stored", stored);
  NewEvent clash = stored;
  clash.data = "{\"v\":2}";
  constexpr int kRounds = 20;
  constexpr int kThreads = 8;
  for (int round = 0; round < kRounds; ++round) {
    auto outcomes = race(kThreads, [&](int t) {
      if (t == 0)
        return store.append("clash", std::vector<NewEvent>{event("New"), clash});
      return store.append("r" + std::to_string(round) + "-t" + std::to_string(t),
                          numbered_events(2));
    });
    ASSERT_EQ(outcomes[0].error, ErrorCode::id_conflict) << outcomes[0].what;
    for (int t = 1; t < kThreads; ++t) {
      ASSERT_FALSE(outcomes[static_cast<std::size_t>(t)].error)
          << outcomes[static_cast<std::size_t>(t)].what;
    }
  }
  EXPECT_EQ(store.head(), 1 + kRounds * (kThreads - 1) * 2);
  EXPECT_EQ(store.stream_version("clash"), 0);
}

TEST(GroupCommit, ConcurrentNoStreamAppendsToOneStreamLetExactlyOneWin) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  constexpr int kRounds = 30;
  constexpr int kThreads = 4;
  for (int round = 0; round < kRounds; ++round) {
    const std::string stream = "race-" + std::to_string(round);
    auto outcomes = race(kThreads, [&](int t) {
      return store.append(stream,
                          numbered_events(2, "Try", static_cast<std::size_t>(t) * 10),
                          Expected::no_stream());
    });
    int winners = 0;
    for (const auto& o : outcomes) {
      if (!o.error) {
        ++winners;
      } else {
        EXPECT_EQ(o.error, ErrorCode::version_conflict) << o.what;
      }
    }
    EXPECT_EQ(winners, 1) << stream;
    EXPECT_EQ(versions_of(store.read_stream(stream).to_vector()), one_to(2)) << stream;
  }
  EXPECT_TRUE(store.verify().empty());
}

TEST(GroupCommit, OptimisticRetriesKeepOneStreamContiguous) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  constexpr int kThreads = 4;
  constexpr int kEach = 25;
  auto outcomes = race(kThreads, [&](int t) {
    std::vector<Seq> seqs;
    while (seqs.size() < static_cast<std::size_t>(kEach)) {
      const Version v = store.stream_version("counter");
      try {
        seqs.push_back(store.append(
            "counter", event("Incremented", "{\"t\":" + std::to_string(t) + "}"),
            Expected::exactly(v)));
      } catch (const VersionConflict&) {
        // Someone else moved the stream: read again and retry.
      }
    }
    return seqs;
  });
  for (const auto& o : outcomes) ASSERT_FALSE(o.error) << o.what;
  EXPECT_EQ(versions_of(store.read_stream("counter").to_vector()),
            one_to(kThreads * kEach));
}

TEST(GroupCommit, AppendAsyncFuturesHoldSeqsOrTheException) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  std::vector<std::future<std::vector<Seq>>> good;
  for (int i = 0; i < 200; ++i) {
    good.push_back(store.append_async("s" + std::to_string(i % 4), numbered_events(1)));
  }
  auto bad_event = numbered_events(2);
  bad_event[1].type = "";
  auto invalid = store.append_async("bad", bad_event);
  auto conflict = store.append_async("s0", numbered_events(1), Expected::exactly(999));

  std::vector<Seq> seqs;
  for (auto& f : good) {
    auto got = f.get();
    ASSERT_EQ(got.size(), 1u);
    seqs.push_back(got[0]);
  }
  EXPECT_THROW(invalid.get(), InvalidEvent);
  EXPECT_THROW(conflict.get(), VersionConflict);
  std::sort(seqs.begin(), seqs.end());
  EXPECT_EQ(std::adjacent_find(seqs.begin(), seqs.end()), seqs.end());
  EXPECT_EQ(store.head(), 200);
  EXPECT_EQ(store.stream_version("bad"), 0);
  EXPECT_TRUE(store.verify().empty());
}

// Runs `bodies` on threads that queue one after another behind a Transaction holding
// the writer, then ends it: their appends form one group commit, in this order.
// Returns their outcomes, in order.
std::vector<Outcome> one_group(
    Store& store, const std::vector<std::function<std::vector<Seq>()>>& bodies) {
  std::vector<Outcome> outcomes(bodies.size());
  std::deque<std::atomic<pid_t>> tids(bodies.size());
  std::vector<std::thread> pool;
  {
    auto tx = store.transaction();
    for (std::size_t i = 0; i < bodies.size(); ++i) {
      pool.emplace_back([&, i] {
        tids[i] = current_tid();
        try {
          outcomes[i].seqs = bodies[i]();
        } catch (const Error& e) {
          outcomes[i].error = e.code();
          outcomes[i].what = e.what();
        }
      });
      // The next one starts once this one waits in the queue.
      EXPECT_TRUE(
          wait_until([&] { return tids[i] != 0 && thread_state(tids[i]) == 'S'; }));
    }
    tx.rollback();
  }
  for (auto& thread : pool) thread.join();
  return outcomes;
}

std::vector<Seq> append_all(Store& store, const std::string& stream,
                            const std::vector<NewEvent>& events) {
  return store.append(stream, events);
}

NewEvent with_id(NewEvent e, std::string id) {
  e.id = std::move(id);
  return e;
}

// Two appenders of one new event id in one group: the id is stored once and both get
// its seq, as if they had run one after the other.
TEST(GroupCommit, OneNewIdTwiceInAGroupIsStoredOnceAndBothGetItsSeq) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  const NewEvent e = with_id(event("Paid", "{\"n\":1}"), new_event_id());
  auto outcomes =
      one_group(store, {[&] { return append_all(store, "s", {e}); },
                        [&] { return append_all(store, "other", {event("X")}); },
                        [&] { return append_all(store, "s", {e}); }});
  for (const auto& o : outcomes) ASSERT_FALSE(o.error) << o.what;
  EXPECT_EQ(outcomes[0].seqs, outcomes[2].seqs);
  EXPECT_EQ(store.head(), 2);
  EXPECT_EQ(store.stream_version("s"), 1);
}

TEST(GroupCommit, OneIdWithTwoContentsInAGroupLetsTheFirstWin) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  const std::string id = new_event_id();
  const NewEvent first = with_id(event("Paid", "{\"n\":1}"), id);
  const NewEvent second = with_id(event("Paid", "{\"n\":2}"), id);
  auto outcomes =
      one_group(store, {[&] { return append_all(store, "a", {first}); },
                        [&] { return append_all(store, "b", {second}); },
                        [&] { return store.append("c", numbered_events(2)); }});
  ASSERT_FALSE(outcomes[0].error) << outcomes[0].what;
  EXPECT_EQ(outcomes[1].error, ErrorCode::id_conflict) << outcomes[1].what;
  ASSERT_FALSE(outcomes[2].error) << outcomes[2].what;
  EXPECT_EQ(store.head(), 3);
  EXPECT_EQ(store.stream_version("b"), 0);
  EXPECT_EQ(store.read_stream("a").to_vector().at(0).data, "{\"n\":1}");
}

// Expected versions hold against what the requests before, in the same group, wrote.
TEST(GroupCommit, ExpectedVersionsInAGroupSeeTheRequestsBefore) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  auto outcomes = one_group(
      store,
      {[&] { return store.append("s", numbered_events(1), Expected::exactly(0)); },
       [&] { return store.append("s", numbered_events(2), Expected::exactly(1)); },
       [&] { return store.append("s", numbered_events(1), Expected::no_stream()); },
       [&] { return store.append("s", numbered_events(1), Expected::exactly(3)); },
       [&] { return store.append("t", numbered_events(1), Expected::no_stream()); }});
  EXPECT_FALSE(outcomes[0].error) << outcomes[0].what;
  EXPECT_FALSE(outcomes[1].error) << outcomes[1].what;
  EXPECT_EQ(outcomes[2].error, ErrorCode::version_conflict) << outcomes[2].what;
  EXPECT_NE(outcomes[2].what.find("actual 3"), std::string::npos) << outcomes[2].what;
  EXPECT_FALSE(outcomes[3].error) << outcomes[3].what;
  EXPECT_FALSE(outcomes[4].error) << outcomes[4].what;
  EXPECT_EQ(versions_of(store.read_stream("s").to_vector()), one_to(4));
  EXPECT_EQ(store.head(), 5);
  EXPECT_TRUE(store.verify().empty());
}

// A request with an id twice fails alone, even when its rows share INSERTs with other
// requests' rows; every other request's seqs point at its own events.
TEST(GroupCommit, AnIdTwiceInOneRequestOfAGroupFailsOnlyThatRequest) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  const NewEvent stored = with_id(event("Stored"), new_event_id());
  const Seq stored_seq = store.append("stored", stored);
  auto twice = numbered_events(40, "Twice");
  for (auto& e : twice) e.id = new_event_id();
  twice[35].id = twice[2].id;
  std::vector<std::function<std::vector<Seq>()>> bodies;
  for (int r = 0; r < 6; ++r) {
    bodies.push_back([&store, r] {
      return store.append("r" + std::to_string(r),
                          numbered_events(r % 2 == 0 ? 1 : 20, "R" + std::to_string(r)));
    });
  }
  bodies.insert(bodies.begin() + 3, [&] { return store.append("twice", twice); });
  bodies.push_back([&] { return append_all(store, "stored", {stored, event("After")}); });
  auto outcomes = one_group(store, bodies);

  EXPECT_EQ(outcomes[3].error, ErrorCode::invalid_event) << outcomes[3].what;
  EXPECT_NE(outcomes[3].what.find("35"), std::string::npos) << outcomes[3].what;
  EXPECT_EQ(store.stream_version("twice"), 0);
  const auto events = store.read_all().to_vector();
  std::size_t written = 1;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    if (i == 3) continue;
    ASSERT_FALSE(outcomes[i].error) << i << ": " << outcomes[i].what;
    written += outcomes[i].seqs.size();
  }
  EXPECT_EQ(outcomes.back().seqs.at(0), stored_seq);
  EXPECT_EQ(store.head(), static_cast<Seq>(written - 1));
  for (std::size_t i = 0; i + 1 < outcomes.size(); ++i) {
    if (i == 3) continue;
    const int r = static_cast<int>(i < 3 ? i : i - 1);
    for (std::size_t k = 0; k < outcomes[i].seqs.size(); ++k) {
      const Event& e = events.at(static_cast<std::size_t>(outcomes[i].seqs[k] - 1));
      EXPECT_EQ(e.stream, "r" + std::to_string(r));
      EXPECT_EQ(e.type, "R" + std::to_string(r));
      EXPECT_EQ(e.version, static_cast<Version>(k + 1));
    }
  }
  EXPECT_TRUE(store.verify().empty());
}

TEST(GroupCommit, AppendFromThreadHoldingTransactionThrowsInvalidArgument) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  std::promise<std::string> result;
  auto done = result.get_future();
  std::thread holder([&] {
    try {
      auto tx = store.transaction();
      std::string what = "no exception";
      try {
        store.append("s", event("Outside"));
      } catch (const InvalidArgument&) {
        what = "invalid_argument";
      } catch (const std::exception& e) {
        what = std::string("other exception: ") + e.what();
      }
      tx.append("s", event("Inside"));  // the transaction is still usable
      tx.commit();
      result.set_value(what);
    } catch (const std::exception& e) {
      result.set_value(std::string("transaction failed: ") + e.what());
    }
  });
  if (done.wait_for(5s) != std::future_status::ready) {
    std::fprintf(stderr, "Store::append deadlocked on a thread holding a Transaction\n");
    std::_Exit(1);
  }
  holder.join();
  EXPECT_EQ(done.get(), "invalid_argument");
  auto events = store.read_all().to_vector();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "Inside");
}

TEST(GroupCommit, StoreDestructorWaitsForAppendsInFlight) {
  TempDir dir;
  const auto path = dir / "app.db";
  std::vector<std::future<std::vector<Seq>>> futures;
  {
    auto store = Store::open(path, fast_options());
    for (int i = 0; i < 100; ++i)
      futures.push_back(store.append_async("s", numbered_events(2)));
  }
  for (auto& f : futures) {
    ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(f.get().size(), 2u);
  }
  auto store = Store::open(path, fast_options());
  EXPECT_EQ(store.head(), 200);
  EXPECT_EQ(store.stream_version("s"), 200);
}

// The change watch trusts the writer's mark: odd exactly while the write lock may be
// held (an append's group, a Transaction), even again after commit, rollback or a
// failed BEGIN.
TEST(GroupCommit, WriteEpochIsOddOnlyWhileTheWriterHoldsTheLock) {
  TempDir dir;
  StoreOptions options;
  options.busy_timeout = std::chrono::milliseconds(10);
  Store store = Store::open(dir / "app.db", options);
  const auto& notifier = *detail::StoreAccess::impl(store)->notifier;
  const std::uint64_t start = notifier.write_epoch();
  EXPECT_EQ(start % 2, 0u);
  store.append("s", NewEvent{.type = "E", .data = "{}", .metadata = "{}", .id = {}});
  EXPECT_EQ(notifier.write_epoch(), start + 2);  // locked once, unlocked once

  {
    Transaction txn = store.transaction();
    EXPECT_EQ(notifier.write_epoch() % 2, 1u);
    txn.commit();
  }
  EXPECT_EQ(notifier.write_epoch() % 2, 0u);
  {
    Transaction txn = store.transaction();
    EXPECT_EQ(notifier.write_epoch() % 2, 1u);
  }  // rolled back
  EXPECT_EQ(notifier.write_epoch() % 2, 0u);

  // Another connection holds the write lock: BEGIN IMMEDIATE fails after the busy
  // timeout, and the mark never turns odd.
  const std::uint64_t before = notifier.write_epoch();
  RawDb other(dir / "app.db");
  other.exec("PRAGMA busy_timeout = 0");
  other.exec("BEGIN IMMEDIATE");
  EXPECT_THROW(store.transaction(), StorageError);
  other.exec("ROLLBACK");
  EXPECT_EQ(notifier.write_epoch(), before);
}

}  // namespace
}  // namespace eventlite
