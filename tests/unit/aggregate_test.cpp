// Event-sourcing helpers: folds as of now, a seq and a time (aggregate.hpp);
// snapshots taken, used, ignored when their version changed or they do not convert;
// upcasters (upcast.hpp) checked as they are registered and applied to reads,
// replays, folds and handlers alike, never to exports; decide() retrying a conflict
// from the events since, with two threads deciding at once.

#include "eventlite/aggregate.hpp"

#include <gtest/gtest.h>

#include <barrier>
#include <sstream>
#include <thread>

#include "eventlite/processor.hpp"
#include "eventlite/replay.hpp"
#include "eventlite/sink.hpp"
#include "eventlite/subscriptions.hpp"
#include "eventlite/transaction.hpp"
#include "eventlite/transfer.hpp"
#include "eventlite/upcast.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

struct Account {
  std::int64_t balance = 0;
  std::int64_t moves = 0;
};
void to_json(nlohmann::json& j, const Account& a) {
  j = {{"balance", a.balance}, {"moves", a.moves}};
}
void from_json(const nlohmann::json& j, Account& a) {
  a.balance = j.at("balance").get<std::int64_t>();
  a.moves = j.at("moves").get<std::int64_t>();
}

Aggregate<Account> account(std::atomic<int>* applied = nullptr,
                           std::uint64_t snapshot_every = 0) {
  return {.name = "account",
          .apply =
              [applied](Account& a, const Event& e) {
                if (applied) ++*applied;
                a.balance += e.data_json().at("amount").get<std::int64_t>();
                ++a.moves;
              },
          .snapshot_every = snapshot_every};
}

NewEvent moved(std::int64_t amount, std::string time = {}) {
  NewEvent e = make_event("Moved", {{"amount", amount}});
  e.time = std::move(time);
  return e;
}

TEST(Aggregate, FoldsNowAsOfASeqAndAsOfATime) {
  Store store = Store::open(":memory:");
  store.append("account-1", moved(100, "2026-01-01T00:00:00.000Z"));
  store.append("other", moved(5));
  store.append("account-1", moved(-30, "2026-02-01T00:00:00.000Z"));
  store.append("account-1", moved(-20, "2026-03-01T00:00:00.000Z"));
  const auto now = load(store, account(), "account-1");
  EXPECT_EQ(now.state.balance, 50);
  EXPECT_EQ(now.version, 3);
  EXPECT_EQ(now.seq, 4);
  EXPECT_EQ(now.folded, 3u);
  const auto at_seq = load(store, account(), "account-1", {.to = 3});
  EXPECT_EQ(at_seq.state.balance, 70);
  EXPECT_EQ(at_seq.version, 2);
  const auto at_time =
      load(store, account(), "account-1", {.as_of = "2026-01-31T23:59:59.999Z"});
  EXPECT_EQ(at_time.state.balance, 100);
  EXPECT_EQ(at_time.version, 1);
  const auto none = load(store, account(), "nobody");
  EXPECT_EQ(none.version, 0);
  EXPECT_EQ(none.state.moves, 0);
  EXPECT_THROW(load(store, Aggregate<Account>{}, "account-1"), InvalidArgument);
  for (const char* bad : {"2026-01-31", "2026-01-31T23:59:59Z", "yesterday"})
    EXPECT_THROW(load(store, account(), "account-1", {.as_of = bad}), InvalidArgument)
        << bad;
}

TEST(Aggregate, SnapshotsAreTakenUsedAndIgnoredWhenTheyNoLongerFit) {
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  for (int i = 0; i < 250; ++i) store.append("account-1", moved(1));
  std::atomic<int> applied{0};
  auto first = load(store, account(&applied, 100), "account-1");
  EXPECT_FALSE(first.from_snapshot);
  EXPECT_EQ(applied, 250);
  RawDb raw(dir / "app.db");
  EXPECT_EQ(raw.query_int("SELECT version FROM eventlite_snapshots"), 250);

  store.append("account-1", moved(10));
  applied = 0;
  auto second = load(store, account(&applied, 100), "account-1");
  EXPECT_TRUE(second.from_snapshot);
  EXPECT_EQ(applied, 1);  // only the event past the snapshot
  EXPECT_EQ(second.state.balance, 260);
  EXPECT_EQ(second.version, 251);

  // As of a seq before the snapshot: a full fold, and no snapshot of the past.
  auto past = load(store, account(&applied, 100), "account-1", {.to = 200});
  EXPECT_FALSE(past.from_snapshot);
  EXPECT_EQ(past.state.balance, 200);
  EXPECT_EQ(raw.query_int("SELECT version FROM eventlite_snapshots"), 250);

  // The state's shape changed: the old snapshot is ignored, then replaced.
  auto v2 = account(&applied, 100);
  v2.snapshot_version = 2;
  applied = 0;
  auto reshaped = load(store, v2, "account-1");
  EXPECT_FALSE(reshaped.from_snapshot);
  EXPECT_EQ(applied, 251);
  EXPECT_EQ(reshaped.state.balance, 260);
  EXPECT_EQ(raw.query_int("SELECT schema_version FROM eventlite_snapshots"), 2);

  // A snapshot that does not convert is not fatal either.
  raw.exec("UPDATE eventlite_snapshots SET state = '{\"balance\":\"lots\"}'");
  auto spoiled = load(store, v2, "account-1");
  EXPECT_FALSE(spoiled.from_snapshot);
  EXPECT_EQ(spoiled.state.balance, 260);
  EXPECT_TRUE(load(store, v2, "account-1").from_snapshot);  // replaced by that load

  // A read-only store loads without writing one.
  raw.exec("DELETE FROM eventlite_snapshots");
  Store readonly = Store::open(dir / "app.db", {.read_only = true});
  EXPECT_EQ(load(readonly, v2, "account-1").state.balance, 260);
  EXPECT_EQ(raw.query_int("SELECT count(*) FROM eventlite_snapshots"), 0);
}

TEST(Upcasters, AGapIsAnErrorWhenRegistered) {
  Upcasters up;
  up.add("Moved", 1, [](nlohmann::json&) {});
  EXPECT_THROW(up.add("Moved", 3, [](nlohmann::json&) {}), InvalidArgument);
  EXPECT_THROW(up.add("Moved", 1, [](nlohmann::json&) {}), InvalidArgument);
  EXPECT_THROW(up.add("Other", 2, [](nlohmann::json&) {}), InvalidArgument);
  EXPECT_THROW(up.add("Other", 1, {}), InvalidArgument);
  EXPECT_EQ(up.current("Moved"), 2);
  EXPECT_EQ(up.current("Other"), 1);  // the failed registrations left nothing
}

TEST(Upcasters, OldPayloadsAreMadeCurrentForReadsReplaysFoldsAndHandlersNotExports) {
  auto up = std::make_shared<Upcasters>();
  // v1 {"cents":N} -> v2 {"amount":N/100} -> v3 adds a currency.
  up->add("Moved", 1, [](nlohmann::json& d) {
      d["amount"] = d.at("cents").get<std::int64_t>() / 100;
      d.erase("cents");
    }).add("Moved", 2, [](nlohmann::json& d) { d["currency"] = "EUR"; });
  TempDir dir;
  {  // Before the upcasters: the code of version 1.
    Store old = Store::open(dir / "app.db", fast_options());
    old.append("account-1", make_event("Moved", {{"cents", 500}}));
  }
  StoreOptions options = fast_options();
  options.upcasters = up;
  Store store = Store::open(dir / "app.db", options);
  store.append("account-1", make_event("Moved", {{"amount", 7}}, {{"schema", 2}}));
  store.append("account-1",
               up->stamp(make_event("Moved", {{"amount", 1}, {"currency", "USD"}})));
  store.append("account-1", make_event("Opened", {{"cents", 1}}));  // no upcaster

  const auto events = store.read_all().to_vector();
  EXPECT_EQ(events[0].data_json(), (nlohmann::json{{"amount", 5}, {"currency", "EUR"}}));
  EXPECT_EQ(events[0].metadata_json().at("schema"), 3);
  EXPECT_EQ(events[1].data_json(), (nlohmann::json{{"amount", 7}, {"currency", "EUR"}}));
  EXPECT_EQ(events[2].data, R"({"amount":1,"currency":"USD"})");  // current: as stored
  EXPECT_EQ(events[3].data, R"({"cents":1})");

  std::vector<std::string> replayed;
  replay(store, [&](const Context& c) { replayed.push_back(c.event().data); },
         {.types = {"Moved"}});
  EXPECT_EQ(replayed[0], R"({"amount":5,"currency":"EUR"})");

  Aggregate<Account> fold{.apply = [](Account& a, const Event& e) {
    if (e.type == "Moved") a.balance += e.data_json().at("amount").get<std::int64_t>();
  }};
  EXPECT_EQ(load(store, fold, "account-1").state.balance, 13);

  std::vector<std::string> delivered;
  Processor p(store);
  p.subscribe("h", [&](const Context& c) { delivered.push_back(c.event().data); },
              {.types = {"Moved"}});
  p.run_until_idle();
  EXPECT_EQ(delivered, replayed);

  std::ostringstream exported;
  export_envelopes(store, exported);
  EXPECT_NE(exported.str().find(R"("data":{"cents":500})"), std::string::npos)
      << exported.str();
}

// A sink that keeps what it is given.
class KeepingSink : public Sink {
 public:
  std::optional<Seq> open(const SinkContext&) override { return std::nullopt; }
  BatchResult publish(const BatchContext& batch) override {
    for (std::size_t i = 0; i < batch.size(); ++i) data.push_back(batch.event(i).data);
    return BatchResult::ok();
  }
  void close() noexcept override {}
  std::vector<std::string> data;
};

TEST(Upcasters, SinksForwardTheStoredBytesAndAStepThatThrowsParksOnlyItsEvent) {
  auto up = std::make_shared<Upcasters>();
  up->add("Moved", 1, [](nlohmann::json& d) {
    if (!d.contains("cents")) throw std::runtime_error("no cents in it");
    d["amount"] = d.at("cents").get<std::int64_t>() / 100;
  });
  Store store = Store::open(":memory:", {.upcasters = up});
  store.append("a", make_event("Moved", {{"cents", 500}}, {{"schema", 1}}));
  store.append("a", make_event("Moved", {{"oops", 1}}, {{"schema", 1}}));
  store.append("b", make_event("Other", {{"x", 1}}));
  auto sink = std::make_shared<KeepingSink>();
  std::vector<std::string> handled;
  Processor p(store);
  p.sink("copy", sink);
  p.subscribe("h", [&](const Context& c) { handled.push_back(c.event().data); });
  p.run_until_idle();
  EXPECT_EQ(sink->data, (std::vector<std::string>{R"({"cents":500})", R"({"oops":1})",
                                                  R"({"x":1})"}));
  EXPECT_EQ(handled,
            (std::vector<std::string>{R"({"amount":5,"cents":500})", R"({"x":1})"}));
  const auto dead = dead_letters(store, "h");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].seq, 2);
  EXPECT_EQ(dead[0].attempts, 0);  // parked without a delivery
  EXPECT_NE(dead[0].last_error.find("upcasting failed: no cents in it"),
            std::string::npos)
      << dead[0].last_error;
}

TEST(Upcasters, AnAppendWithoutASchemaIsStampedCurrentUnlessItCameWithItsTime) {
  auto up = std::make_shared<Upcasters>();
  up->add("Moved", 1, [](nlohmann::json& d) { d["v2"] = true; });
  Store store = Store::open(":memory:", {.upcasters = up});
  store.append("a", make_event("Moved", {{"amount", 1}}));  // today's code, no stamp()
  {
    auto t = store.transaction();
    t.append("a", make_event("Moved", {{"amount", 2}}));
    t.commit();
  }
  NewEvent imported = make_event("Moved", {{"amount", 3}});
  imported.time = "2020-01-01T00:00:00.000Z";  // an old event, as exported then
  store.append("a", imported);
  store.append("b", make_event("Other", {{"x", 1}}));  // a type without steps
  const auto events = store.read_all().to_vector();
  EXPECT_EQ(events[0].metadata_json().at("schema"), 2);
  EXPECT_EQ(events[0].data, R"({"amount":1})");  // stored as current: not upcast
  EXPECT_EQ(events[1].data, R"({"amount":2})");
  EXPECT_EQ(events[2].data_json().at("v2"), true);  // imported as it was: upcast
  EXPECT_EQ(events[3].metadata, "{}");
  // A retry of the same id matches what was stored.
  NewEvent again = make_event("Moved", {{"amount", 9}});
  again.id = new_event_id();
  const Seq first = store.append("c", again);
  EXPECT_EQ(store.append("c", again), first);
}

TEST(Decide, TwoThreadsDecidingAtOnceNeverOverdrawAndTheLoserRefoldsOnlyWhatItMissed) {
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  store.append("account-1", moved(100));
  std::atomic<int> applied{0};
  const auto agg = account(&applied);
  std::barrier both_decided(2);
  std::atomic<int> calls{0};
  const auto withdraw_60 = [&](const Account& a) {
    // The first decision of each thread waits for the other's: both saw 100.
    if (calls++ < 2) both_decided.arrive_and_wait();
    std::vector<NewEvent> out;
    if (a.balance >= 60) out.push_back(moved(-60));
    return out;
  };
  Decided results[2];
  std::thread t1([&] { results[0] = decide(store, agg, "account-1", withdraw_60); });
  std::thread t2([&] { results[1] = decide(store, agg, "account-1", withdraw_60); });
  t1.join();
  t2.join();
  // One appended at version 1; the other conflicted, folded that one event, and
  // decided there was not enough left.
  const int winner = results[0].seqs.empty() ? 1 : 0;
  EXPECT_EQ(results[winner].seqs.size(), 1u);
  EXPECT_EQ(results[winner].attempts, 1);
  EXPECT_EQ(results[winner].version, 2);
  EXPECT_TRUE(results[1 - winner].seqs.empty());
  EXPECT_EQ(results[1 - winner].attempts, 2);
  EXPECT_EQ(applied, 3);  // 1 + 1 in the two loads, 1 in the retry
  EXPECT_EQ(load(store, account(), "account-1").state.balance, 40);
}

TEST(Decide, GivesUpAfterMaxAttemptsWithTheConflict) {
  Store store = Store::open(":memory:");
  store.append("account-1", moved(100));
  int calls = 0;
  EXPECT_THROW(decide(
                   store, account(), "account-1",
                   [&](const Account&) {
                     ++calls;
                     store.append("account-1", moved(1));  // someone is always first
                     return std::vector<NewEvent>{moved(-1)};
                   },
                   3),
               VersionConflict);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(store.stream_version("account-1"), 4);
}

}  // namespace
}  // namespace eventlite
