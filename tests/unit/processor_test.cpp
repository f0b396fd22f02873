// The processor in one process: delivery, order, retries on an injected clock, dead
// letters, transactional handlers, routers, filters, typed handlers, observers,
// metrics, wake-ups, stop, leases between two processors of one process.

#include "eventlite/processor.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "eventlite/transaction.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;
using namespace std::chrono_literals;

// Records deliveries; safe from several worker threads.
struct Recorder {
  std::mutex mu;
  std::vector<Seq> seqs;
  std::map<std::string, std::vector<Version>> by_stream;

  Handler handler() {
    return [this](const Context& ctx) {
      std::lock_guard lock(mu);
      seqs.push_back(ctx.event().seq);
      by_stream[ctx.event().stream].push_back(ctx.event().version);
    };
  }
  std::vector<Seq> snapshot() {
    std::lock_guard lock(mu);
    return seqs;
  }
  std::size_t count() {
    std::lock_guard lock(mu);
    return seqs.size();
  }
};

ProcessorOptions manual(const std::shared_ptr<ManualClock>& clock) {
  ProcessorOptions o;
  o.clock = clock;
  o.retry.jitter = 0;
  return o;
}

RetryPolicy exact(int attempts, std::chrono::milliseconds base, double factor = 2.0,
                  std::chrono::milliseconds cap = 60s) {
  return RetryPolicy{
      .max_attempts = attempts, .base = base, .factor = factor, .cap = cap, .jitter = 0};
}

Seq position_of(Store& store, const std::string& name) {
  for (const auto& s : status(store).subscriptions)
    if (s.name == name) return s.position;
  return -1;
}

// Now as the file writes times: UTC ISO-8601 with milliseconds.
std::string now_text() {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[40];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

SubscriptionMetrics metrics_of(const Processor& p, const std::string& name) {
  for (auto& m : p.metrics())
    if (m.name == name) return m;
  ADD_FAILURE() << "no metrics for " << name;
  return {};
}

TEST(Processor, DeliversEveryEventOnceInSeqOrderAndCommitsTheCheckpoint) {
  auto store = Store::open(":memory:");
  store.append("a", numbered_events(5));
  store.append("b", numbered_events(5));
  Recorder rec;
  Processor p(store);
  p.subscribe("all", rec.handler());
  EXPECT_EQ(p.run_until_idle(), 10u);
  EXPECT_EQ(rec.snapshot(), (std::vector<Seq>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(position_of(store, "all"), 10);
  EXPECT_EQ(p.run_until_idle(), 0u);
  store.append("a", event("More"));
  EXPECT_EQ(p.run_until_idle(), 1u);
  EXPECT_EQ(rec.snapshot().back(), 11);
  EXPECT_EQ(position_of(store, "all"), 11);
}

TEST(Processor, ARestartedProcessorGoesOnFromTheCheckpoint) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  store.append("a", numbered_events(3));
  {
    Processor p(store);
    Recorder rec;
    p.subscribe("s", rec.handler());
    EXPECT_EQ(p.run_until_idle(), 3u);
  }
  store.append("a", numbered_events(2));
  Processor p(store);
  Recorder rec;
  p.subscribe("s", rec.handler());
  EXPECT_EQ(p.run_until_idle(), 2u);
  EXPECT_EQ(rec.snapshot(), (std::vector<Seq>{4, 5}));
}

TEST(Processor, KeepsStreamOrderWithEightWorkersAndAThousandStreams) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  constexpr int kStreams = 1000;
  constexpr int kPerStream = 5;
  // Interleave the streams, so that every batch holds many of them.
  for (int round = 0; round < kPerStream; ++round) {
    auto txn = store.transaction();
    for (int s = 0; s < kStreams; ++s) txn.append("s-" + std::to_string(s), event("E"));
    txn.commit();
  }
  Recorder rec;
  // Streams run in parallel: s-0's first event waits until s-1's has started (it
  // would wait in vain if s-1 came after it on the same thread).
  std::atomic<bool> s1_started{false};
  bool overlapped = false;
  ProcessorOptions o;
  o.worker_threads = 8;
  o.batch_size = 256;
  Processor p(store, o);
  p.subscribe("ordered", [&](const Context& ctx) {
    if (ctx.event().stream == "s-1") s1_started = true;
    if (ctx.event().seq == 1) overlapped = wait_until([&] { return s1_started.load(); });
    rec.handler()(ctx);
  });
  p.start();
  ASSERT_TRUE(p.wait_idle(30s));
  p.stop();
  EXPECT_TRUE(overlapped);
  ASSERT_EQ(rec.count(), static_cast<std::size_t>(kStreams * kPerStream));
  for (const auto& [stream, versions] : rec.by_stream)
    ASSERT_EQ(versions, (std::vector<Version>{1, 2, 3, 4, 5})) << stream;
  EXPECT_EQ(position_of(store, "ordered"), kStreams * kPerStream);
}

TEST(Processor, BackoffFollowsTheInjectedClock) {
  auto store = Store::open(":memory:");
  store.append("a", event("E"));
  auto clock = std::make_shared<ManualClock>();
  std::vector<int> attempts;
  Processor p(store, manual(clock));
  p.subscribe("flaky",
              [&](const Context& ctx) {
                attempts.push_back(ctx.attempt());
                throw std::runtime_error("smtp down");
              },
              {.retry = exact(5, 100ms, 2.0, 300ms)});
  EXPECT_EQ(p.run_until_idle(), 1u);  // attempt 1, fails: due in 100 ms
  // Waits 100, 200, 300 (cap), 300 ms: nothing happens a millisecond early.
  for (auto wait : {100ms, 200ms, 300ms, 300ms}) {
    clock->advance(wait - 1ms);
    EXPECT_EQ(p.run_until_idle(), 0u)
        << "early by 1 ms before a wait of " << wait.count();
    clock->advance(1ms);
    EXPECT_EQ(p.run_until_idle(), 1u) << "due after " << wait.count() << " ms";
  }
  EXPECT_EQ(attempts, (std::vector<int>{1, 2, 3, 4, 5}));
  clock->advance(1h);
  EXPECT_EQ(p.run_until_idle(), 0u);  // dead after 5 attempts
  auto dead = dead_letters(store, "flaky");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].attempts, 5);
  EXPECT_EQ(dead[0].last_error, "smtp down");
  auto m = metrics_of(p, "flaky");
  EXPECT_EQ(m.failed, 5u);
  EXPECT_EQ(m.retried, 4u);
  EXPECT_EQ(m.dead, 1u);
  EXPECT_EQ(m.position, 1);
}

TEST(Processor, JitterSpreadsRetriesWithinItsBounds) {
  auto store = Store::open(":memory:");
  for (int i = 0; i < 40; ++i) store.append("s-" + std::to_string(i), event("E"));
  auto clock = std::make_shared<ManualClock>();
  Processor p(store, manual(clock));
  p.subscribe("jittery", [](const Context&) { throw std::runtime_error("no"); },
              {.retry = RetryPolicy{.max_attempts = 3, .base = 1000ms, .jitter = 0.5}});
  p.run_until_idle();
  // Every retry is due within [500, 1500] ms, and they are not all due together.
  clock->advance(499ms);
  EXPECT_EQ(p.run_until_idle(), 0u);
  clock->advance(1001ms);
  EXPECT_EQ(p.run_until_idle(), 40u);
  auto s = status(store).subscriptions.at(0);
  EXPECT_EQ(s.owed, 40u);
}

TEST(Processor, AFailingStreamWaitsWhileOtherStreamsGoOn) {
  auto store = Store::open(":memory:");
  store.append("bad", event("E"));   // 1
  store.append("good", event("E"));  // 2
  store.append("bad", event("E"));   // 3
  store.append("good", event("E"));  // 4
  auto clock = std::make_shared<ManualClock>();
  Recorder rec;
  bool fail = true;
  Processor p(store, manual(clock));
  p.subscribe("s",
              [&](const Context& ctx) {
                if (ctx.event().stream == "bad" && fail)
                  throw std::runtime_error("not yet");
                rec.handler()(ctx);
              },
              {.retry = exact(5, 1s)});
  p.run_until_idle();
  EXPECT_EQ(rec.snapshot(), (std::vector<Seq>{2, 4}));
  auto st = status(store).subscriptions.at(0);
  EXPECT_EQ(st.position, 4);   // passed the owed events: they have rows
  EXPECT_EQ(st.owed, 2u);      // 1 retrying, 3 waiting behind it
  fail = false;
  clock->advance(1s);
  EXPECT_EQ(p.run_until_idle(), 2u);
  EXPECT_EQ(rec.snapshot(), (std::vector<Seq>{2, 4, 1, 3}));  // bad stays in order
  EXPECT_EQ(status(store).subscriptions.at(0).owed, 0u);
}

TEST(Processor, DeadLetterIsParkedAndItsStreamGoesOn) {
  auto store = Store::open(":memory:");
  store.append("a", event("Poison", R"({"bad":true})"));
  store.append("a", event("Fine"));
  Recorder rec;
  Processor p(store);
  p.subscribe("s",
              [&](const Context& ctx) {
                if (ctx.event().type == "Poison")
                  throw std::runtime_error("cannot handle");
                rec.handler()(ctx);
              },
              {.retry = exact(1, 1s)});
  p.run_until_idle();
  EXPECT_EQ(rec.snapshot(), (std::vector<Seq>{2}));
  auto dead = dead_letters(store);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].seq, 1);
  EXPECT_EQ(dead[0].type, "Poison");
  EXPECT_EQ(dead[0].last_error, "cannot handle");
  EXPECT_EQ(position_of(store, "s"), 2);
}

TEST(Processor, OnDeadStopHoldsTheSubscriptionUntilTheLetterIsDealtWith) {
  auto store = Store::open(":memory:");
  store.append("a", event("Poison"));
  store.append("b", event("Fine"));
  Recorder rec;
  bool poison = true;
  Processor p(store);
  p.subscribe("strict",
              [&](const Context& ctx) {
                if (ctx.event().type == "Poison" && poison)
                  throw std::runtime_error("boom");
                rec.handler()(ctx);
              },
              {.retry = exact(1, 1s), .on_dead = OnDead::stop});
  p.run_until_idle();
  EXPECT_TRUE(metrics_of(p, "strict").stopped);
  store.append("b", event("Later"));
  p.run_until_idle();
  EXPECT_TRUE(rec.snapshot().empty());         // nothing after the dead letter
  EXPECT_EQ(position_of(store, "strict"), 1);  // stops at the dead letter
  poison = false;
  EXPECT_EQ(retry_dead_letters(store, "strict"), 1u);
  p.run_until_idle();
  EXPECT_FALSE(metrics_of(p, "strict").stopped);
  auto seqs = rec.snapshot();
  EXPECT_EQ(std::set<Seq>(seqs.begin(), seqs.end()), (std::set<Seq>{1, 2, 3}));
  EXPECT_EQ(position_of(store, "strict"), 3);
  EXPECT_TRUE(dead_letters(store).empty());
}

TEST(Processor, RetriedDeadLetterIsDeliveredAgainAndDiscardedOneIsNot) {
  auto store = Store::open(":memory:");
  store.append("a", event("E"));
  store.append("b", event("E"));
  Recorder rec;
  bool fail = true;
  Processor p(store);
  p.subscribe("s",
              [&](const Context& ctx) {
                if (fail) throw std::runtime_error("down");
                rec.handler()(ctx);
              },
              {.retry = exact(1, 1s)});
  p.run_until_idle();
  ASSERT_EQ(dead_letters(store, "s").size(), 2u);
  fail = false;
  const Seq one[] = {1};
  EXPECT_EQ(retry_dead_letters(store, "s", one), 1u);
  EXPECT_EQ(discard_dead_letters(store, "s", std::span<const Seq>(one + 0, 0)),
            1u);  // all
  EXPECT_EQ(p.run_until_idle(), 1u);
  EXPECT_EQ(rec.snapshot(), (std::vector<Seq>{1}));
  EXPECT_TRUE(dead_letters(store).empty());
  EXPECT_THROW(retry_dead_letters(store, "nope"), InvalidArgument);
}

TEST(Processor, TransactionalHandlerWritesCommitWithTheCheckpointAndAThrowUndoesThem) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  {
    auto txn = store.transaction();
    txn.database().exec("CREATE TABLE history(seq INTEGER NOT NULL, note TEXT)");
    txn.commit();
  }
  store.append("u-1", event("Created"));
  store.append("u-1", event("Approved"));
  auto clock = std::make_shared<ManualClock>();
  int calls = 0;
  Processor p(store, manual(clock));
  p.subscribe("history",
              [&](const Context& ctx) {
                ++calls;
                auto& db = ctx.transaction().database();
                SQLite::Statement insert(db,
                                         "INSERT INTO history(seq, note) VALUES (?, ?)");
                insert.bind(1, static_cast<int64_t>(ctx.event().seq));
                insert.bind(2, ctx.event().type);
                insert.exec();
                if (ctx.event().type == "Approved" && ctx.attempt() == 1)
                  throw std::runtime_error("after writing");
              },
              {.retry = exact(3, 10ms), .transactional = true});
  p.run_until_idle();
  RawDb raw(dir / "app.db");
  // The failed delivery's row was rolled back with it; the checkpoint passed it.
  EXPECT_EQ(raw.query_int("SELECT count(*) FROM history"), 1);
  EXPECT_EQ(raw.query_int("SELECT position FROM eventlite_subscriptions"), 2);
  clock->advance(10ms);
  p.run_until_idle();
  EXPECT_EQ(raw.query_column("SELECT note FROM history ORDER BY seq"),
            (std::vector<std::string>{"Created", "Approved"}));
  EXPECT_EQ(calls, 3);
}

TEST(Processor, TransactionalHandlerOfAnotherSubscriptionIsRejected) {
  auto store = Store::open(":memory:");
  store.append("a", event("E"));
  std::string error;
  Processor p(store);
  p.subscribe("plain", [&](const Context& ctx) {
    EXPECT_FALSE(ctx.transactional());
    try {
      ctx.transaction();
    } catch (const InvalidArgument& e) {
      error = e.what();
    }
  });
  p.run_until_idle();
  EXPECT_NE(error.find("not transactional"), std::string::npos) << error;
}

TEST(Processor, RouterAppendsItsJobsExactlyOnce) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  for (int i = 0; i < 20; ++i)
    store.append("order-" + std::to_string(i), event("OrderPlaced"));
  auto route = [](const Context& ctx) {
    for (const char* job : {"notify-fan", "notify-talent", "invoice"}) {
      NewEvent e = event("JobQueued", nlohmann::json{{"job", job}}.dump());
      ctx.transaction().append("jobs-" + ctx.event().stream, e);
    }
    if (ctx.event().stream == "order-7" && ctx.attempt() == 1)
      throw std::runtime_error("fails after appending");
  };
  auto clock = std::make_shared<ManualClock>();
  {
    Processor p(store, manual(clock));
    p.subscribe(
        "router", route,
        {.types = {"OrderPlaced"}, .retry = exact(3, 1ms), .transactional = true});
    p.run_until_idle();
    clock->advance(1ms);
    p.run_until_idle();
  }
  {  // a restart does not route again
    Processor p(store, manual(clock));
    p.subscribe(
        "router", route,
        {.types = {"OrderPlaced"}, .retry = exact(3, 1ms), .transactional = true});
    EXPECT_EQ(p.run_until_idle(), 0u);
  }
  RawDb raw(dir / "app.db");
  EXPECT_EQ(raw.query_int("SELECT count(*) FROM eventlite_events WHERE type='JobQueued'"),
            60);
  EXPECT_EQ(raw.query_int("SELECT count(*) FROM eventlite_events WHERE "
                          "stream='jobs-order-7'"),
            3);
}

TEST(Processor, FiltersByTypeAndStreamPrefix) {
  auto store = Store::open(":memory:");
  store.append("user-1", event("UserCreated"));
  store.append("order-1", event("UserCreated"));
  store.append("user-1", event("UserDeleted"));
  Recorder by_type;
  Recorder by_prefix;
  Processor p(store);
  p.subscribe("types", by_type.handler(), {.types = {"UserCreated"}});
  p.subscribe("prefix", by_prefix.handler(), {.stream_prefix = "user-"});
  p.run_until_idle();
  EXPECT_EQ(by_type.snapshot(), (std::vector<Seq>{1, 2}));
  EXPECT_EQ(by_prefix.snapshot(), (std::vector<Seq>{1, 3}));
  EXPECT_EQ(position_of(store, "types"), 3);  // skipped events are passed too
}

struct UserCreated {
  std::string name;
  int age = 0;
};
void from_json(const nlohmann::json& j, UserCreated& u) {
  j.at("name").get_to(u.name);
  j.at("age").get_to(u.age);
}

TEST(Processor, TypedHandlersReceiveTheirTypeAndBadDataGoesDead) {
  auto store = Store::open(":memory:");
  store.append("u-1", event("UserCreated", R"({"name":"ada","age":36})"));
  store.append("u-2", event("UserCreated", R"({"name":"bob"})"));
  store.append("u-1", event("Other"));
  std::vector<std::string> names;
  HandlerMap handlers;
  handlers.on<UserCreated>("UserCreated", [&](const UserCreated& u, const Context&) {
    names.push_back(u.name + ":" + std::to_string(u.age));
  });
  Processor p(store);
  p.subscribe("typed", handlers, {.retry = exact(1, 1s)});
  EXPECT_EQ(p.run_until_idle(), 2u);  // "Other" is not one of its types
  EXPECT_EQ(names, (std::vector<std::string>{"ada:36"}));
  auto dead = dead_letters(store, "typed");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].seq, 2);
  EXPECT_NE(dead[0].last_error.find("does not convert"), std::string::npos);
}

TEST(Processor, ObserverSeesStartDeliveredFailedDeadAndProgress) {
  auto store = Store::open(":memory:");
  store.append("a", event("Good"));
  store.append("b", event("Bad"));
  std::mutex mu;
  std::vector<std::string> seen;
  auto note = [&](std::string s) {
    std::lock_guard lock(mu);
    seen.push_back(std::move(s));
  };
  ProcessorOptions o;
  o.observer.on_start = [&](const Context& c) {
    note("start " + std::to_string(c.event().seq));
  };
  o.observer.on_delivered = [&](const Context& c, std::chrono::microseconds) {
    note("delivered " + std::to_string(c.event().seq));
  };
  o.observer.on_failed = [&](const Context& c, std::string_view e) {
    note("failed " + std::to_string(c.event().seq) + " attempt " +
         std::to_string(c.attempt()) + " " + std::string(e));
  };
  o.observer.on_dead = [&](const Context& c, std::string_view) {
    note("dead " + std::to_string(c.event().seq));
  };
  o.observer.on_progress = [&](const Context& c, double f, std::string_view m) {
    note("progress " + std::to_string(c.event().seq) + " " + std::to_string(f) + " " +
         std::string(m));
  };
  o.retry = exact(1, 1s);
  Processor p(store, o);
  p.subscribe("s", [](const Context& c) {
    c.progress(2.0, "half");  // clamped to 1
    if (c.event().type == "Bad") throw std::runtime_error("nope");
  });
  p.run_until_idle();
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "start 1", "progress 1 1.000000 half", "delivered 1", "start 2",
                      "progress 2 1.000000 half", "failed 2 attempt 1 nope", "dead 2"}));
}

TEST(Processor, MetricsCountAndMeasure) {
  auto store = Store::open(":memory:");
  store.append("a", numbered_events(10));
  Processor p(store);
  p.subscribe("m", [](const Context&) {});
  p.run_until_idle();
  store.append("a", numbered_events(3));
  auto m = metrics_of(p, "m");
  EXPECT_EQ(m.delivered, 10u);
  EXPECT_EQ(m.failed, 0u);
  EXPECT_EQ(m.position, 10);
  EXPECT_EQ(m.lag, 3);
  EXPECT_TRUE(m.leased);
  EXPECT_LE(m.latency_p50, m.latency_p99);
  EXPECT_LE(m.latency_p99, std::max(m.latency_max, 1us));
}

TEST(Processor, StartAtHeadSkipsTheBacklogButNotWhatFollows) {
  auto store = Store::open(":memory:");
  store.append("a", numbered_events(5));
  Recorder rec;
  Processor p(store);
  p.subscribe("fresh", rec.handler(), {.start_at = StartAt::head});
  EXPECT_EQ(p.run_until_idle(), 0u);
  store.append("a", event("New"));
  EXPECT_EQ(p.run_until_idle(), 1u);
  EXPECT_EQ(rec.snapshot(), (std::vector<Seq>{6}));
}

TEST(Processor, RejectsBadNamesAndOptions) {
  auto store = Store::open(":memory:");
  Processor p(store);
  p.subscribe("one", [](const Context&) {});
  EXPECT_THROW(p.subscribe("one", [](const Context&) {}), InvalidArgument);
  EXPECT_THROW(p.subscribe("", [](const Context&) {}), InvalidArgument);
  EXPECT_THROW(p.subscribe("every:x", [](const Context&) {}), InvalidArgument);
  EXPECT_THROW(p.subscribe("bridge:x", [](const Context&) {}), InvalidArgument);
  EXPECT_THROW(p.subscribe("rebuild:x", [](const Context&) {}), InvalidArgument);
  EXPECT_THROW(p.subscribe("r", [](const Context&) {}, {.retry = exact(0, 1s)}),
               InvalidArgument);
  EXPECT_THROW(p.every("t", 0ms, [] {}), InvalidArgument);
  ProcessorOptions bad;
  bad.batch_size = 0;
  EXPECT_THROW(Processor(store, bad), InvalidArgument);
  EXPECT_THROW(p.wait_idle(1ms), InvalidArgument);  // not started
}

TEST(Processor, WakesAtOnceWhenThisProcessAppends) {
  auto store = Store::open(":memory:");
  ProcessorOptions o;
  o.change_check_interval = 60s;  // only the in-process wake-up can deliver in time
  o.poll_interval = 60s;
  Recorder rec;
  Processor p(store, o);
  p.subscribe("s", rec.handler());
  p.start();
  ASSERT_TRUE(p.wait_idle(10s));
  store.append("a", event("E"));
  EXPECT_TRUE(wait_until([&] { return rec.count() == 1; }, 5s));
  p.stop();
}

TEST(Processor, SeesCommitsOfAnotherConnectionThroughDataVersion) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  ProcessorOptions o;
  o.poll_interval = 60s;  // only data_version can notice the other writer
  Recorder rec;
  Processor p(store, o);
  p.subscribe("s", rec.handler());
  p.start();
  ASSERT_TRUE(p.wait_idle(10s));
  auto other = Store::open(dir / "app.db", fast_options());  // another writer
  other.append("a", event("E"));
  EXPECT_TRUE(wait_until([&] { return rec.count() == 1; }, 5s));
  p.stop();
}

TEST(Processor, WithoutTheFileWatchItPollsDataVersion) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  ProcessorOptions o;
  o.poll_interval = 60s;
  o.lease_time = 60s;
  o.watch_file = false;  // only the change check every 2 ms can notice the other writer
  Recorder rec;
  Processor p(store, o);
  p.subscribe("s", rec.handler());
  p.start();
  ASSERT_TRUE(p.wait_idle(10s));
  auto other = Store::open(dir / "app.db", fast_options());
  other.append("a", event("E"));
  EXPECT_TRUE(wait_until([&] { return rec.count() == 1; }, 5s));
  p.stop();
}

TEST(Processor, WhileTheWatchSleepsARetryStillRunsWhenDue) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  ProcessorOptions o;
  o.poll_interval = 60s;  // nothing but the retry's due time wakes it
  o.lease_time = 60s;
  std::atomic<int> calls{0};
  Processor p(store, o);
  p.subscribe("s",
              [&](const Context&) {
                if (++calls == 1) throw std::runtime_error("once");
              },
              {.retry = exact(3, 100ms)});
  p.start();
  store.append("a", event("E"));
  EXPECT_TRUE(wait_until([&] { return calls.load() == 2; }, 10s));
  EXPECT_TRUE(p.wait_idle(10s));
  p.stop();
  EXPECT_EQ(status(store).subscriptions[0].owed, 0u);
}

TEST(Processor, StopDrainsTheDeliveryInFlight) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  store.append("a", event("Slow"));
  std::atomic<bool> entered{false};
  std::atomic<bool> release{false};
  std::atomic<bool> finished{false};
  Processor p(store);
  p.subscribe("slow", [&](const Context&) {
    entered = true;
    while (!release) std::this_thread::yield();
    finished = true;
  });
  p.start();
  ASSERT_TRUE(wait_until([&] { return entered.load(); }));
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    p.stop();
    stopped = true;
  });
  // stop() must not return while the handler runs.
  EXPECT_FALSE(wait_until([&] { return stopped.load(); }, 200ms));
  release = true;
  stopper.join();
  EXPECT_TRUE(finished);
  EXPECT_EQ(position_of(store, "slow"), 1);  // drained and committed
  auto lease = status(store).subscriptions.at(0).lease;
  ASSERT_TRUE(lease.has_value());
  EXPECT_LE(lease->expires, now_text());
}

TEST(Processor, ASubscriptionAddedWhileRunningCatchesUp) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  store.append("a", numbered_events(700));
  Recorder first;
  Recorder later;
  Processor p(store);
  p.subscribe("first", first.handler());
  p.start();
  ASSERT_TRUE(p.wait_idle(10s));
  p.subscribe("later", later.handler());
  ASSERT_TRUE(p.wait_idle(10s));
  store.append("a", event("After"));
  ASSERT_TRUE(p.wait_idle(10s));
  p.stop();
  EXPECT_EQ(first.count(), 701u);
  EXPECT_EQ(later.count(), 701u);
  EXPECT_EQ(position_of(store, "later"), 701);
}

TEST(Processor, OnlyTheLeaseHolderDispatchesAndStopHandsItOver) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  store.append("a", numbered_events(3));
  Recorder a_rec;
  Recorder b_rec;
  auto a = std::make_unique<Processor>(store, ProcessorOptions{.owner = "A"});
  Processor b(store, ProcessorOptions{.owner = "B"});
  a->subscribe("relay", a_rec.handler());
  b.subscribe("relay", b_rec.handler());
  EXPECT_EQ(a->run_until_idle(), 3u);
  store.append("a", event("E"));
  EXPECT_EQ(b.run_until_idle(), 0u);  // A holds the lease
  EXPECT_FALSE(metrics_of(b, "relay").leased);
  // Any process's `status` shows B standing by for the lease A holds.
  const auto standbys = [&] {
    for (const SubscriptionStatus& sub : status(store).subscriptions)
      if (sub.name == "relay") return sub.standbys;
    return std::vector<Standby>{};
  };
  ASSERT_EQ(standbys().size(), 1u);
  EXPECT_EQ(standbys()[0].owner, "B");
  a.reset();  // releases its lease
  // B looks again when the lease it saw expires; a released lease has expired.
  EXPECT_TRUE(wait_until([&] { return b.run_until_idle() == 1; }, 20s));
  EXPECT_EQ(b_rec.snapshot(), (std::vector<Seq>{4}));
  EXPECT_TRUE(standbys().empty());  // it holds the lease now
}

TEST(Processor, RewindWhileRunningDeliversAgainFromThere) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  store.append("a", numbered_events(5));
  Recorder rec;
  Processor p(store);
  p.subscribe("s", rec.handler());
  p.start();
  ASSERT_TRUE(p.wait_idle(10s));
  rewind(store, "s", 3);
  EXPECT_TRUE(wait_until([&] { return rec.count() == 8; }, 10s));
  ASSERT_TRUE(p.wait_idle(10s));
  p.stop();
  EXPECT_EQ(rec.snapshot(), (std::vector<Seq>{1, 2, 3, 4, 5, 3, 4, 5}));
  EXPECT_EQ(position_of(store, "s"), 5);
}

TEST(Processor, InMemoryStoreWorksWithThreadsAppendingWhileItRuns) {
  auto store = Store::open(":memory:");
  Recorder rec;
  Processor p(store);
  p.subscribe("s", rec.handler());
  p.start();
  std::vector<std::thread> appenders;
  for (int t = 0; t < 4; ++t)
    appenders.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) store.append("t-" + std::to_string(t), event("E"));
    });
  for (auto& t : appenders) t.join();
  EXPECT_TRUE(wait_until([&] { return rec.count() == 200; }, 10s));
  ASSERT_TRUE(p.wait_idle(10s));
  p.stop();
  for (const auto& [stream, versions] : rec.by_stream) {
    ASSERT_EQ(versions.size(), 50u);
    for (std::size_t i = 0; i < versions.size(); ++i)
      EXPECT_EQ(versions[i], static_cast<Version>(i + 1));
  }
}

TEST(Processor, EveryRunsOncePerIntervalOnTheInjectedClock) {
  auto store = Store::open(":memory:");
  auto clock = std::make_shared<ManualClock>();
  int runs = 0;
  Processor p(store, manual(clock));
  p.every("cleanup", 1min, [&] { ++runs; });
  p.run_until_idle();
  EXPECT_EQ(runs, 1);
  clock->advance(59s);
  p.run_until_idle();
  EXPECT_EQ(runs, 1);
  clock->advance(1s);
  p.run_until_idle();
  EXPECT_EQ(runs, 2);
  // A second processor on the same store does not run it within the interval.
  int other_runs = 0;
  Processor q(store, manual(clock));
  q.every("cleanup", 1min, [&] { ++other_runs; });
  q.run_until_idle();
  EXPECT_EQ(other_runs, 0);
}

}  // namespace
}  // namespace eventlite

namespace eventlite {
namespace {

using namespace eventlite::test;
using namespace std::chrono_literals;

StoreOptions impatient() {
  StoreOptions o = fast_options();
  o.busy_timeout = 100ms;
  return o;
}

TEST(ProcessorFaults, BusyWriterDelaysTheCheckpointAndLosesNothing) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", impatient());
  Recorder rec;
  Processor p(store);
  p.subscribe("s", rec.handler());
  p.run_until_idle();  // takes the lease
  store.append("a", numbered_events(3));
  RawDb other(dir / "app.db");
  other.exec("BEGIN IMMEDIATE");  // another process holds the write lock
  EXPECT_EQ(p.run_until_idle(), 3u);
  EXPECT_EQ(other.query_int("SELECT position FROM eventlite_subscriptions"), 0);
  other.exec("COMMIT");
  EXPECT_EQ(p.run_until_idle(), 0u);  // commits what it kept, delivers nothing twice
  EXPECT_EQ(position_of(store, "s"), 3);
  EXPECT_EQ(rec.snapshot(), (std::vector<Seq>{1, 2, 3}));
}

TEST(ProcessorFaults, TransactionalBatchThatCannotGetTheWriterRunsLater) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", impatient());
  Recorder rec;
  Processor p(store);
  p.subscribe("tx", rec.handler(), {.transactional = true});
  p.run_until_idle();
  store.append("a", numbered_events(3));
  {
    RawDb other(dir / "app.db");
    other.exec("BEGIN IMMEDIATE");
    EXPECT_EQ(p.run_until_idle(), 0u);  // could not begin: nothing delivered
    EXPECT_EQ(rec.count(), 0u);
    other.exec("ROLLBACK");
  }
  EXPECT_TRUE(wait_until([&] { return p.run_until_idle() == 3; }, 10s));
  EXPECT_EQ(rec.snapshot(), (std::vector<Seq>{1, 2, 3}));
  EXPECT_EQ(position_of(store, "tx"), 3);
}

TEST(ProcessorFaults, DiskFullInATransactionalHandlerUndoesItAndRetries) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  {
    auto txn = store.transaction();
    txn.database().exec("CREATE TABLE blobs(seq INTEGER NOT NULL, body BLOB)");
    txn.commit();
  }
  store.append("a", event("Big"));
  auto clock = std::make_shared<ManualClock>();
  Processor p(store, manual(clock));
  p.subscribe("blobs",
              [](const Context& ctx) {
                auto& db = ctx.transaction().database();
                const int size = ctx.attempt() == 1 ? 8 << 20 : 16;
                if (ctx.attempt() == 1) {
                  const auto pages = db.execAndGet("PRAGMA page_count").getInt64();
                  db.exec("PRAGMA max_page_count = " + std::to_string(pages + 8));
                }
                try {
                  SQLite::Statement insert(db,
                                           "INSERT INTO blobs VALUES (?, zeroblob(?))");
                  insert.bind(1, static_cast<int64_t>(ctx.event().seq));
                  insert.bind(2, size);
                  insert.exec();
                } catch (...) {
                  db.exec("PRAGMA max_page_count = 1073741823");
                  throw;
                }
              },
              {.retry = exact(3, 1s), .transactional = true});
  // SQLite rolls the whole transaction back on disk full: nothing of it is stored,
  // and the failed attempt is counted in memory.
  p.run_until_idle();
  RawDb raw(dir / "app.db");
  EXPECT_EQ(raw.query_int("SELECT count(*) FROM blobs"), 0);
  EXPECT_EQ(position_of(store, "blobs"), 0);
  EXPECT_EQ(metrics_of(p, "blobs").failed, 1u);
  clock->advance(999ms);
  EXPECT_EQ(p.run_until_idle(), 0u);  // backoff on the injected clock
  clock->advance(1ms);
  EXPECT_EQ(p.run_until_idle(), 1u);
  EXPECT_EQ(raw.query_int("SELECT count(*) FROM blobs"), 1);
  EXPECT_EQ(position_of(store, "blobs"), 1);
}

TEST(ProcessorFaults, AHandlerThatAlwaysRollsBackIsParkedAfterItsAttempts) {
  auto store = Store::open(":memory:");
  store.append("a", event("E"));
  store.append("b", event("E"));
  auto clock = std::make_shared<ManualClock>();
  int calls = 0;
  Processor p(store, manual(clock));
  p.subscribe("rude",
              [&](const Context& ctx) {
                ++calls;
                if (ctx.event().stream == "a") ctx.transaction().rollback();
              },
              {.retry = exact(2, 1s), .transactional = true});
  for (int i = 0; i < 4; ++i) {
    p.run_until_idle();
    clock->advance(1s);
  }
  auto dead = dead_letters(store, "rude");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].seq, 1);
  EXPECT_EQ(dead[0].attempts, 2);
  EXPECT_NE(dead[0].last_error.find("ended the delivery's transaction"),
            std::string::npos);
  EXPECT_EQ(position_of(store, "rude"), 2);
  EXPECT_EQ(calls, 3);  // a twice, then parked without a third call; b once
}

TEST(ProcessorFaults, ReadOnlyStoreIsRefused) {
  TempDir dir;
  { auto store = Store::open(dir / "app.db", fast_options()); }
  StoreOptions ro = fast_options();
  ro.read_only = true;
  auto store = Store::open(dir / "app.db", ro);
  EXPECT_THROW(Processor{store}, InvalidArgument);
}

}  // namespace
}  // namespace eventlite

namespace eventlite {
namespace {

using namespace eventlite::test;
using namespace std::chrono_literals;

TEST(ProcessorFaults, AFailureWhoseCommitIsBusyStillHoldsItsStreamBack) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", impatient());
  auto clock = std::make_shared<ManualClock>();
  Recorder rec;
  bool fail = true;
  Processor p(store, manual(clock));
  p.subscribe("s",
              [&](const Context& ctx) {
                if (ctx.event().seq == 1 && fail) throw std::runtime_error("later");
                rec.handler()(ctx);
              },
              {.retry = exact(3, 1s)});
  p.run_until_idle();             // takes the lease
  store.append("a", event("E"));  // 1: fails
  {
    RawDb other(dir / "app.db");
    other.exec("BEGIN IMMEDIATE");  // its retry row cannot be written
    p.run_until_idle();
    other.exec("COMMIT");
  }
  store.append("a", event("E"));  // 2: must wait behind 1
  p.run_until_idle();
  EXPECT_TRUE(rec.snapshot().empty());
  fail = false;
  clock->advance(1s);
  p.run_until_idle();
  EXPECT_EQ(rec.snapshot(), (std::vector<Seq>{1, 2}));
}

TEST(ProcessorLease, TwoProcessorsWithOneOwnerNameNeverBothHoldALease) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  store.append("a", event("E"));
  Recorder a_rec;
  Recorder b_rec;
  Processor a(store, ProcessorOptions{.owner = "same"});
  Processor b(store, ProcessorOptions{.owner = "same"});
  a.subscribe("relay", a_rec.handler());
  b.subscribe("relay", b_rec.handler());
  EXPECT_EQ(a.run_until_idle(), 1u);
  store.append("a", event("E"));
  EXPECT_EQ(b.run_until_idle(), 0u);
  EXPECT_FALSE(metrics_of(b, "relay").leased);
  EXPECT_EQ(a.run_until_idle(), 1u);
}

TEST(ProcessorLease, AStaleTransactionalOwnerWritesNothing) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  {
    auto txn = store.transaction();
    txn.database().exec("CREATE TABLE seen(seq INTEGER NOT NULL)");
    txn.commit();
  }
  auto project = [](const Context& ctx) {
    ctx.transaction().database().exec("INSERT INTO seen VALUES (" +
                                      std::to_string(ctx.event().seq) + ")");
  };
  store.append("a", event("E"));
  auto a_clock = std::make_shared<ManualClock>();
  auto b_clock = std::make_shared<ManualClock>(a_clock->now() + 11s);
  ProcessorOptions ao = manual(a_clock);
  ao.owner = "A";
  ao.lease_time = 10s;
  ProcessorOptions bo = manual(b_clock);
  bo.owner = "B";
  bo.lease_time = 10s;
  Processor a(store, ao);
  Processor b(store, bo);
  a.subscribe("proj", project, {.transactional = true});
  b.subscribe("proj", project, {.transactional = true});
  EXPECT_EQ(a.run_until_idle(), 1u);
  EXPECT_EQ(b.run_until_idle(), 0u);  // took the expired lease over
  store.append("a", event("E"));
  EXPECT_EQ(a.run_until_idle(), 0u);  // fenced before delivering
  EXPECT_FALSE(metrics_of(a, "proj").leased);
  EXPECT_EQ(b.run_until_idle(), 1u);
  RawDb raw(dir / "app.db");
  EXPECT_EQ(raw.query_column("SELECT seq FROM seen ORDER BY seq"),
            (std::vector<std::string>{"1", "2"}));
}

TEST(ProcessorFaults, ARetriedDeadLetterIsDueAtOnceOnAManualClock) {
  auto store = Store::open(":memory:");
  store.append("a", event("E"));
  // A clock far in the past: a due time written from the system clock would never
  // come.
  auto clock = std::make_shared<ManualClock>(std::chrono::system_clock::time_point{});
  bool fail = true;
  int delivered = 0;
  Processor p(store, manual(clock));
  p.subscribe("s",
              [&](const Context&) {
                if (fail) throw std::runtime_error("no");
                ++delivered;
              },
              {.retry = exact(1, 1s)});
  p.run_until_idle();
  fail = false;
  EXPECT_EQ(retry_dead_letters(store, "s"), 1u);
  EXPECT_EQ(p.run_until_idle(), 1u);
  EXPECT_EQ(delivered, 1);
}

}  // namespace
}  // namespace eventlite

namespace eventlite {
namespace {

using namespace eventlite::test;

TEST(Processor, LargeEventsComeInSmallerBatchesAndAllArrive) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  // 24 events of 512 KiB: a batch stops at 4 MiB, well before its 512 events, and
  // the next batch must follow at once rather than wait for a new append.
  const std::string big = "\"" + std::string(512 * 1024, 'x') + "\"";
  for (int i = 0; i < 24; ++i)
    store.append("blob-" + std::to_string(i % 3), event("Big", big));
  Recorder rec;
  Processor p(store);
  p.subscribe("big", rec.handler());
  EXPECT_EQ(p.run_until_idle(), 24u);
  std::vector<Seq> expected;
  for (Seq s = 1; s <= 24; ++s) expected.push_back(s);
  EXPECT_EQ(rec.snapshot(), expected);
  EXPECT_EQ(position_of(store, "big"), 24);
}

}  // namespace
}  // namespace eventlite

namespace eventlite {
namespace {

using namespace eventlite::test;
using namespace std::chrono_literals;

TEST(Processor, RewindOnAManualClockIsPickedUpByTheNextRun) {
  auto store = Store::open(":memory:");
  store.append("a", numbered_events(3));
  // A clock far in the past: a lease end stamped from the system clock would hold.
  auto clock =
      std::make_shared<ManualClock>(std::chrono::system_clock::time_point{} + 1h);
  Recorder rec;
  Processor p(store, manual(clock));
  p.subscribe("s", rec.handler());
  EXPECT_EQ(p.run_until_idle(), 3u);
  rewind(store, "s", 2);
  EXPECT_EQ(p.run_until_idle(), 2u);
  EXPECT_EQ(rec.snapshot(), (std::vector<Seq>{1, 2, 3, 2, 3}));
  EXPECT_EQ(position_of(store, "s"), 3);
}

TEST(Processor, DataThatDoesNotConvertIsParkedAtOnceNotRetried) {
  auto store = Store::open(":memory:");
  store.append("u-2", event("UserCreated", R"({"name":"bob"})"));
  HandlerMap handlers;
  handlers.on<UserCreated>("UserCreated", [](const UserCreated&, const Context&) {});
  Processor p(store);
  p.subscribe("typed", handlers);  // the default policy: 5 attempts
  EXPECT_EQ(p.run_until_idle(), 1u);
  auto dead = dead_letters(store, "typed");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].attempts, 1);
  EXPECT_EQ(metrics_of(p, "typed").dead, 1u);
}

TEST(Processor, PermanentErrorsAreParkedAtOnceAndRetryableOnesRetried) {
  auto store = Store::open(":memory:");
  store.append("a", event("Permanent"));
  store.append("b", event("BrokerRefused"));
  store.append("c", event("BrokerDown"));
  auto clock = std::make_shared<ManualClock>();
  Processor p(store, manual(clock));
  p.subscribe("s", [](const Context& ctx) {
    const std::string& type = ctx.event().type;
    if (type == "Permanent") throw PermanentError("no such account");
    if (type == "BrokerRefused") throw BrokerError("redis", false, "WRONGTYPE");
    throw BrokerError("redis", true, "connection lost");
  });
  p.run_until_idle();
  auto dead = dead_letters(store, "s");
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].seq, 1);
  EXPECT_EQ(dead[0].last_error, "no such account");
  EXPECT_EQ(dead[1].seq, 2);
  EXPECT_EQ(dead[1].last_error, "redis: WRONGTYPE");
  EXPECT_EQ(status(store).subscriptions[0].owed, 1u);  // the retryable one
}

TEST(Processor, OnDeadHoldKeepsTheStreamBehindItsDeadLetterWhileOthersGoOn) {
  auto store = Store::open(":memory:");
  store.append("a", event("Poison"));  // 1
  store.append("a", event("E"));       // 2
  store.append("b", event("E"));       // 3
  bool healed = false;
  Recorder rec;
  auto record = rec.handler();
  Processor p(store);
  p.subscribe("held",
              [&](const Context& ctx) {
                if (ctx.event().type == "Poison" && !healed)
                  throw std::runtime_error("poison");
                record(ctx);
              },
              {.retry = exact(1, 1s), .on_dead = OnDead::hold});
  p.run_until_idle();
  EXPECT_EQ(rec.snapshot(), (std::vector<Seq>{3}));
  store.append("a", event("E"));  // 4: waits too
  store.append("b", event("E"));  // 5: goes on
  p.run_until_idle();
  EXPECT_EQ(rec.snapshot(), (std::vector<Seq>{3, 5}));
  const auto st = status(store).subscriptions[0];
  EXPECT_EQ(st.dead, 1u);
  EXPECT_EQ(st.held, 1u);
  EXPECT_EQ(st.owed, 2u);  // 2 and 4 wait behind the letter
  healed = true;
  const Seq one[] = {1};
  EXPECT_EQ(retry_dead_letters(store, "held", one), 1u);
  p.run_until_idle();
  EXPECT_EQ(rec.snapshot(), (std::vector<Seq>{3, 5, 1, 2, 4}));  // stream a in order
  EXPECT_EQ(status(store).subscriptions[0].held, 0u);
}

TEST(Processor, HeldStreamsAndLagInTimeShowInTheViews) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  store.append("a", event("Poison"));
  store.append("a", event("E"));
  Processor p(store);
  p.subscribe("held", [](const Context&) { throw std::runtime_error("poison"); },
              {.retry = exact(1, 1s), .on_dead = OnDead::hold});
  p.run_until_idle();
  RawDb raw(dir / "app.db");
  EXPECT_EQ(raw.query_column("SELECT stream || ':' || dead_seq || ':' || waiting "
                             "FROM eventlite_held_streams"),
            (std::vector<std::string>{"a:1:1"}));
  EXPECT_EQ(raw.query_column("SELECT held FROM eventlite_pending"),
            (std::vector<std::string>{"1"}));
  // The oldest owed event (2) was appended just now: a lag of seconds at most.
  const auto lag = raw.query_column("SELECT lag_seconds FROM eventlite_pending");
  ASSERT_EQ(lag.size(), 1u);
  EXPECT_LT(std::stod(lag[0]), 60.0);
  EXPECT_GE(std::stod(lag[0]), 0.0);
}

TEST(Processor, LagInTimeIsTheAgeOfTheOldestUndeliveredEvent) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  {
    // An event stamped long ago (as an import keeps its time).
    RawDb raw(dir / "app.db");
    raw.exec(
        "INSERT INTO eventlite_events(id, stream, version, type, data, metadata, time) "
        "VALUES ('0190a000-0000-7000-8000-000000000001', 'a', 1, 'E', '{}', '{}', "
        "'2020-01-01T00:00:00.000Z')");
  }
  Processor p(store);
  p.subscribe("s", [](const Context&) {});
  const auto year = std::chrono::hours(24 * 365);
  p.run_until_idle();
  EXPECT_EQ(metrics_of(p, "s").lag_time, 0ms);
  EXPECT_EQ(status(store).subscriptions[0].lag_time, 0ms);
  rewind(store, "s", 1);
  EXPECT_GT(status(store).subscriptions[0].lag_time, year);
  Processor idle(store);
  idle.subscribe("s", [](const Context&) {});
  EXPECT_GT(metrics_of(idle, "s").lag_time, 0ms);  // before it ran: its file position
}

TEST(ProcessorLease, MetricsAfterALostLeaseReportThePositionItFellBackTo) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  store.append("a", numbered_events(3));
  std::atomic<int> delivered{0};
  Processor p(store, {.lease_time = 300ms, .checkpoint_interval = 1h, .owner = "A"});
  p.subscribe("relay", [&](const Context&) { ++delivered; });
  // run_until_idle commits what it delivered before it returns, however the events
  // were split into units; started after it, the next checkpoint is an hour away.
  p.run_until_idle();
  ASSERT_EQ(position_of(store, "relay"), 3);
  p.start();
  store.append("a", numbered_events(3));
  ASSERT_TRUE(wait_until([&] { return metrics_of(p, "relay").position == 6; }, 10s));
  ASSERT_EQ(position_of(store, "relay"), 3);  // 4..6 delivered, not committed
  {
    RawDb raw(dir / "app.db");
    raw.exec(
        "UPDATE eventlite_leases SET owner = 'thief', token = token + 1, "
        "expires = '2999-01-01T00:00:00.000Z' WHERE name = 'relay'");
  }
  ASSERT_TRUE(wait_until([&] { return !metrics_of(p, "relay").leased; }, 10s));
  // Its uncommitted deliveries were given up: the position is the committed one.
  EXPECT_EQ(metrics_of(p, "relay").position, 3);
  p.stop();
  EXPECT_EQ(position_of(store, "relay"), 3);
  EXPECT_EQ(delivered.load(), 6);
}

}  // namespace
}  // namespace eventlite
