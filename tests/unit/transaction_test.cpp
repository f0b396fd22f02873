#include "eventlite/transaction.hpp"

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;
namespace fs = std::filesystem;

// A store on a temp file that also holds the application's own `orders` table.
class Outbox {
 public:
  Outbox() : path_(dir_ / "app.db") {
    {
      RawDb app(path_);
      app.exec("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL)");
    }
    store_.emplace(Store::open(path_, fast_options()));
  }

  Store& store() { return *store_; }
  const fs::path& path() const { return path_; }

  std::int64_t orders() {
    RawDb db(path_, SQLITE_OPEN_READONLY);
    return db.query_int("SELECT count(*) FROM orders");
  }
  std::int64_t events() {
    RawDb db(path_, SQLITE_OPEN_READONLY);
    return db.query_int("SELECT count(*) FROM eventlite_events");
  }

 private:
  TempDir dir_;
  fs::path path_;
  std::optional<Store> store_;
};

std::vector<Version> versions_of(const std::vector<Event>& events) {
  std::vector<Version> out;
  for (const auto& e : events) out.push_back(e.version);
  return out;
}

TEST(Transaction, CommitStoresAppSqlAndEventsTogether) {
  Outbox box;
  auto tx = box.store().transaction();
  EXPECT_TRUE(tx.active());
  tx.database().exec("INSERT INTO orders (item) VALUES ('book')");
  EXPECT_EQ(tx.append("order-1", numbered_events(2)), (std::vector<Seq>{1, 2}));
  EXPECT_EQ(tx.append("order-1", event("OrderPaid")), 3);
  tx.commit();
  EXPECT_FALSE(tx.active());

  EXPECT_EQ(box.orders(), 1);
  EXPECT_EQ(box.store().head(), 3);
  EXPECT_EQ(versions_of(box.store().read_stream("order-1").to_vector()),
            (std::vector<Version>{1, 2, 3}));
}

TEST(Transaction, RollbackDiscardsAppSqlAndEvents) {
  Outbox box;
  auto tx = box.store().transaction();
  tx.database().exec("INSERT INTO orders (item) VALUES ('book')");
  tx.append("order-1", numbered_events(2));
  tx.rollback();
  EXPECT_FALSE(tx.active());

  EXPECT_EQ(box.orders(), 0);
  EXPECT_EQ(box.events(), 0);
  EXPECT_EQ(box.store().head(), 0);
  EXPECT_EQ(box.store().append("order-1", event("Again"), Expected::no_stream()), 1);
}

TEST(Transaction, DestructorRollsBackWhatWasNotCommitted) {
  Outbox box;
  {
    auto tx = box.store().transaction();
    tx.database().exec("INSERT INTO orders (item) VALUES ('book')");
    tx.append("order-1", numbered_events(2));
  }
  EXPECT_EQ(box.orders(), 0);
  EXPECT_EQ(box.events(), 0);
  EXPECT_EQ(box.store().head(), 0);
  EXPECT_EQ(box.store().append("order-1", event("Again")), 1);
}

TEST(Transaction, FailedAppendLeavesItOpenWithoutThatCallsEvents) {
  Outbox box;
  auto tx = box.store().transaction();
  EXPECT_EQ(tx.append("s", event("A")), 1);
  EXPECT_THROW(tx.append("s", numbered_events(3), Expected::exactly(0)), VersionConflict);
  auto bad = numbered_events(3);
  bad[1].data = "{oops";
  EXPECT_THROW(tx.append("s", bad), InvalidEvent);
  EXPECT_TRUE(tx.active());
  tx.database().exec("INSERT INTO orders (item) VALUES ('book')");
  EXPECT_EQ(tx.append("s", event("B"), Expected::exactly(1)), 2);
  tx.commit();

  auto events = box.store().read_all().to_vector();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, "A");
  EXPECT_EQ(events[1].type, "B");
  EXPECT_EQ(box.orders(), 1);
  EXPECT_TRUE(box.store().verify().empty());
}

TEST(Transaction, ReappendInsideReturnsTheSeqOfTheEarlierAppend) {
  Outbox box;
  NewEvent e = event("A");
  e.id = new_event_id();
  auto tx = box.store().transaction();
  const Seq seq = tx.append("s", e);
  EXPECT_EQ(tx.append("s", e), seq);
  NewEvent other = e;
  other.data = "{\"changed\":true}";
  EXPECT_THROW(tx.append("s", other), IdConflict);
  tx.commit();
  EXPECT_EQ(box.store().head(), 1);
}

TEST(Transaction, UncommittedEventsAreInvisibleToReads) {
  Outbox box;
  auto tx = box.store().transaction();
  tx.append("s", numbered_events(3));
  auto seen = std::async(std::launch::async, [&] {
                return std::make_pair(box.store().head(),
                                      box.store().read_all().to_vector().size());
              }).get();
  EXPECT_EQ(seen.first, 0);
  EXPECT_EQ(seen.second, 0u);
  tx.commit();
  EXPECT_EQ(box.store().head(), 3);
}

TEST(Transaction, OtherAppendsWaitUntilItEnds) {
  Outbox box;
  auto tx = box.store().transaction();
  EXPECT_EQ(tx.append("s", event("InTx")), 1);
  auto other = std::async(std::launch::async,
                          [&] { return box.store().append("t", event("Other")); });
  EXPECT_EQ(other.wait_for(100ms), std::future_status::timeout);
  tx.commit();
  EXPECT_EQ(other.get(), 2);
}

TEST(Transaction, MovedTransactionCommitsOnce) {
  Outbox box;
  {
    auto tx = box.store().transaction();
    tx.append("s", event("A"));
    Transaction moved = std::move(tx);
    EXPECT_TRUE(moved.active());
    moved.commit();
  }
  EXPECT_EQ(box.store().head(), 1);
  EXPECT_EQ(box.store().append("s", event("B")), 2);
}

TEST(Transaction, EndedTransactionRefusesFurtherUse) {
  Outbox box;
  auto tx = box.store().transaction();
  tx.append("s", event("A"));
  tx.commit();
  EXPECT_THROW(tx.append("s", event("B")), InvalidArgument);
  EXPECT_THROW(tx.database(), InvalidArgument);
  EXPECT_THROW(tx.commit(), InvalidArgument);
  tx.rollback();  // a no-op, never throws
  EXPECT_EQ(box.store().head(), 1);
}

TEST(Transaction, SecondTransactionOnTheSameThreadThrowsInvalidArgument) {
  Outbox box;
  std::promise<std::string> result;
  auto done = result.get_future();
  std::thread holder([&] {
    auto tx = box.store().transaction();
    try {
      auto nested = box.store().transaction();
      result.set_value("no exception");
    } catch (const InvalidArgument&) {
      result.set_value("invalid_argument");
    } catch (const std::exception& e) {
      result.set_value(std::string("other exception: ") + e.what());
    }
  });
  if (done.wait_for(5s) != std::future_status::ready) {
    std::fprintf(stderr, "Store::transaction deadlocked on a thread holding one\n");
    std::_Exit(1);
  }
  holder.join();
  EXPECT_EQ(done.get(), "invalid_argument");
  EXPECT_EQ(box.store().append("s", event("After")), 1);  // the first one ended
}

TEST(Transaction, AppendKeepsAGivenTime) {
  Outbox box;
  NewEvent imported = event("Imported");
  imported.time = "2021-07-08T09:10:11.012Z";
  {
    Transaction txn = box.store().transaction();
    txn.append("s", std::vector<NewEvent>{imported, event("Fresh")});
    txn.commit();
  }
  const auto events = box.store().read_all().to_vector();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].time, "2021-07-08T09:10:11.012Z");
  EXPECT_NE(events[1].time, events[0].time);
}

TEST(AppendIn, KeepsAGivenTime) {
  Outbox box;
  SQLite::Database app(box.path().string(), SQLite::OPEN_READWRITE);
  app.exec("BEGIN IMMEDIATE");
  NewEvent imported = event("Imported");
  imported.time = "2021-07-08T09:10:11.012Z";
  box.store().append_in(app, "s", std::span<const NewEvent>(&imported, 1));
  app.exec("COMMIT");
  EXPECT_EQ(box.store().read_all().to_vector().at(0).time, "2021-07-08T09:10:11.012Z");
}

TEST(AppendIn, SQLiteCppDatabaseCommitKeepsAppRowsAndEvents) {
  Outbox box;
  SQLite::Database app(box.path().string(), SQLite::OPEN_READWRITE);
  app.exec("PRAGMA busy_timeout = 5000");
  app.exec("BEGIN IMMEDIATE");
  app.exec("INSERT INTO orders (item) VALUES ('book')");
  EXPECT_EQ(box.store().append_in(app, "order-1", numbered_events(2)),
            (std::vector<Seq>{1, 2}));
  app.exec("COMMIT");

  EXPECT_EQ(box.orders(), 1);
  EXPECT_EQ(box.store().head(), 2);
  EXPECT_EQ(versions_of(box.store().read_stream("order-1").to_vector()),
            (std::vector<Version>{1, 2}));
  EXPECT_TRUE(box.store().verify().empty());
}

TEST(AppendIn, SQLiteCppDatabaseRollbackDropsAppRowsAndEvents) {
  Outbox box;
  SQLite::Database app(box.path().string(), SQLite::OPEN_READWRITE);
  app.exec("BEGIN IMMEDIATE");
  app.exec("INSERT INTO orders (item) VALUES ('book')");
  box.store().append_in(app, "order-1", numbered_events(2));
  app.exec("ROLLBACK");

  EXPECT_EQ(box.orders(), 0);
  EXPECT_EQ(box.events(), 0);
  EXPECT_EQ(box.store().head(), 0);
}

TEST(AppendIn, RawConnectionCommitKeepsAppRowsAndEvents) {
  Outbox box;
  RawDb app(box.path(), SQLITE_OPEN_READWRITE);
  app.exec("BEGIN IMMEDIATE");
  app.exec("INSERT INTO orders (item) VALUES ('book')");
  EXPECT_EQ(box.store().append_in(app.get(), "order-1", numbered_events(3)),
            (std::vector<Seq>{1, 2, 3}));
  app.exec("COMMIT");

  EXPECT_EQ(box.orders(), 1);
  EXPECT_EQ(box.store().head(), 3);
  EXPECT_EQ(box.store().stream_version("order-1"), 3);
}

TEST(AppendIn, RawConnectionRollbackDropsAppRowsAndEvents) {
  Outbox box;
  RawDb app(box.path(), SQLITE_OPEN_READWRITE);
  app.exec("BEGIN IMMEDIATE");
  app.exec("INSERT INTO orders (item) VALUES ('book')");
  box.store().append_in(app.get(), "order-1", numbered_events(3));
  app.exec("ROLLBACK");

  EXPECT_EQ(box.orders(), 0);
  EXPECT_EQ(box.events(), 0);
  EXPECT_EQ(box.store().stream_version("order-1"), 0);
}

TEST(AppendIn, WithoutAnOpenTransactionThrowsInvalidArgumentAndWritesNothing) {
  Outbox box;
  RawDb app(box.path(), SQLITE_OPEN_READWRITE);
  EXPECT_THROW(box.store().append_in(app.get(), "s", numbered_events(2)),
               InvalidArgument);
  SQLite::Database cpp_app(box.path().string(), SQLite::OPEN_READWRITE);
  EXPECT_THROW(box.store().append_in(cpp_app, "s", numbered_events(2)), InvalidArgument);
  EXPECT_EQ(sqlite3_get_autocommit(app.get()), 1);  // no transaction left open either
  EXPECT_EQ(box.events(), 0);
  EXPECT_EQ(box.store().head(), 0);
}

TEST(AppendIn, FailureLeavesAppTransactionOpenWithoutThatCallsEvents) {
  Outbox box;
  RawDb app(box.path(), SQLITE_OPEN_READWRITE);
  app.exec("BEGIN IMMEDIATE");
  app.exec("INSERT INTO orders (item) VALUES ('book')");
  EXPECT_EQ(box.store().append_in(app.get(), "s", numbered_events(1)),
            (std::vector<Seq>{1}));
  EXPECT_THROW(
      box.store().append_in(app.get(), "s", numbered_events(3), Expected::no_stream()),
      VersionConflict);
  EXPECT_EQ(sqlite3_get_autocommit(app.get()), 0);
  auto bad = numbered_events(3);
  bad[2].metadata = "[]";
  EXPECT_THROW(box.store().append_in(app.get(), "s", bad), InvalidEvent);
  EXPECT_EQ(sqlite3_get_autocommit(app.get()), 0);
  app.exec("COMMIT");

  EXPECT_EQ(box.orders(), 1);
  EXPECT_EQ(box.events(), 1);
  EXPECT_EQ(box.store().stream_version("s"), 1);
}

TEST(AppendIn, VersionChecksAndIdsSpanTheStoreAndTheAppConnection) {
  Outbox box;
  NewEvent first = event("A");
  first.id = new_event_id();
  EXPECT_EQ(box.store().append("s", first), 1);

  RawDb app(box.path(), SQLITE_OPEN_READWRITE);
  app.exec("BEGIN IMMEDIATE");
  EXPECT_THROW(
      box.store().append_in(app.get(), "s", numbered_events(1), Expected::no_stream()),
      VersionConflict);
  EXPECT_EQ(box.store().append_in(app.get(), "s", std::vector<NewEvent>{first}),
            (std::vector<Seq>{1}));  // already stored: not written again
  EXPECT_EQ(
      box.store().append_in(app.get(), "s", numbered_events(1), Expected::exactly(1)),
      (std::vector<Seq>{2}));
  app.exec("COMMIT");

  // The store sees what the application's connection committed.
  EXPECT_THROW(box.store().append("s", event("C"), Expected::exactly(1)),
               VersionConflict);
  EXPECT_EQ(box.store().append("s", event("C"), Expected::exactly(2)), 3);
}

TEST(AppendIn, StoreLeavesNoGapAfterAnAppTransactionRollsBack) {
  Outbox box;
  RawDb app(box.path(), SQLITE_OPEN_READWRITE);
  app.exec("BEGIN IMMEDIATE");
  box.store().append_in(app.get(), "s", numbered_events(2));
  app.exec("ROLLBACK");
  EXPECT_EQ(box.store().append("s", event("A"), Expected::no_stream()), 1);

  app.exec("BEGIN IMMEDIATE");
  EXPECT_EQ(
      box.store().append_in(app.get(), "s", numbered_events(1), Expected::exactly(1)),
      (std::vector<Seq>{2}));
  app.exec("COMMIT");
  EXPECT_EQ(box.store().append("s", event("B"), Expected::exactly(2)), 3);
  EXPECT_TRUE(box.store().verify().empty());
}

TEST(AppendIn, ConnectionOnAnotherFileIsInvalidArgument) {
  Outbox box;
  TempDir other_dir;
  const auto other = other_dir / "other.db";
  { auto other_store = Store::open(other, fast_options()); }
  RawDb app(other, SQLITE_OPEN_READWRITE);
  app.exec("BEGIN IMMEDIATE");
  EXPECT_THROW(box.store().append_in(app.get(), "s", numbered_events(1)),
               InvalidArgument);
  app.exec("COMMIT");
  EXPECT_EQ(app.query_int("SELECT count(*) FROM eventlite_events"), 0);
  EXPECT_EQ(box.events(), 0);
}

TEST(AppendIn, WaitForAppendWakesWhenTheAppConnectionCommits) {
  Outbox box;
  RawDb app(box.path(), SQLITE_OPEN_READWRITE);
  app.exec("BEGIN IMMEDIATE");
  ASSERT_EQ(box.store().append_in(app.get(), "s", numbered_events(1)),
            (std::vector<Seq>{1}));

  std::atomic<pid_t> waiter_tid{0};
  Seq head_before_commit = -1;
  Seq woke_with = -1;
  std::thread waiter([&] {
    head_before_commit = box.store().head();
    waiter_tid = current_tid();
    woke_with = box.store().wait_for_append(0, std::chrono::seconds(30));
  });
  // Commit only once the waiter is blocked, so that a wake-up is what ends its wait.
  ASSERT_TRUE(
      wait_until([&] { return waiter_tid != 0 && thread_state(waiter_tid) == 'S'; }));
  const auto committed = std::chrono::steady_clock::now();
  app.exec("COMMIT");
  waiter.join();
  EXPECT_EQ(head_before_commit, 0);
  EXPECT_EQ(woke_with, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - committed, std::chrono::seconds(2));
}

TEST(AppendIn, AppConnectionKeepsAutoCheckpointingAfterItsHookIsInstalled) {
  Outbox box;
  RawDb app(box.path(), SQLITE_OPEN_READWRITE);
  app.exec("PRAGMA synchronous = NORMAL");
  app.exec("CREATE TABLE blobs (b BLOB)");
  app.exec("BEGIN IMMEDIATE");
  box.store().append_in(app.get(), "s", numbered_events(1));
  app.exec("COMMIT");
  // 60 commits of ~200 KB: about 3000 pages of WAL without checkpoints, about
  // 1000 (SQLite's default auto-checkpoint) plus one commit with them.
  for (int i = 0; i < 60; ++i) app.exec("INSERT INTO blobs VALUES (zeroblob(200000))");
  const auto wal_bytes = fs::file_size(box.path().string() + "-wal");
  EXPECT_LT(wal_bytes, 8u * 1024 * 1024) << "the WAL was not checkpointed";
}

TEST(Transaction, MovedToAnotherThreadStoreAppendThereFailsFast) {
  auto store = Store::open(":memory:");
  auto tx = store.transaction();
  std::string error;
  std::thread worker([&, moved = std::move(tx)]() mutable {
    moved.append("s", NewEvent{.type = "Inside"});
    try {
      store.append("s", NewEvent{.type = "Outside"});  // would wait for `moved` forever
    } catch (const InvalidArgument& e) {
      error = e.what();
    }
    moved.commit();
  });
  worker.join();
  EXPECT_NE(error.find("Transaction"), std::string::npos) << error;
  EXPECT_EQ(store.head(), 1);
}

TEST(AppendIn, NeedsAWriteTransactionNotADeferredOne) {
  TempDir dir;
  const auto path = dir / "app.db";
  auto store = Store::open(path, fast_options());
  SQLite::Database db(path.string(), SQLite::OPEN_READWRITE);
  db.exec("BEGIN");  // deferred: no write lock yet
  NewEvent e{.type = "T"};
  EXPECT_THROW(store.append_in(db, "s", {&e, 1}), InvalidArgument);
  db.exec("ROLLBACK");
  db.exec("BEGIN IMMEDIATE");
  EXPECT_EQ(store.append_in(db, "s", {&e, 1}).front(), 1);
  db.exec("COMMIT");
  EXPECT_EQ(store.head(), 1);
}

TEST(AppendIn, InMemoryStoreRefusesAConnectionToAnotherDatabase) {
  TempDir dir;
  const auto other_path = dir / "other.db";
  auto other = Store::open(other_path, fast_options());
  auto memory = Store::open(":memory:");
  SQLite::Database db(other_path.string(), SQLite::OPEN_READWRITE);
  db.exec("BEGIN IMMEDIATE");
  NewEvent e{.type = "T"};
  EXPECT_THROW(memory.append_in(db, "s", {&e, 1}), InvalidArgument);
  db.exec("ROLLBACK");
  EXPECT_EQ(other.head(), 0);
}

}  // namespace
}  // namespace eventlite
