#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <latch>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;
namespace fs = std::filesystem;

// Sets the process umask for one test and restores it.
class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t mask) : old_(::umask(mask)) {}
  ~UmaskGuard() { ::umask(old_); }
  UmaskGuard(const UmaskGuard&) = delete;
  UmaskGuard& operator=(const UmaskGuard&) = delete;

 private:
  mode_t old_;
};

// An application's own database, without eventlite, in rollback-journal mode.
void create_app_database(const fs::path& path) {
  RawDb app(path);
  app.exec("PRAGMA user_version = 42");
  app.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)");
  app.exec("INSERT INTO users (name) VALUES ('ada'), ('grace'), ('linus')");
  app.exec("CREATE INDEX users_name ON users (name)");
  app.exec("CREATE VIEW user_names AS SELECT name FROM users");
}

// A closed eventlite file holding `n` events, with its WAL folded in.
void create_store_file(const fs::path& path, std::size_t n) {
  {
    auto store = Store::open(path, fast_options());
    if (n > 0) store.append("seed", numbered_events(n));
  }
  checkpoint(path);
}

TEST(StoreOpen, CreatesMissingFileWithEventliteSchema) {
  TempDir dir;
  const auto path = dir / "app.db";
  {
    auto store = Store::open(path, fast_options());
    EXPECT_EQ(store.head(), 0);
  }
  ASSERT_TRUE(fs::exists(path));
  RawDb db(path, SQLITE_OPEN_READONLY);
  for (const char* name : {"eventlite_schema", "eventlite_events",
                           "eventlite_subscriptions", "eventlite_streams",
                           "eventlite_events_no_update", "eventlite_events_no_delete"}) {
    EXPECT_TRUE(db.has_object(name)) << name;
  }
}

TEST(StoreOpen, NewFileAnswersWalJournalMode) {
  TempDir dir;
  const auto path = dir / "app.db";
  auto store = Store::open(path, fast_options());
  RawDb db(path, SQLITE_OPEN_READONLY);
  EXPECT_EQ(db.query_text("PRAGMA journal_mode"), "wal");
}

// The -wal and -shm files, which exist while a connection has the file open in WAL
// mode; SQLite creates them with the database's mode.
void expect_side_files_mode(const fs::path& path, unsigned mode) {
  for (const char* suffix : {"-wal", "-shm"}) {
    const fs::path side = path.string() + suffix;
    ASSERT_TRUE(fs::exists(side)) << side;
    EXPECT_EQ(file_mode(side), mode) << side;
  }
}

// Under umask 022 SQLite alone creates 0644; under 0, open()'s 0666 would stay.
TEST(StoreOpen, NewFileAndItsWalAreOwnerReadWriteOnly) {
  for (const mode_t mask : {mode_t{022}, mode_t{0}}) {
    SCOPED_TRACE(mask);
    UmaskGuard umask_guard(mask);
    TempDir dir;
    const auto path = dir / "app.db";
    auto store = Store::open(path, fast_options());
    store.append("s", event("Created"));
    EXPECT_EQ(file_mode(path), 0600u);
    expect_side_files_mode(path, 0600u);
  }
}

TEST(StoreOpen, FileModeOptionAppliesToACreatedFile) {
  UmaskGuard umask_guard(022);
  TempDir dir;
  const auto path = dir / "app.db";
  auto options = fast_options();
  options.file_mode =
      fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read;
  auto store = Store::open(path, options);
  store.append("s", event("Created"));
  EXPECT_EQ(file_mode(path), 0640u);
  expect_side_files_mode(path, 0640u);
}

// A reader that opens the file after every writer closed it creates the -shm (and
// -wal) again: with the database's mode, not SQLite's default.
TEST(StoreOpen, ReadOnlyOpenRecreatesItsSideFilesOwnerOnly) {
  UmaskGuard umask_guard(0);
  TempDir dir;
  const auto path = dir / "app.db";
  {
    auto store = Store::open(path, fast_options());
    store.append("s", event("Created"));
  }
  ASSERT_FALSE(fs::exists(path.string() + "-shm")) << "closing leaves it behind";
  auto options = fast_options();
  options.read_only = true;
  const auto reader = Store::open(path, options);
  EXPECT_EQ(reader.head(), 1);
  EXPECT_EQ(file_mode(path), 0600u);
  expect_side_files_mode(path, 0600u);
}

TEST(StoreOpen, ExistingFileKeepsItsMode) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_app_database(path);
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  auto store = Store::open(path, fast_options());
  store.append("s", event("Created"));
  EXPECT_EQ(file_mode(path), 0644u);
}

TEST(StoreOpen, SchemaVersionIsInItsOwnTableAndUserVersionIsUntouched) {
  TempDir dir;
  const auto path = dir / "app.db";
  auto store = Store::open(path, fast_options());
  EXPECT_GE(supported_schema_version(), 1);
  EXPECT_EQ(store.schema_version(), supported_schema_version());
  RawDb db(path, SQLITE_OPEN_READONLY);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM eventlite_schema"), 1);
  EXPECT_EQ(db.query_int("SELECT version FROM eventlite_schema"),
            supported_schema_version());
  EXPECT_EQ(db.query_int("PRAGMA user_version"), 0);
}

TEST(StoreOpen, ReopenKeepsEventsAndDoesNotMigrateAgain) {
  TempDir dir;
  const auto path = dir / "app.db";
  {
    auto store = Store::open(path, fast_options());
    store.append("s", numbered_events(3));
  }
  {
    auto store = Store::open(path, fast_options());
    EXPECT_EQ(store.head(), 3);
    EXPECT_EQ(store.stream_version("s"), 3);
    EXPECT_EQ(store.append("s", event("More")), 4);
  }
  RawDb db(path, SQLITE_OPEN_READONLY);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM eventlite_schema"), 1);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM eventlite_events"), 4);
}

TEST(StoreOpen, InitOnAppDatabaseAddsEventliteTablesAndKeepsAppData) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_app_database(path);
  {
    auto store = Store::open(path, fast_options());
    EXPECT_EQ(store.append("user-1", event("UserCreated")), 1);
  }
  RawDb db(path, SQLITE_OPEN_READONLY);
  EXPECT_EQ(db.query_int("PRAGMA user_version"), 42);
  EXPECT_EQ(db.query_column("SELECT name FROM users ORDER BY id"),
            (std::vector<std::string>{"ada", "grace", "linus"}));
  EXPECT_EQ(db.query_int("SELECT count(*) FROM user_names"), 3);
  EXPECT_TRUE(db.has_object("users_name"));
  EXPECT_TRUE(db.has_object("eventlite_events"));
  EXPECT_EQ(db.query_int("SELECT count(*) FROM eventlite_events"), 1);
  // Everything that is not the application's is named eventlite_*.
  EXPECT_EQ(db.query_column(
                "SELECT name FROM sqlite_master WHERE name NOT LIKE 'eventlite!_%' "
                "ESCAPE '!' AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY name"),
            (std::vector<std::string>{"user_names", "users", "users_name"}));
}

TEST(StoreOpen, InitOnAppDatabaseSwitchesItToWal) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_app_database(path);
  {
    RawDb db(path, SQLITE_OPEN_READONLY);
    ASSERT_EQ(db.query_text("PRAGMA journal_mode"), "delete");
  }
  auto store = Store::open(path, fast_options());
  RawDb db(path, SQLITE_OPEN_READONLY);
  EXPECT_EQ(db.query_text("PRAGMA journal_mode"), "wal");
}

// Opens `path` on another thread while `lock` holds a lock on it, releases the lock
// (with `release`) once the opener waits, and returns how the open ended.
std::string open_while_locked(const fs::path& path, RawDb& lock,
                              const std::string& release) {
  std::atomic<pid_t> opener_tid{0};
  std::atomic<bool> done{false};
  std::string outcome;
  std::thread opener([&] {
    opener_tid = current_tid();
    try {
      auto store = Store::open(path, fast_options());  // busy_timeout 5 s
      outcome = "opened";
    } catch (const std::exception& e) {
      outcome = e.what();
    }
    done = true;
  });
  // End the lock once the opener waits on it (or has given up already).
  wait_until(
      [&] { return done || (opener_tid != 0 && thread_state(opener_tid) == 'S'); });
  lock.exec(release);
  opener.join();
  return outcome;
}

TEST(StoreOpen, InitWaitsOutAReaderOfTheAppDatabase) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_app_database(path);
  RawDb app(path, SQLITE_OPEN_READWRITE);
  app.exec("BEGIN");
  ASSERT_EQ(app.query_int("SELECT count(*) FROM users"), 3);  // holds a read lock
  EXPECT_EQ(open_while_locked(path, app, "COMMIT"), "opened");
}

TEST(StoreOpen, InitWaitsOutAWriterOfTheAppDatabase) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_app_database(path);
  RawDb app(path, SQLITE_OPEN_READWRITE);
  app.exec("BEGIN IMMEDIATE");
  app.exec("INSERT INTO users (name) VALUES ('barbara')");  // holds the write lock
  EXPECT_EQ(open_while_locked(path, app, "COMMIT"), "opened");
  RawDb check(path, SQLITE_OPEN_READONLY);
  EXPECT_EQ(check.query_int("SELECT count(*) FROM users"), 4);
  EXPECT_EQ(check.query_text("PRAGMA journal_mode"), "wal");
}

TEST(StoreOpen, SchemaTooNewThrowsAndLeavesFileByteForByteUnchanged) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_store_file(path, 3);
  {
    RawDb db(path, SQLITE_OPEN_READWRITE);
    db.exec("UPDATE eventlite_schema SET version = 999");
  }
  checkpoint(path);
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  const std::string before = read_bytes(path);

  try {
    auto store = Store::open(path, fast_options());
    FAIL() << "open succeeded on a file of schema version 999";
  } catch (const SchemaTooNew& e) {
    EXPECT_EQ(e.found(), 999);
    EXPECT_EQ(e.supported(), supported_schema_version());
    EXPECT_EQ(e.code(), ErrorCode::schema_too_new);
    EXPECT_NE(std::string(e.what()).find("999"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(same_bytes(before, read_bytes(path)));
  EXPECT_EQ(file_mode(path), 0644u);
}

TEST(StoreOpen, RandomBytesThrowNotAnEventliteDatabaseAndFileIsUnchanged) {
  TempDir dir;
  const auto path = dir / "app.db";
  std::mt19937 rng(1234);
  std::string bytes(64 * 1024, '\0');
  for (auto& b : bytes) b = static_cast<char>(rng() & 0xff);
  write_bytes(path, bytes);
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);

  try {
    auto store = Store::open(path, fast_options());
    FAIL() << "open succeeded on a file of random bytes";
  } catch (const NotAnEventliteDatabase& e) {
    EXPECT_EQ(e.code(), ErrorCode::not_an_eventlite_database);
  }
  EXPECT_TRUE(same_bytes(bytes, read_bytes(path)));
  EXPECT_EQ(file_mode(path), 0644u);
  EXPECT_EQ(dir.entries(), (std::set<std::string>{"app.db"}));
}

TEST(StoreOpen, MissingFileWithoutCreateThrowsStorageErrorAndCreatesNothing) {
  TempDir dir;
  auto options = fast_options();
  options.create_if_missing = false;
  EXPECT_THROW(Store::open(dir / "app.db", options), StorageError);
  EXPECT_TRUE(dir.entries().empty());
}

TEST(StoreOpen, DirectoryThrowsStorageErrorAndIsLeftEmpty) {
  TempDir dir;
  fs::create_directory(dir / "app.db");
  EXPECT_THROW(Store::open(dir / "app.db", fast_options()), StorageError);
  EXPECT_TRUE(fs::is_empty(dir / "app.db"));
  EXPECT_EQ(dir.entries(), (std::set<std::string>{"app.db"}));
}

TEST(StoreOpen, AppDatabaseNotSetUpWithoutCreateThrowsAndIsUnchanged) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_app_database(path);
  const std::string before = read_bytes(path);
  auto options = fast_options();
  options.create_if_missing = false;

  EXPECT_THROW(Store::open(path, options), NotAnEventliteDatabase);
  EXPECT_TRUE(same_bytes(before, read_bytes(path)));
  EXPECT_EQ(dir.entries(), (std::set<std::string>{"app.db"}));
}

TEST(StoreOpen, ReadOnlyOpenReadsAndNeverWritesTheFile) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_store_file(path, 5);
  const std::string before = read_bytes(path);
  {
    auto options = fast_options();
    options.read_only = true;
    auto store = Store::open(path, options);
    EXPECT_EQ(store.head(), 5);
    EXPECT_EQ(store.stream_version("seed"), 5);
    EXPECT_EQ(store.read_all().to_vector().size(), 5u);
    EXPECT_TRUE(store.verify().empty());
    EXPECT_THROW(store.append("seed", event("Nope")), InvalidArgument);
    EXPECT_THROW(store.append("seed", numbered_events(2)), InvalidArgument);
    EXPECT_THROW(store.transaction(), InvalidArgument);
    EXPECT_EQ(store.head(), 5);
  }
  EXPECT_TRUE(same_bytes(before, read_bytes(path)));
}

TEST(StoreOpen, ReadOnlyOpenOfMissingFileThrowsStorageErrorAndCreatesNothing) {
  TempDir dir;
  auto options = fast_options();
  options.read_only = true;
  EXPECT_THROW(Store::open(dir / "app.db", options), StorageError);
  EXPECT_TRUE(dir.entries().empty());
}

TEST(StoreOpen, ReadOnlyOpenOfAppDatabaseNotSetUpThrowsAndIsUnchanged) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_app_database(path);
  const std::string before = read_bytes(path);
  auto options = fast_options();
  options.read_only = true;  // create_if_missing stays true: read_only wins
  EXPECT_THROW(Store::open(path, options), NotAnEventliteDatabase);
  EXPECT_TRUE(same_bytes(before, read_bytes(path)));
}

TEST(StoreOpen, NegativeBusyTimeoutIsInvalidArgument) {
  auto options = fast_options();
  options.busy_timeout = std::chrono::milliseconds(-1);
  EXPECT_THROW(Store::open(":memory:", options), InvalidArgument);
}

TEST(StoreOpen, ReportsItsPathAndOptions) {
  TempDir dir;
  const auto path = dir / "app.db";
  auto options = fast_options();
  options.busy_timeout = std::chrono::milliseconds(1234);
  auto store = Store::open(path, options);
  EXPECT_EQ(store.path(), path);
  EXPECT_EQ(store.options().durability, Durability::normal);
  EXPECT_EQ(store.options().busy_timeout, std::chrono::milliseconds(1234));
}

TEST(StoreOpen, MovedStoreKeepsItsEvents) {
  auto a = Store::open(":memory:");
  a.append("s", event("One"));
  Store b = std::move(a);
  EXPECT_EQ(b.head(), 1);
  auto c = Store::open(":memory:");
  c = std::move(b);
  EXPECT_EQ(c.head(), 1);
  EXPECT_EQ(c.append("s", event("Two")), 2);
}

TEST(StoreIdentity, NewStoreHasAUuidThatReopeningAndCopyingKeep) {
  TempDir dir;
  std::string id;
  {
    Store store = Store::open(dir / "a.db");
    id = store.identity().id;
    EXPECT_EQ(store.identity().name, "");
    EXPECT_EQ(store.identity().label(), id);
  }
  ASSERT_EQ(id.size(), 36u);
  EXPECT_EQ(id[14], '4') << id;  // version 4
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
  EXPECT_EQ(Store::open(dir / "a.db").identity().id, id);
  std::filesystem::copy_file(dir / "a.db", dir / "copy.db");
  EXPECT_EQ(Store::open(dir / "copy.db").identity().id, id);
  EXPECT_NE(Store::open(dir / "b.db").identity().id, id);
  EXPECT_NE(Store::open(":memory:").identity().id, Store::open(":memory:").identity().id);
}

TEST(StoreIdentity, NameIsSetChangedAndRemovedAndOtherProcessesSeeIt) {
  TempDir dir;
  Store store = Store::open(dir / "a.db");
  const std::string id = store.identity().id;
  store.set_name("billing");
  EXPECT_EQ(Store::open(dir / "a.db").identity(), (StoreIdentity{id, "billing"}));
  EXPECT_EQ(store.identity().label(), "billing");
  store.set_name("billing-2_eu");
  EXPECT_EQ(Store::open(dir / "a.db").identity().name, "billing-2_eu");
  store.set_name("");
  EXPECT_EQ(store.identity(), (StoreIdentity{id, ""}));
}

TEST(StoreIdentity, AMalformedNameIsRefusedAndTheOldOneKept) {
  auto store = Store::open(":memory:");
  store.set_name("ok");
  const std::vector<std::string> bads = {"-lead",      "has.dot", "has space",
                                         "a/b",        "x{y}",    std::string(65, 'a'),
                                         "caf\xc3\xa9"};
  for (const std::string& bad : bads) {
    EXPECT_THROW(store.set_name(bad), InvalidArgument) << bad;
    EXPECT_FALSE(store_name_problem(bad).empty()) << bad;
  }
  EXPECT_EQ(store.identity().name, "ok");
  EXPECT_TRUE(store_name_problem(std::string(64, 'a')).empty());
}

TEST(StoreIdentity, AFileOfSchema5IsGivenAnIdWhenMigrated) {
  TempDir dir;
  {
    Store store = Store::open(dir / "old.db");
    store.append("s", event("E"));
  }
  {  // Back to what schema 5 had: no eventlite_store.
    RawDb raw(dir / "old.db");
    raw.exec("DROP TABLE eventlite_store");
    raw.exec("UPDATE eventlite_schema SET version = 5");
  }
  EXPECT_TRUE(Store::open(dir / "old.db", {.read_only = true}).identity().id.empty());
  Store store = Store::open(dir / "old.db");
  EXPECT_EQ(store.schema_version(), 6);
  EXPECT_EQ(store.identity().id.size(), 36u);
  EXPECT_EQ(store.head(), 1);
}

TEST(StoreOpen, WriterConnectionIsConfiguredAsDesigned) {
  TempDir dir;
  auto options = fast_options();
  options.busy_timeout = std::chrono::milliseconds(1234);
  auto store = Store::open(dir / "app.db", options);
  auto tx = store.transaction();
  SQLite::Database& db = tx.database();
  EXPECT_EQ(db.execAndGet("PRAGMA busy_timeout").getInt(), 1234);
  EXPECT_EQ(db.execAndGet("PRAGMA trusted_schema").getInt(), 0);
  EXPECT_EQ(db.execAndGet("PRAGMA mmap_size").getInt64(), 0);
  EXPECT_GE(db.execAndGet("PRAGMA journal_size_limit").getInt64(), 0);
  EXPECT_EQ(db.execAndGet("PRAGMA journal_mode").getString(), "wal");
  int defensive = -1;
  ASSERT_EQ(sqlite3_db_config(db.getHandle(), SQLITE_DBCONFIG_DEFENSIVE, -1, &defensive),
            SQLITE_OK);
  EXPECT_EQ(defensive, 1);
  tx.rollback();
}

TEST(Durability, FullSetsSynchronousFull) {
  TempDir dir;
  StoreOptions options;
  options.durability = Durability::full;
  auto store = Store::open(dir / "app.db", options);
  auto tx = store.transaction();
  EXPECT_EQ(tx.database().execAndGet("PRAGMA synchronous").getInt(), 2);
}

TEST(Durability, NormalSetsSynchronousNormal) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  auto tx = store.transaction();
  EXPECT_EQ(tx.database().execAndGet("PRAGMA synchronous").getInt(), 1);
}

TEST(InMemory, TwoStoresAreIndependent) {
  auto a = Store::open(":memory:");
  auto b = Store::open(":memory:");
  a.append("s", numbered_events(2));
  EXPECT_EQ(a.head(), 2);
  EXPECT_EQ(b.head(), 0);
  EXPECT_EQ(b.stream_version("s"), 0);
  EXPECT_EQ(b.append("s", event("First")), 1);
  EXPECT_EQ(a.head(), 2);
  EXPECT_EQ(a.stream_version("s"), 2);
}

TEST(InMemory, SharedByEightThreadsAppendingAndReading) {
  auto store = Store::open(":memory:");
  constexpr int kThreads = 8;
  constexpr int kAppends = 100;
  std::latch start(kThreads);
  std::vector<std::vector<Seq>> seqs(kThreads);
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string stream = "thread-" + std::to_string(t);
      start.arrive_and_wait();
      try {
        for (int i = 0; i < kAppends; ++i) {
          Seq seq =
              store.append(stream, event("Step", "{\"i\":" + std::to_string(i) + "}"),
                           Expected::exactly(i));
          seqs[t].push_back(seq);
          // What this thread appended is visible to its next read.
          auto mine = store.read_stream(stream).to_vector();
          if (mine.size() != static_cast<std::size_t>(i + 1) || mine.back().seq != seq) {
            failures[t] =
                "read_stream missed an appended event at i=" + std::to_string(i);
            return;
          }
          if (store.head() < seq) {
            failures[t] = "head below an appended seq";
            return;
          }
          if (i % 10 == 0) {
            ReadOptions steps;
            steps.types = {"Step"};
            (void)store.read_all(steps).to_vector();
          }
        }
      } catch (const std::exception& e) {
        failures[t] = e.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;

  std::vector<Seq> all;
  for (const auto& s : seqs) all.insert(all.end(), s.begin(), s.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads * kAppends));
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], static_cast<Seq>(i + 1));
  EXPECT_EQ(store.head(), kThreads * kAppends);
  EXPECT_TRUE(store.verify().empty());
}

// Runs the test's body in `dir`, where relative paths are its files, and goes back.
class InDirectory {
 public:
  explicit InDirectory(const std::filesystem::path& dir)
      : before_(std::filesystem::current_path()) {
    std::filesystem::current_path(dir);
  }
  ~InDirectory() { std::filesystem::current_path(before_); }
  InDirectory(const InDirectory&) = delete;
  InDirectory& operator=(const InDirectory&) = delete;

 private:
  std::filesystem::path before_;
};

TEST(StoreOpen, PathStartingWithFileColonIsThatFileNotAnSqliteUri) {
  TempDir dir;
  {
    InDirectory in(dir.path());
    // As a URI this would open "x.db" read-only; as a path it is a new file.
    auto store = Store::open("file:x.db?mode=ro", fast_options());
    EXPECT_EQ(store.append("s", event("A")), 1);
  }
  EXPECT_TRUE(dir.entries().count("file:x.db?mode=ro")) << dir.entries().size();
  EXPECT_FALSE(dir.entries().count("x.db"));
  auto reopened = Store::open(dir / "file:x.db?mode=ro");
  EXPECT_EQ(reopened.head(), 1);
}

TEST(StoreOpen, DotSlashMemoryIsAFile) {
  TempDir dir;
  {
    InDirectory in(dir.path());
    auto store = Store::open("./:memory:", fast_options());
    store.append("s", event("A"));
  }
  EXPECT_EQ(Store::open(dir / ":memory:").head(), 1);
}

TEST(StoreOpen, RefusedFileKeepsItsUncheckpointedWal) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_store_file(path, 3);
  fs::path wal = path;
  wal += "-wal";
  {
    // A writer that leaves its last commit in the WAL, not yet in the main file.
    RawDb db(path, SQLITE_OPEN_READWRITE);
    sqlite3_db_config(db.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    db.exec("UPDATE eventlite_schema SET version = 999");
  }
  ASSERT_TRUE(fs::exists(wal));
  const std::string main_before = read_bytes(path);
  const std::string wal_before = read_bytes(wal);

  EXPECT_THROW(Store::open(path, fast_options()), SchemaTooNew);
  ASSERT_TRUE(fs::exists(wal)) << "closing the refused file checkpointed it";
  EXPECT_TRUE(same_bytes(main_before, read_bytes(path)));
  EXPECT_TRUE(same_bytes(wal_before, read_bytes(wal)));
}

}  // namespace
}  // namespace eventlite
