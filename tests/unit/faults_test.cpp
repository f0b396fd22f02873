// Faults come from SQLite itself: a second connection holding the write lock (busy),
// PRAGMA max_page_count (full), a read-only file, raw edits and corrupted pages.

#include <SQLiteCpp/Database.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;
namespace fs = std::filesystem;

// A closed eventlite file holding `n` events of stream "seed", WAL folded in.
void create_store_file(const fs::path& path, std::size_t n, std::size_t data_bytes = 0) {
  {
    auto store = Store::open(path, fast_options());
    std::vector<NewEvent> events;
    for (std::size_t i = 0; i < n; ++i) {
      events.push_back(event("Seed", "{\"i\":" + std::to_string(i) + ",\"pad\":\"" +
                                         std::string(data_bytes, 'p') + "\"}"));
    }
    if (n > 0) store.append("seed", events);
  }
  checkpoint(path);
}

// `n` events whose data is `bytes` long.
std::vector<NewEvent> big_events(std::size_t n, std::size_t bytes) {
  std::vector<NewEvent> events;
  for (std::size_t i = 0; i < n; ++i) {
    events.push_back(event("Big", "\"" + std::string(bytes, 'b') + "\""));
  }
  return events;
}

// Sets max_page_count on the store's writer connection (it is per connection and
// outlives the transaction); returns the previous value.
std::int64_t limit_pages(Store& store, std::int64_t extra_pages) {
  auto tx = store.transaction();
  SQLite::Database& db = tx.database();
  const std::int64_t previous = db.execAndGet("PRAGMA max_page_count").getInt64();
  const std::int64_t pages = db.execAndGet("PRAGMA page_count").getInt64();
  db.exec("PRAGMA max_page_count = " + std::to_string(pages + extra_pages));
  tx.rollback();
  return previous;
}

void restore_pages(Store& store, std::int64_t max_page_count) {
  auto tx = store.transaction();
  tx.database().exec("PRAGMA max_page_count = " + std::to_string(max_page_count));
  tx.rollback();
}

TEST(Faults, BusyPastTheTimeoutThrowsStorageErrorBusyAndWritesNothing) {
  TempDir dir;
  const auto path = dir / "app.db";
  auto options = fast_options();
  options.busy_timeout = std::chrono::milliseconds(100);
  auto store = Store::open(path, options);
  store.append("s", event("Before"));

  RawDb locker(path, SQLITE_OPEN_READWRITE);
  locker.exec("BEGIN IMMEDIATE");
  const auto start = std::chrono::steady_clock::now();
  try {
    store.append("s", numbered_events(3));
    FAIL() << "append succeeded while another connection held the write lock";
  } catch (const StorageError& e) {
    EXPECT_EQ(e.code(), ErrorCode::storage);
    EXPECT_EQ(e.sqlite_code(), SQLITE_BUSY) << e.what();
    EXPECT_EQ(e.extended_code() & 0xff, SQLITE_BUSY) << e.what();
  }
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(90));  // the busy timeout was honoured
  EXPECT_LT(waited, std::chrono::seconds(3));        // and not the default one
  locker.exec("ROLLBACK");

  EXPECT_EQ(store.head(), 1);
  EXPECT_EQ(store.append("s", event("After")), 2);
  EXPECT_TRUE(store.verify().empty());
}

TEST(Faults, TransactionPastTheBusyTimeoutThrowsStorageErrorBusy) {
  TempDir dir;
  const auto path = dir / "app.db";
  auto options = fast_options();
  options.busy_timeout = std::chrono::milliseconds(100);
  auto store = Store::open(path, options);

  RawDb locker(path, SQLITE_OPEN_READWRITE);
  locker.exec("BEGIN IMMEDIATE");
  try {
    auto tx = store.transaction();
    FAIL() << "a transaction began while another connection held the write lock";
  } catch (const StorageError& e) {
    EXPECT_EQ(e.sqlite_code(), SQLITE_BUSY) << e.what();
  }
  locker.exec("ROLLBACK");
  auto tx = store.transaction();
  tx.append("s", event("Now"));
  tx.commit();
  EXPECT_EQ(store.head(), 1);
}

TEST(Faults, DiskFullInAppendThrowsStorageErrorFullAndStoresNothing) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  store.append("s", numbered_events(3));
  const auto previous = limit_pages(store, 2);

  try {
    store.append("s", big_events(100, 4000));
    FAIL() << "400 KB were appended into 2 free pages";
  } catch (const StorageError& e) {
    EXPECT_EQ(e.sqlite_code(), SQLITE_FULL) << e.what();
  }
  EXPECT_EQ(store.head(), 3);
  EXPECT_EQ(store.stream_version("s"), 3);

  restore_pages(store, previous);
  EXPECT_EQ(store.append("s", big_events(100, 4000)).back(), 103);
  EXPECT_TRUE(store.verify().empty());
}

TEST(Faults, DiskFullInTransactionEndsItAndStoresNothingOfIt) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  {
    auto tx = store.transaction();
    SQLite::Database& db = tx.database();
    db.exec("CREATE TABLE app_rows(x)");
    db.exec("INSERT INTO app_rows VALUES (1)");
    EXPECT_EQ(tx.append("s", event("A")), 1);
    const std::int64_t pages = db.execAndGet("PRAGMA page_count").getInt64();
    db.exec("PRAGMA max_page_count = " + std::to_string(pages + 1));

    try {
      // Under 32 events, so one INSERT per event: a statement with no statement
      // journal, which SQLite cannot undo alone.
      tx.append("s", big_events(20, 20000));
      FAIL() << "400 KB were appended into 1 free page";
    } catch (const StorageError& e) {
      EXPECT_EQ(e.sqlite_code(), SQLITE_FULL) << e.what();
    }
    // SQLite rolled the transaction back: it has ended, with nothing of it stored.
    EXPECT_FALSE(tx.active());
    EXPECT_THROW(tx.append("s", event("B")), InvalidArgument);
    EXPECT_THROW(tx.commit(), InvalidArgument);
  }
  EXPECT_EQ(store.head(), 0);
  // The store is usable afterwards (max_page_count is per connection: reset it).
  {
    auto tx = store.transaction();
    tx.database().exec("PRAGMA max_page_count = 1073741823");
    tx.commit();
  }
  EXPECT_EQ(store.append("s", event("C")), 1);
}

// A long batch goes through multi-row INSERTs, which SQLite undoes alone when the
// disk is full: the transaction stays open, without this call's events.
TEST(Faults, DiskFullInALongBatchInTransactionLeavesItOpenWithoutThatCall) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  {
    auto tx = store.transaction();
    SQLite::Database& db = tx.database();
    db.exec("CREATE TABLE app_rows(x)");
    db.exec("INSERT INTO app_rows VALUES (1)");
    EXPECT_EQ(tx.append("s", event("A")), 1);
    const std::int64_t pages = db.execAndGet("PRAGMA page_count").getInt64();
    db.exec("PRAGMA max_page_count = " + std::to_string(pages + 1));
    try {
      tx.append("s", big_events(100, 4000));
      FAIL() << "400 KB were appended into 1 free page";
    } catch (const StorageError& e) {
      EXPECT_EQ(e.sqlite_code(), SQLITE_FULL) << e.what();
    }
    ASSERT_TRUE(tx.active());
    db.exec("PRAGMA max_page_count = 1073741823");
    EXPECT_EQ(tx.append("s", event("B")), 2);
    tx.commit();
  }
  EXPECT_EQ(store.head(), 2);
  EXPECT_EQ(store.stream_version("s"), 2);
  EXPECT_TRUE(store.verify().empty());
}

TEST(Faults, ReadOnlyStoreRefusesEveryKindOfWrite) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_store_file(path, 2);
  const std::string before = read_bytes(path);
  {
    auto options = fast_options();
    options.read_only = true;
    auto store = Store::open(path, options);
    EXPECT_THROW(store.append("seed", event("No")), InvalidArgument);
    EXPECT_THROW(store.append("seed", numbered_events(2)), InvalidArgument);
    EXPECT_THROW(store.transaction(), InvalidArgument);
    EXPECT_THROW(store.append_async("seed", numbered_events(1)).get(), InvalidArgument);
    EXPECT_EQ(store.head(), 2);
  }
  EXPECT_TRUE(same_bytes(before, read_bytes(path)));
}

TEST(Faults, ReadOnlyStoreRefusesAppendInThroughAnAppConnection) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_store_file(path, 2);
  auto options = fast_options();
  options.read_only = true;
  auto store = Store::open(path, options);
  RawDb app(path, SQLITE_OPEN_READWRITE);
  app.exec("BEGIN IMMEDIATE");
  EXPECT_THROW(store.append_in(app.get(), "seed", numbered_events(1)), InvalidArgument);
  app.exec("COMMIT");
  EXPECT_EQ(app.query_int("SELECT count(*) FROM eventlite_events"), 2);
}

TEST(Faults, ReadOnlyFileOpenedForWritingThrowsStorageError) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_store_file(path, 3);
  ASSERT_EQ(::chmod(path.c_str(), 0444), 0);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);  // the child may read it, not write it
  const std::string before = read_bytes(path);

  // No Store is open in this process: the child opens its own after fork().
  const int code = run_in_child([&] {
    if (::geteuid() == 0) {
      // root ignores file modes: become nobody (65534) first.
      if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) {
        return 20;
      }
    }
    if (::access(path.c_str(), W_OK) == 0) return 21;  // the setup did not take
    try {
      auto store = Store::open(path, fast_options());
      try {
        store.append("seed", event("Written"));
        return 11;
      } catch (const StorageError&) {
        return 10;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "append: %s\n", e.what());
        return 12;
      }
    } catch (const StorageError&) {
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "open: %s\n", e.what());
      return 13;
    }
  });
  EXPECT_EQ(code, 0)
      << (code == 10 ? "open succeeded read-write on a read-only file; append then threw "
                       "StorageError (store.hpp says open throws StorageError)"
          : code == 11 ? "open and append succeeded on a read-only file"
          : code == 12 ? "append threw something other than StorageError"
          : code == 13 ? "open threw something other than StorageError"
          : code == 20 ? "could not drop privileges"
          : code == 21 ? "the file stayed writable for the child"
                       : "child crashed or failed");
  EXPECT_TRUE(same_bytes(before, read_bytes(path)));
}

TEST(Faults, UpdateOfEventsIsRefusedAsAppendOnly) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_store_file(path, 2);
  RawDb db(path, SQLITE_OPEN_READWRITE);
  EXPECT_NE(db.try_exec("UPDATE eventlite_events SET type = 'Forged' WHERE seq = 1"),
            SQLITE_OK);
  EXPECT_NE(db.error().find("append-only"), std::string::npos) << db.error();
  EXPECT_EQ(db.query_text("SELECT type FROM eventlite_events WHERE seq = 1"), "Seed");
}

TEST(Faults, DeleteOfEventsIsRefusedAsAppendOnly) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_store_file(path, 2);
  RawDb db(path, SQLITE_OPEN_READWRITE);
  EXPECT_NE(db.try_exec("DELETE FROM eventlite_events WHERE seq = 2"), SQLITE_OK);
  EXPECT_NE(db.error().find("append-only"), std::string::npos) << db.error();
  EXPECT_EQ(db.query_int("SELECT count(*) FROM eventlite_events"), 2);
}

TEST(Faults, CorruptPagesAreReportedNeverACrash) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_store_file(path, 3000, 100);
  std::int64_t page_size = 0;
  std::int64_t pages = 0;
  {
    RawDb db(path, SQLITE_OPEN_READONLY);
    page_size = db.query_int("PRAGMA page_size");
    pages = db.query_int("PRAGMA page_count");
  }
  ASSERT_GT(pages, 40);
  // Overwrite the header and first cells of pages in the middle of the file.
  const std::string garbage(64, '\xA5');
  for (std::int64_t page = 10; page < pages - 5; page += 7) {
    overwrite_bytes(path, static_cast<std::uint64_t>((page - 1) * page_size), garbage);
  }

  std::optional<Store> store;
  try {
    store.emplace(Store::open(path, fast_options()));
  } catch (const StorageError& e) {
    SUCCEED() << "open refused the corrupt file: " << e.what();
    return;
  } catch (const std::exception& e) {
    FAIL() << "open threw something other than StorageError: " << e.what();
  }
  std::vector<std::string> problems;
  try {
    problems = store->verify();
  } catch (const std::exception& e) {
    FAIL() << "verify() threw instead of reporting: " << e.what();
  }
  EXPECT_FALSE(problems.empty()) << "verify() found nothing wrong in a corrupt file";
  try {
    (void)store->read_all().to_vector();
  } catch (const StorageError&) {
    // A corrupt page may fail a read: as StorageError only.
  } catch (const std::exception& e) {
    ADD_FAILURE() << "read_all threw something other than StorageError: " << e.what();
  }
}

}  // namespace
}  // namespace eventlite
