// Projection rebuilds (rebuild.hpp), against a processor that keeps delivering live:
// in place and into shadow tables, while an appender appends and a reader on its own
// connection checks in every snapshot that the read model is whole (its counts add
// up to the subscription's checkpoint); a rebuilt projection equals one built live
// from the start; interrupted rebuilds; the errors.

#include "eventlite/rebuild.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <stdexcept>
#include <thread>

#include "eventlite/errors.hpp"
#include "eventlite/lease.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "eventlite/transaction.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;
using namespace std::chrono_literals;

constexpr const char* kCreateTotals =
    "CREATE TABLE IF NOT EXISTS totals(stream TEXT PRIMARY KEY, n INT, total INT);"
    "CREATE TABLE IF NOT EXISTS reference(stream TEXT PRIMARY KEY, n INT, total INT)";

// The read model: per stream, how many events and the sum of their amounts. The
// same code writes the live table, the shadow one and a reference built live.
enum class Table { totals, shadow, reference };

Handler count_into(Table table, std::atomic<int>* calls = nullptr, Seq fail_at = 0) {
  static constexpr const char* kSql[] = {
      "INSERT INTO totals(stream, n, total) VALUES (?1, 1, ?2) ON CONFLICT(stream) "
      "DO UPDATE SET n = n + 1, total = total + excluded.total",
      "INSERT INTO totals_next(stream, n, total) VALUES (?1, 1, ?2) ON CONFLICT(stream) "
      "DO UPDATE SET n = n + 1, total = total + excluded.total",
      "INSERT INTO reference(stream, n, total) VALUES (?1, 1, ?2) ON CONFLICT(stream) "
      "DO UPDATE SET n = n + 1, total = total + excluded.total"};
  return [table, calls, fail_at](const Context& c) {
    if (calls) ++*calls;
    if (c.event().seq == fail_at) throw std::runtime_error("the new code is wrong");
    SQLite::Statement insert(c.transaction().database(), kSql[static_cast<int>(table)]);
    insert.bind(1, c.event().stream);
    insert.bind(2, static_cast<std::int64_t>(c.event().data_json().at("amount")));
    insert.exec();
  };
}

void append_some(Store& store, int n, int offset = 0) {
  std::vector<NewEvent> batch;
  for (int i = 0; i < n; ++i) {
    batch.push_back(
        event("Paid", R"({"amount":)" + std::to_string((offset + i) % 97) + "}"));
    if (batch.size() == 50) {
      store.append("account-" + std::to_string((offset + i) % 7), batch);
      batch.clear();
    }
  }
  if (!batch.empty()) store.append("account-x", batch);
}

std::vector<std::string> rows_of(RawDb& db, const std::string& table) {
  return db.query_column("SELECT stream || ':' || n || ':' || total FROM " + table +
                         " ORDER BY stream");
}

Seq position_of(const Store& store, std::string_view name) {
  for (const auto& s : status(store).subscriptions)
    if (s.name == name) return s.position;
  return -1;
}

// The shadow's code: its handler fails at `fail_at` (0: never), as a transient
// fault would (the same version goes on after it).
ShadowBuild shadow_build(std::atomic<int>* creates = nullptr, Seq fail_at = 0,
                         std::string version = "2") {
  return {
      .create =
          [creates](Transaction& t) {
            if (creates) ++*creates;
            t.database().exec(
                "DROP TABLE IF EXISTS totals_next;"
                "CREATE TABLE totals_next(stream TEXT PRIMARY KEY, n INT, total INT)");
          },
      .handler = count_into(Table::shadow, nullptr, fail_at),
      .swap =
          [](Transaction& t) {
            t.database().exec(
                "DROP TABLE totals; ALTER TABLE totals_next RENAME TO totals");
          },
      .version = std::move(version)};
}

// A reader on its own connection: in each read transaction, the counts of `totals`
// must add up to the subscription's checkpoint (every event up to it counted once),
// whichever version of the table it sees. It notes which versions it saw: the old
// one was spoiled (totals of a million or more), the rebuilt one is not.
class Reader {
 public:
  explicit Reader(const std::filesystem::path& path)
      : thread_([this, path] { run(path); }) {}
  ~Reader() { stop(); }

  void stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::atomic<int> looks{0}, whole{0};
  std::atomic<bool> saw_old{false}, saw_new{false};
  std::string broken;  // read it after stop()

 private:
  void run(const std::filesystem::path& path) {
    SQLite::Database db(path.string(), SQLite::OPEN_READONLY);
    db.setBusyTimeout(5000);
    while (!done_) {
      SQLite::Transaction read(db, SQLite::TransactionBehavior::DEFERRED);
      const std::int64_t counted =
          db.execAndGet("SELECT coalesce(sum(n), 0) FROM totals").getInt64();
      const std::int64_t position =
          db.execAndGet(
                "SELECT position FROM eventlite_subscriptions WHERE name='totals'")
              .getInt64();
      const std::int64_t top =
          db.execAndGet("SELECT coalesce(max(total), 0) FROM totals").getInt64();
      read.commit();
      ++looks;
      if (counted == position)
        ++whole;
      else if (broken.empty())
        broken = std::to_string(counted) + " counted at checkpoint " +
                 std::to_string(position);
      (top >= 1'000'000 ? saw_old : saw_new) = true;
    }
  }
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// Appends one event at a time, on its own thread, until stopped.
class Appender {
 public:
  explicit Appender(Store& store)
      : thread_([this, &store] {
          for (int i = 0; !done_; ++i) {
            append_some(store, 1, 10'000 + i);
            ++appended;
          }
        }) {}
  ~Appender() { stop(); }
  void stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::atomic<int> appended{0};

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;  // last: started once the counters exist
};

class Rebuild : public ::testing::Test {
 protected:
  void SetUp() override {
    store = Store::open(dir / "app.db", fast_options());
    auto t = store.transaction();
    t.database().exec(kCreateTotals);
    t.commit();
  }

  // A processor delivering live into `totals` and, from the same events, into the
  // reference table.
  std::unique_ptr<Processor> live() {
    auto p =
        std::make_unique<Processor>(store, ProcessorOptions{.change_check_interval = 1ms,
                                                            .lease_time = 3s,
                                                            .checkpoint_interval = 5ms});
    p->subscribe("totals", count_into(Table::totals), {.transactional = true});
    p->subscribe("reference", count_into(Table::reference), {.transactional = true});
    return p;
  }

  // `n` events delivered by a started live() processor, then the read model spoiled.
  std::unique_ptr<Processor> started_then_spoiled(int n) {
    append_some(store, n);
    auto p = live();
    p->start();
    EXPECT_TRUE(wait_until([&] { return caught_up(); }, 10s));
    spoil();
    return p;
  }

  // Spoils the live read model, as a bug in its handler would have.
  void spoil() {
    auto t = store.transaction();
    t.database().exec("UPDATE totals SET total = total + 1000000");
    t.commit();
  }

  // The rebuilt read model equals the reference built live, and goes on equal once
  // the processor delivers more (exactly once, from where the rebuild ended).
  void expect_like_the_reference_from_now_on() {
    RawDb raw(dir / "app.db");
    EXPECT_EQ(rows_of(raw, "totals"), rows_of(raw, "reference"));
    append_some(store, 100, 50'000);
    ASSERT_TRUE(wait_until([&] { return caught_up(); }, 10s));
    EXPECT_EQ(rows_of(raw, "totals"), rows_of(raw, "reference"));
  }

  bool caught_up() {
    const Seq head = store.head();
    return position_of(store, "totals") == head &&
           position_of(store, "reference") == head;
  }

  TempDir dir;
  Store store = Store::open(":memory:");
};

TEST_F(Rebuild, InPlaceWhileLiveTheReadModelEqualsOneBuiltLive) {
  auto p = started_then_spoiled(3000);
  Reader reader(dir / "app.db");
  Appender appender(store);
  ASSERT_TRUE(wait_until([&] { return reader.looks > 0; }));
  int steps = 0;
  const RebuildReport report =
      rebuild_in_place(store, "totals", count_into(Table::totals),
                       [](Transaction& t) { t.database().exec("DELETE FROM totals"); },
                       {.batch_size = 256, .on_progress = [&](Seq, Seq) { ++steps; }});
  appender.stop();
  EXPECT_GE(report.events, 3000u);
  EXPECT_EQ(report.steps, static_cast<std::uint64_t>(steps));
  EXPECT_GE(report.steps, 12u);  // 3000 events, 256 a step
  EXPECT_GE(report.position_before, 3000);
  EXPECT_FALSE(report.previous_owner.empty());  // it took the lease from `p`
  ASSERT_TRUE(wait_until([&] { return caught_up(); }, 10s));
  reader.stop();
  EXPECT_TRUE(reader.broken.empty()) << reader.broken;
  EXPECT_TRUE(reader.saw_new);
  expect_like_the_reference_from_now_on();
}

TEST_F(Rebuild, WithShadowTablesReadersSeeTheOldOrTheNewNeverAHalfBuiltOne) {
  auto p = started_then_spoiled(3000);
  Reader reader(dir / "app.db");
  Appender appender(store);
  ASSERT_TRUE(wait_until([&] { return reader.looks > 0 && reader.saw_old; }));
  std::atomic<int> creates{0};
  const RebuildReport report =
      rebuild_with_shadow(store, "totals", shadow_build(&creates), {.batch_size = 256});
  ASSERT_TRUE(wait_until([&] { return reader.saw_new.load(); }));
  appender.stop();
  ASSERT_TRUE(wait_until([&] { return caught_up(); }, 10s));
  reader.stop();
  EXPECT_EQ(creates, 1);
  EXPECT_FALSE(report.resumed);
  EXPECT_GE(report.events, 3000u);
  EXPECT_GE(report.steps, 11u);
  EXPECT_GT(appender.appended, 0);
  // The live processor was dispatching it, and was fenced off at the swap.
  EXPECT_FALSE(report.previous_owner.empty());
  EXPECT_TRUE(reader.broken.empty()) << reader.broken;
  EXPECT_GT(reader.whole, 1);
  RawDb raw(dir / "app.db");
  EXPECT_FALSE(raw.has_object("totals_next"));
  EXPECT_EQ(raw.query_int("SELECT count(*) FROM eventlite_rebuilds"), 0);
  expect_like_the_reference_from_now_on();
}

TEST_F(Rebuild, AShadowBuildThatFailedGoesOnFromItsLastStepAndLeavesTheLiveOneAlone) {
  append_some(store, 1000);
  auto p = live();
  p->run_until_idle();
  spoil();
  RawDb raw(dir / "app.db");
  const auto spoiled = rows_of(raw, "totals");
  std::atomic<int> creates{0};
  EXPECT_THROW(rebuild_with_shadow(store, "totals", shadow_build(&creates, 700),
                                   {.batch_size = 256}),
               std::runtime_error);
  EXPECT_EQ(raw.query_int("SELECT position FROM eventlite_rebuilds"), 512);
  {  // `eventlite status` shows where it stopped, its lease free
    const auto report = status(store);
    ASSERT_EQ(report.rebuilds.size(), 1u);
    EXPECT_EQ(report.rebuilds[0].subscription, "totals");
    EXPECT_EQ(report.rebuilds[0].position, 512);
    ASSERT_TRUE(report.rebuilds[0].lease);
    const std::time_t now = std::time(nullptr) + 1;
    char later[32];
    std::strftime(later, sizeof later, "%Y-%m-%dT%H:%M:%S.000Z", std::gmtime(&now));
    EXPECT_LT(report.rebuilds[0].lease->expires, later);  // released when it threw
  }
  EXPECT_EQ(rows_of(raw, "totals"), spoiled);
  EXPECT_EQ(position_of(store, "totals"), 1000);
  const RebuildReport report =
      rebuild_with_shadow(store, "totals", shadow_build(&creates), {.batch_size = 256});
  EXPECT_TRUE(report.resumed);
  EXPECT_EQ(creates, 1);
  EXPECT_EQ(report.events, 488u);  // 513..1000
  EXPECT_EQ(report.position_after, 1000);
  EXPECT_EQ(rows_of(raw, "totals"), rows_of(raw, "reference"));
  EXPECT_EQ(p->run_until_idle(), 0u);  // the processor has nothing to do again
  EXPECT_TRUE(status(store).rebuilds.empty());
}

TEST_F(Rebuild, AnInterruptedShadowOfOtherCodeIsStartedOver) {
  append_some(store, 1000);
  auto p = live();
  p->run_until_idle();
  std::atomic<int> creates{0};
  EXPECT_THROW(rebuild_with_shadow(store, "totals", shadow_build(&creates, 700, "2"),
                                   {.batch_size = 256}),
               std::runtime_error);
  const RebuildReport report = rebuild_with_shadow(
      store, "totals", shadow_build(&creates, 0, "3"), {.batch_size = 256});
  EXPECT_FALSE(report.resumed);
  EXPECT_EQ(creates, 2);
  EXPECT_EQ(report.events, 1000u);
  RawDb raw(dir / "app.db");
  EXPECT_EQ(rows_of(raw, "totals"), rows_of(raw, "reference"));
}

TEST_F(Rebuild, WithFiltersTheShadowSkipsWhatTheSubscriptionDoesNotSee) {
  // Few events of the subscription's type among many others: each read comes back
  // short, and the shadow's position still moves to the head.
  for (int i = 0; i < 20; ++i) {
    append_some(store, 5, i * 5);
    store.append("noise", numbered_events(200, "Noise"));
  }
  Processor p(store, ProcessorOptions{});
  p.subscribe("totals", count_into(Table::totals),
              {.types = {"Paid"}, .transactional = true});
  p.subscribe("reference", count_into(Table::reference),
              {.types = {"Paid"}, .transactional = true});
  p.run_until_idle();
  spoil();
  const RebuildReport report = rebuild_with_shadow(
      store, "totals", shadow_build(), {.types = {"Paid"}, .batch_size = 256});
  EXPECT_EQ(report.events, 100u);
  EXPECT_EQ(report.position_after, store.head());
  RawDb raw(dir / "app.db");
  EXPECT_EQ(rows_of(raw, "totals"), rows_of(raw, "reference"));
  EXPECT_EQ(p.run_until_idle(), 0u);
  EXPECT_THROW(
      rebuild_with_shadow(store, "totals", shadow_build(), {.batch_size = 70000}),
      InvalidArgument);
}

TEST_F(Rebuild, InPlaceThatFailedIsFinishedByTheSubscriptionsProcessor) {
  append_some(store, 1000);
  auto p = live();
  p->run_until_idle();
  spoil();
  p.reset();  // its leases released
  EXPECT_THROW(
      rebuild_in_place(store, "totals", count_into(Table::totals, nullptr, 600),
                       [](Transaction& t) { t.database().exec("DELETE FROM totals"); },
                       {.batch_size = 256}),
      std::runtime_error);
  EXPECT_EQ(position_of(store, "totals"), 512);  // two steps committed
  RawDb raw(dir / "app.db");
  EXPECT_EQ(raw.query_int("SELECT sum(n) FROM totals"), 512);
  p = live();  // the lease was released: it takes over at once
  EXPECT_EQ(p->run_until_idle(), 488u);
  EXPECT_EQ(rows_of(raw, "totals"), rows_of(raw, "reference"));
}

TEST_F(Rebuild, RefusesWhatItCannotDo) {
  append_some(store, 10);
  auto p = live();
  p->run_until_idle();
  const auto reset = [](Transaction&) {};
  EXPECT_THROW(rebuild_in_place(store, "nope", count_into(Table::totals), reset),
               InvalidArgument);
  EXPECT_THROW(
      rebuild_in_place(store, "totals", count_into(Table::totals), reset, {.from = 0}),
      InvalidArgument);
  EXPECT_THROW(rebuild_in_place(store, "totals", {}, reset), InvalidArgument);
  EXPECT_THROW(rebuild_with_shadow(store, "nope", shadow_build()), InvalidArgument);
  EXPECT_THROW(
      rebuild_with_shadow(store, "totals", {.handler = count_into(Table::shadow)}),
      InvalidArgument);
  {
    Lease other(store, "rebuild:totals", 10s, "someone-else");
    ASSERT_TRUE(other.acquire_or_renew());
    EXPECT_THROW(rebuild_with_shadow(store, "totals", shadow_build()), InvalidArgument);
  }
  EXPECT_EQ(position_of(store, "totals"), 10);
  RawDb raw(dir / "app.db");
  EXPECT_FALSE(raw.has_object("totals_next"));
  Store readonly = Store::open(dir / "app.db", {.read_only = true});
  EXPECT_THROW(rebuild_with_shadow(readonly, "totals", shadow_build()), InvalidArgument);
}

}  // namespace
}  // namespace eventlite
