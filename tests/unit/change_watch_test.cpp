#include "store/change_watch.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "test_support.hpp"

// The change watch on real files: commits from another process and another connection
// wake it, a -wal file created after it started is seen, bursts are coalesced, an
// early wake-up is re-checked, and it is inactive where there is no file to watch.
// Waits run the io_context until a condition holds, with a deadline; no sleeps.

namespace eventlite {
namespace {

using namespace eventlite::test;
using namespace std::chrono_literals;
using detail::ChangeWatch;
using detail::ChangeWatchOptions;
using Check = ChangeWatch::Check;
namespace asio = boost::asio;

// Runs `io` until `pred` holds or `timeout` passes; returns pred().
template <class Pred>
bool run_until(asio::io_context& io, Pred pred, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return pred();
    io.run_one_for(std::min<std::chrono::steady_clock::duration>(deadline - now, 50ms));
    if (io.stopped()) io.restart();
  }
  return true;
}

// Runs whatever `io` has ready without blocking. inotify queues an event within the
// write(2) that causes it, so a write made before this call is seen by it.
void run_ready(asio::io_context& io) {
  for (int i = 0; i < 3; ++i) {
    io.poll();
    io.restart();
  }
}

// A WAL database with one table, no connection left open (so no -wal file either).
void create_wal_db(const std::filesystem::path& path) {
  RawDb db(path);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("CREATE TABLE t(x)");
}

// One byte through a pipe: tells a forked child when to go.
class Gate {
 public:
  Gate() {
    if (::pipe(fds_) != 0)
      throw std::system_error(errno, std::generic_category(), "pipe");
  }
  ~Gate() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;
  void open() {
    const char go = 'g';
    if (::write(fds_[1], &go, 1) != 1) throw std::runtime_error("gate write failed");
  }
  bool wait() {
    char go = 0;
    return ::read(fds_[0], &go, 1) == 1;
  }

 private:
  int fds_[2] = {-1, -1};
};

// A child, forked before the parent opens any connection, that waits at the gate and
// then commits `commits` rows to `path`, one transaction each.
pid_t spawn_committer(Gate& gate, const std::filesystem::path& path, int commits) {
  return spawn_child([&gate, path, commits] {
    if (!gate.wait()) return 2;
    RawDb db(path, SQLITE_OPEN_READWRITE);
    for (int i = 0; i < commits; ++i)
      db.exec("INSERT INTO t VALUES (" + std::to_string(i) + ")");
    return 0;
  });
}

// A callback that confirms through PRAGMA data_version on `reader`, as the loop will.
struct DataVersionCheck {
  explicit DataVersionCheck(const std::filesystem::path& path)
      : reader(std::make_unique<RawDb>(path, SQLITE_OPEN_READWRITE)),
        seen(reader->query_int("PRAGMA data_version")) {}
  Check operator()() {
    const std::int64_t v = reader->query_int("PRAGMA data_version");
    if (v == seen) return Check::unchanged;
    seen = v;
    return Check::changed;
  }
  std::unique_ptr<RawDb> reader;
  std::int64_t seen;
};

TEST(ChangeWatch, InMemoryTemporaryAndUriDatabasesAreInactive) {
  asio::io_context io;
  int calls = 0;
  for (const char* name : {":memory:", "", "file:/x.db?vfs=memdb"}) {
    ChangeWatch watch(io, name, [&] { return ++calls > 0 ? Check::changed : Check::unchanged; });
    EXPECT_FALSE(watch.active()) << name;
    EXPECT_FALSE(watch.inactive_reason().empty()) << name;
  }
  ChangeWatch memory(io, ":memory:", [&] { return ++calls > 0 ? Check::changed : Check::unchanged; });
  EXPECT_NE(memory.inactive_reason().find("in-memory"), std::string::npos)
      << memory.inactive_reason();
  run_ready(io);
  EXPECT_EQ(calls, 0);
}

TEST(ChangeWatch, MissingFileIsInactiveAndSaysWhy) {
  TempDir dir;
  asio::io_context io;
  ChangeWatch watch(io, dir / "absent.db", [] { return Check::changed; });
  EXPECT_FALSE(watch.active());
  EXPECT_NE(watch.inactive_reason().find("absent.db"), std::string::npos)
      << watch.inactive_reason();
}

TEST(ChangeWatch, CommitFromAnotherProcessWakesIt) {
  TempDir dir;
  const auto path = dir / "app.db";
  Gate gate;
  const pid_t child = spawn_committer(gate, path, 1);
  create_wal_db(path);
  DataVersionCheck check(path);
  asio::io_context io;
  ChangeWatch watch(io, path, std::ref(check));
  ASSERT_TRUE(watch.active()) << watch.inactive_reason();
  EXPECT_TRUE(watch.inactive_reason().empty());

  gate.open();
  EXPECT_TRUE(run_until(io, [&] { return watch.confirmed() >= 1; }));
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_EQ(check.reader->query_int("SELECT count(*) FROM t"), 1);
}

TEST(ChangeWatch, WalCreatedAfterTheWatchStartedIsSeen) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_wal_db(path);
  ASSERT_FALSE(std::filesystem::exists(dir / "app.db-wal"));
  asio::io_context io;
  int calls = 0;
  ChangeWatch watch(io, path, [&] {
    ++calls;
    return Check::changed;
  });
  ASSERT_TRUE(watch.active()) << watch.inactive_reason();

  RawDb other(path);
  other.exec("INSERT INTO t VALUES (1)");
  ASSERT_TRUE(std::filesystem::exists(dir / "app.db-wal"));
  EXPECT_TRUE(run_until(io, [&] { return calls >= 1; }));
}

TEST(ChangeWatch, MainFileWriteInRollbackJournalModeWakesIt) {
  TempDir dir;
  const auto path = dir / "app.db";
  {
    RawDb db(path);
    db.exec("PRAGMA journal_mode=DELETE");
    db.exec("CREATE TABLE t(x)");
  }
  DataVersionCheck check(path);
  asio::io_context io;
  ChangeWatch watch(io, path, std::ref(check));
  ASSERT_TRUE(watch.active()) << watch.inactive_reason();

  RawDb other(path);
  other.exec("INSERT INTO t VALUES (1)");
  EXPECT_TRUE(run_until(io, [&] { return watch.confirmed() >= 1; }));
}

TEST(ChangeWatch, OtherFilesInTheDirectoryDoNotWakeIt) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_wal_db(path);
  RawDb other(path);
  other.exec("INSERT INTO t VALUES (0)");  // the -wal and -shm exist before the watch
  asio::io_context io;
  int calls = 0;
  ChangeWatch watch(io, path, [&] {
    ++calls;
    return Check::changed;
  });
  ASSERT_TRUE(watch.active()) << watch.inactive_reason();

  write_bytes(dir / "notes.txt", "unrelated");
  write_bytes(dir / "app.db-walrus", "a name that starts like ours");
  write_bytes(dir / "other.db-wal", "another database's log");
  run_ready(io);
  EXPECT_EQ(calls, 0);

  // The same way of running sees a commit at once: the zero above means something.
  other.exec("INSERT INTO t VALUES (1)");
  run_ready(io);
  EXPECT_EQ(calls, 1);
}

TEST(ChangeWatch, BurstOfCommitsFromAnotherProcessIsOneWakeUp) {
  TempDir dir;
  const auto path = dir / "app.db";
  Gate gate;
  constexpr int kCommits = 50;
  const pid_t child = spawn_committer(gate, path, kCommits);
  create_wal_db(path);
  DataVersionCheck check(path);
  asio::io_context io;
  ChangeWatch watch(io, path, std::ref(check));
  ASSERT_TRUE(watch.active()) << watch.inactive_reason();

  // All of the burst is queued before the loop runs, as when the loop is busy.
  gate.open();
  ASSERT_EQ(wait_child(child), 0);
  EXPECT_TRUE(run_until(io, [&] { return watch.confirmed() >= 1; }));
  run_ready(io);
  EXPECT_EQ(watch.callbacks(), 1u);
  EXPECT_EQ(watch.confirmed(), 1u);
  EXPECT_EQ(check.reader->query_int("SELECT count(*) FROM t"), kCommits);
}

TEST(ChangeWatch, CommitsWhileRunningWakeItAtLeastOnceAndAtMostOncePerCommit) {
  TempDir dir;
  const auto path = dir / "app.db";
  Gate gate;
  constexpr int kCommits = 200;
  const pid_t child = spawn_committer(gate, path, kCommits);
  create_wal_db(path);
  DataVersionCheck check(path);
  asio::io_context io;
  ChangeWatch watch(io, path, std::ref(check));
  ASSERT_TRUE(watch.active()) << watch.inactive_reason();

  gate.open();
  EXPECT_TRUE(run_until(io, [&] {
    return check.reader->query_int("SELECT count(*) FROM t") == kCommits &&
           check.seen == check.reader->query_int("PRAGMA data_version");
  }));
  EXPECT_EQ(wait_child(child), 0);
  // Each confirmed wake-up saw at least one new commit; several writes of a commit
  // (its frames) and commits that came while the callback ran share one.
  EXPECT_GE(watch.confirmed(), 1u);
  EXPECT_LE(watch.confirmed(), static_cast<std::uint64_t>(kCommits));
}

TEST(ChangeWatch, UnconfirmedWakeUpIsCheckedAgainUntilTheChangeShows) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_wal_db(path);
  asio::io_context io;
  int calls = 0;
  // As when the frames are written but the commit is not yet published: the first
  // three confirmations find nothing.
  ChangeWatch watch(io, path, [&] { return ++calls > 3 ? Check::changed : Check::unchanged; });
  ASSERT_TRUE(watch.active()) << watch.inactive_reason();

  RawDb other(path);
  other.exec("INSERT INTO t VALUES (1)");
  EXPECT_TRUE(run_until(io, [&] { return watch.confirmed() >= 1; }));
  EXPECT_EQ(calls, 4);
}

TEST(ChangeWatch, RecheckingStopsAfterTheWindow) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_wal_db(path);
  RawDb other(path);
  other.exec("INSERT INTO t VALUES (0)");
  asio::io_context io;
  ChangeWatch watch(
      io, path, [] { return Check::unchanged; },
      ChangeWatchOptions{
          .first_recheck = 100us, .max_recheck = 1ms, .recheck_window = 20ms});
  ASSERT_TRUE(watch.active()) << watch.inactive_reason();

  other.exec("INSERT INTO t VALUES (1)");
  ASSERT_TRUE(run_until(io, [&] { return watch.callbacks() >= 2; }));
  // The chase ends: nothing is left to run for longer than the window, many times.
  EXPECT_TRUE(run_until(
      io, [&] { return io.run_one_for(200ms) == 0; }, 5s));
  // 20 ms of re-checks growing from 0.1 to 1 ms: a few dozen, not thousands.
  EXPECT_GE(watch.callbacks(), 5u);
  EXPECT_LE(watch.callbacks(), 60u);
  EXPECT_EQ(watch.confirmed(), 0u);
}

TEST(ChangeWatch, OwnWriteIsLookedAtOnceMoreInsteadOfChased) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_wal_db(path);
  RawDb other(path);
  other.exec("INSERT INTO t VALUES (0)");
  asio::io_context io;
  // The same options as RecheckingStopsAfterTheWindow, whose unchanged answers make
  // five to sixty calls: own_write makes the burst's call and one late look.
  ChangeWatch watch(
      io, path, [] { return Check::own_write; },
      ChangeWatchOptions{
          .first_recheck = 100us, .max_recheck = 1ms, .recheck_window = 20ms});
  ASSERT_TRUE(watch.active()) << watch.inactive_reason();

  other.exec("INSERT INTO t VALUES (1)");
  ASSERT_TRUE(run_until(io, [&] { return watch.callbacks() >= 2; }));
  EXPECT_TRUE(run_until(
      io, [&] { return io.run_one_for(200ms) == 0; }, 5s));
  EXPECT_LE(watch.callbacks(), 3u);  // one commit may come as two bursts
  EXPECT_EQ(watch.confirmed(), 0u);
}

TEST(ChangeWatch, LateLookThatFindsNothingChasesAsAnyOther) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_wal_db(path);
  RawDb other(path);
  other.exec("INSERT INTO t VALUES (0)");
  asio::io_context io;
  // The burst overlaps our writer; the late look finds another process's commit
  // still syncing, and the third look shows it. A watch that ended at the late look
  // would leave it to the loop's fallback poll.
  int calls = 0;
  ChangeWatch watch(
      io, path,
      [&] {
        ++calls;
        if (calls == 1) return Check::own_write;
        return calls >= 3 ? Check::changed : Check::unchanged;
      },
      ChangeWatchOptions{
          .first_recheck = 100us, .max_recheck = 1ms, .recheck_window = 1s});
  ASSERT_TRUE(watch.active()) << watch.inactive_reason();

  other.exec("INSERT INTO t VALUES (1)");
  EXPECT_TRUE(run_until(io, [&] { return watch.confirmed() >= 1; }));
  EXPECT_GE(calls, 3);
}

TEST(ChangeWatch, ThrowingCallbackIsContainedAndTheWatchGoesOn) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_wal_db(path);
  asio::io_context io;
  int calls = 0;
  ChangeWatch watch(io, path, [&]() -> Check {
    ++calls;
    throw std::runtime_error("handler bug");
  });
  ASSERT_TRUE(watch.active()) << watch.inactive_reason();

  RawDb other(path);
  other.exec("INSERT INTO t VALUES (1)");
  EXPECT_TRUE(run_until(io, [&] { return calls >= 1; }));
  const int after_first = calls;
  other.exec("INSERT INTO t VALUES (2)");
  EXPECT_TRUE(run_until(io, [&] { return calls > after_first; }));
  EXPECT_TRUE(watch.active());
}

TEST(ChangeWatch, DestroyedWatchNeverCallsBack) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_wal_db(path);
  asio::io_context io;
  auto calls = std::make_shared<int>(0);
  auto watch = std::make_unique<ChangeWatch>(io, path, [calls] {
    ++*calls;
    return Check::unchanged;
  });
  RawDb other(path);
  other.exec("INSERT INTO t VALUES (1)");  // queued in the inotify descriptor
  watch.reset();
  run_ready(io);
  EXPECT_EQ(*calls, 0);
  EXPECT_EQ(calls.use_count(), 1);  // the callback was released with the watch
}

TEST(ChangeWatch, RemovedDirectoryTurnsItInactive) {
  TempDir dir;
  std::filesystem::create_directory(dir / "sub");
  const auto path = dir / "sub" / "app.db";
  create_wal_db(path);
  asio::io_context io;
  ChangeWatch watch(io, path, [] { return Check::changed; });
  ASSERT_TRUE(watch.active()) << watch.inactive_reason();

  std::filesystem::remove_all(dir / "sub");
  EXPECT_TRUE(run_until(io, [&] { return !watch.active(); }));
  EXPECT_NE(watch.inactive_reason().find("directory"), std::string::npos)
      << watch.inactive_reason();
}

}  // namespace
}  // namespace eventlite
