#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"
#include "store/store_impl.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

// `n` processes forked before the parent opens any Store, released together by
// closing a pipe; returns their exit codes.
template <class Body>
std::vector<int> run_processes(int n, Body body) {
  int go[2];
  if (::pipe(go) != 0) throw std::runtime_error("pipe");
  std::vector<pid_t> children;
  for (int p = 0; p < n; ++p) {
    children.push_back(spawn_child([&, p] {
      ::close(go[1]);
      char byte;
      (void)::read(go[0], &byte, 1);  // returns 0 once the parent closes its end
      ::close(go[0]);
      return body(p);
    }));
  }
  ::close(go[0]);
  ::close(go[1]);
  std::vector<int> codes;
  for (pid_t child : children)
    codes.push_back(wait_child(child, std::chrono::seconds(60)));
  return codes;
}

// Creates the store file in a short-lived child, so that the parent never opens a
// Store before it forks the appenders.
void create_in_child(const std::filesystem::path& path) {
  ASSERT_EQ(run_in_child([&] {
              auto store = Store::open(path, fast_options());
              return store.schema_version() == supported_schema_version() ? 0 : 1;
            }),
            0);
}

// A transactional projection: one row per event in table `counted`, whose primary
// key refuses a second delivery.
void project(const Context& c) {
  c.transaction().database().exec("CREATE TABLE IF NOT EXISTS counted(seq PRIMARY KEY)");
  SQLite::Statement insert(c.transaction().database(), "INSERT INTO counted(seq) VALUES (?)");
  insert.bind(1, static_cast<std::int64_t>(c.event().seq));
  insert.exec();
}

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

std::vector<Version> versions_of(const std::vector<Event>& events) {
  std::vector<Version> out;
  for (const auto& e : events) out.push_back(e.version);
  return out;
}

TEST(MultiProcess, ConcurrentAppendersLoseNothingAndKeepSeqsGapFree) {
  TempDir dir;
  const auto path = dir / "app.db";
  constexpr int kEach = 300;
  create_in_child(path);
  const auto codes = run_processes(2, [&](int p) {
    try {
      auto store = Store::open(path, fast_options());
      for (int i = 0; i < kEach; ++i) {
        const std::string data =
            "{\"p\":" + std::to_string(p) + ",\"i\":" + std::to_string(i) + "}";
        store.append("shared-" + std::to_string(i % 3), event("Step", data));
      }
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "process %d: %s\n", p, e.what());
      return 1;
    }
  });
  ASSERT_EQ(codes, (std::vector<int>{0, 0}));

  auto store = Store::open(path, fast_options());
  auto events = store.read_all().to_vector();
  ASSERT_EQ(events.size(), static_cast<std::size_t>(2 * kEach));
  std::map<int, std::vector<int>> order;  // process -> its i's in seq order
  for (std::size_t k = 0; k < events.size(); ++k) {
    ASSERT_EQ(events[k].seq, static_cast<Seq>(k + 1));
    const auto data = nlohmann::json::parse(events[k].data);
    order[data["p"].get<int>()].push_back(data["i"].get<int>());
  }
  for (int p = 0; p < 2; ++p) {
    ASSERT_EQ(order[p].size(), static_cast<std::size_t>(kEach)) << "process " << p;
    for (int i = 0; i < kEach; ++i) ASSERT_EQ(order[p][static_cast<std::size_t>(i)], i);
  }
  for (int s = 0; s < 3; ++s) {
    auto stream = store.read_stream("shared-" + std::to_string(s)).to_vector();
    std::vector<Version> expected;
    for (std::size_t v = 1; v <= stream.size(); ++v)
      expected.push_back(static_cast<Version>(v));
    EXPECT_EQ(versions_of(stream), expected);
  }
  EXPECT_TRUE(store.verify().empty());
}

TEST(MultiProcess, ExpectedVersionHoldsAcrossProcesses) {
  TempDir dir;
  const auto path = dir / "app.db";
  constexpr int kEach = 100;
  create_in_child(path);
  const auto codes = run_processes(2, [&](int p) {
    try {
      auto store = Store::open(path, fast_options());
      int done = 0;
      while (done < kEach) {
        const Version v = store.stream_version("counter");
        try {
          store.append("counter",
                       event("Incremented", "{\"p\":" + std::to_string(p) + "}"),
                       Expected::exactly(v));
          ++done;
        } catch (const VersionConflict&) {
          // The other process moved the stream: read again and retry.
        }
      }
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "process %d: %s\n", p, e.what());
      return 1;
    }
  });
  ASSERT_EQ(codes, (std::vector<int>{0, 0}));

  auto store = Store::open(path, fast_options());
  auto events = store.read_stream("counter").to_vector();
  ASSERT_EQ(events.size(), static_cast<std::size_t>(2 * kEach));
  std::map<int, int> per_process;
  for (std::size_t k = 0; k < events.size(); ++k) {
    EXPECT_EQ(events[k].version, static_cast<Version>(k + 1));
    ++per_process[nlohmann::json::parse(events[k].data)["p"].get<int>()];
  }
  EXPECT_EQ(per_process, (std::map<int, int>{{0, kEach}, {1, kEach}}));
  EXPECT_TRUE(store.verify().empty());
}

TEST(MultiProcess, ConcurrentFirstOpenOfANewFileSucceedsInEveryProcess) {
  constexpr int kRounds = 20;
  constexpr int kProcesses = 4;
  for (int round = 0; round < kRounds; ++round) {
    TempDir dir;
    const auto path = dir / "app.db";
    const auto codes = run_processes(kProcesses, [&](int p) {
      try {
        auto store = Store::open(path, fast_options());  // all create it at once
        store.append("opened", event("Opened", "{\"p\":" + std::to_string(p) + "}"));
        return 0;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "round %d process %d: %s\n", round, p, e.what());
        return 1;
      }
    });
    ASSERT_EQ(codes, std::vector<int>(kProcesses, 0)) << "round " << round;
    RawDb db(path, SQLITE_OPEN_READONLY);
    EXPECT_EQ(db.query_int("SELECT count(*) FROM eventlite_schema"), 1);
    EXPECT_EQ(db.query_int("SELECT count(*) FROM eventlite_events"), kProcesses);
    EXPECT_EQ(db.query_text("PRAGMA journal_mode"), "wal");
  }
}

// The store's own connections never checkpoint passively (SQLite's WAL-reset bug
// needs a checkpoint racing another connection's commit): the writer checkpoints
// while it holds the log's write lock itself. The log stays bounded all the same.
TEST(Checkpoints, NoPassiveAutoCheckpointAndTheLogStaysBounded) {
  TempDir dir;
  const auto path = dir / "app.db";
  auto store = Store::open(path, fast_options());
  {
    auto t = store.transaction();
    EXPECT_EQ(t.database().execAndGet("PRAGMA wal_autocheckpoint").getInt(), 0);
  }
  // About three log frames a commit: 60,000 frames with no checkpoint at all.
  for (int i = 0; i < 20'000; ++i)
    store.append("s-" + std::to_string(i % 50), event("E"));
  const auto wal = std::filesystem::file_size(dir / "app.db-wal");
  EXPECT_LT(wal, std::uintmax_t{8} << 20) << "bytes in the log";
  RawDb raw(path, SQLITE_OPEN_READONLY);
  EXPECT_EQ(raw.query_text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(raw.query_int("SELECT count(*) FROM eventlite_events"), 20'000);
}

// Several processes appending (single events and batches), processing (one
// transactional projection whose lease moves between them) and checkpointing on one
// file at once, for a bounded time: the file is sound, no event is lost or doubled,
// the projection counted each one once, the log stayed bounded.
TEST(Checkpoints, ProcessesAppendingProcessingAndCheckpointingKeepTheFileSound) {
  TempDir dir;
  const auto path = dir / "app.db";
  constexpr int kProcesses = 3, kBatch = 10;
  constexpr auto kRunFor = std::chrono::seconds(3);
  create_in_child(path);
  const auto appended_file = [&](int p) { return dir / ("appended-" + std::to_string(p)); };
  const auto codes = run_processes(kProcesses, [&](int p) {
    try {
      auto store = Store::open(path, fast_options());
      Processor processor(store, {.lease_time = std::chrono::milliseconds(300)});
      processor.subscribe("projection", project, {.transactional = true});
      processor.start();
      std::int64_t appended = 0;
      const auto until = std::chrono::steady_clock::now() + kRunFor;
      for (int i = 0; std::chrono::steady_clock::now() < until; ++i) {
        store.append("p" + std::to_string(p) + "-" + std::to_string(i % 7), event("One"));
        ++appended;
        if (i % 10 == 0) {
          store.append("batches-" + std::to_string(p), numbered_events(kBatch));
          appended += kBatch;
        }
      }
      processor.stop();
      write_bytes(appended_file(p), std::to_string(appended));
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "process %d: %s\n", p, e.what());
      return 1;
    }
  });
  ASSERT_EQ(codes, std::vector<int>(kProcesses, 0));
  Seq total = 0;
  for (int p = 0; p < kProcesses; ++p) total += std::stoll(read_bytes(appended_file(p)));
  auto store = Store::open(path, fast_options());
  Processor last(store);
  last.subscribe("projection", project, {.transactional = true});
  last.run_until_idle();
  EXPECT_GT(total, 3000) << "too few appends to have checkpointed";
  EXPECT_EQ(store.head(), total);
  EXPECT_TRUE(store.verify().empty());
  RawDb raw(path, SQLITE_OPEN_READONLY);
  EXPECT_EQ(raw.query_text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(raw.query_int("SELECT count(*) FROM counted"), total);
  EXPECT_EQ(raw.query_int("SELECT count(DISTINCT seq) FROM counted"), total);
  EXPECT_LT(std::filesystem::file_size(dir / "app.db-wal"), std::uintmax_t{8} << 20);
}

// SQLITE_BUSY under contention: 4 processes of 4 threads each append (single events
// and batches) and process (a transactional projection and an at-least-once handler,
// their leases moving between the processes) on one file for a bounded time. No
// caller sees an error short of the busy timeout, nothing is lost, the projection
// counts each event once.
TEST(Contention, FourProcessesOfFourThreadsLoseNothingAndSeeNoErrors) {
  TempDir dir;
  const auto path = dir / "app.db";
  constexpr int kProcesses = 4, kThreads = 4;
  constexpr auto kRunFor = std::chrono::seconds(3);
  create_in_child(path);
  const auto appended_file = [&](int p) { return dir / ("appended-" + std::to_string(p)); };
  const auto codes = run_processes(kProcesses, [&](int p) {
    try {
      auto store = Store::open(path, fast_options());
      Processor processor(store, {.lease_time = std::chrono::milliseconds(500)});
      processor.subscribe("projection", project, {.transactional = true});
      std::atomic<std::int64_t> handled{0};
      processor.subscribe("at-least-once", [&](const Context&) { ++handled; });
      processor.start();
      std::atomic<std::int64_t> appended{0}, errors{0};
      const auto until = std::chrono::steady_clock::now() + kRunFor;
      std::vector<std::thread> threads;
      for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
          const std::string stream = "p" + std::to_string(p) + "t" + std::to_string(t);
          for (int i = 0; std::chrono::steady_clock::now() < until; ++i) {
            try {
              if (i % 5 == 0) {
                store.append(stream + "-batch", numbered_events(5));
                appended += 5;
              } else {
                store.append(stream, event("One"));
                ++appended;
              }
            } catch (const std::exception& e) {
              std::fprintf(stderr, "process %d thread %d: %s\n", p, t, e.what());
              ++errors;
            }
          }
        });
      for (auto& t : threads) t.join();
      processor.stop();
      write_bytes(appended_file(p), std::to_string(appended.load()));
      return errors.load() == 0 ? 0 : 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "process %d: %s\n", p, e.what());
      return 2;
    }
  });
  ASSERT_EQ(codes, std::vector<int>(kProcesses, 0)) << "callers saw errors";
  Seq total = 0;
  for (int p = 0; p < kProcesses; ++p) total += std::stoll(read_bytes(appended_file(p)));
  auto store = Store::open(path, fast_options());
  Processor last(store);
  last.subscribe("projection", project, {.transactional = true});
  last.subscribe("at-least-once", [](const Context&) {});
  last.run_until_idle();
  EXPECT_GT(total, 1000);
  EXPECT_EQ(store.head(), total);
  EXPECT_TRUE(store.verify().empty());
  RawDb raw(path, SQLITE_OPEN_READONLY);
  EXPECT_EQ(raw.query_text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(raw.query_int("SELECT count(*) FROM counted"), total);
  EXPECT_EQ(raw.query_int("SELECT min(position) FROM eventlite_subscriptions"), total);
}

// What SQLite's write-ahead-log index says: frames in the log, frames copied back.
struct LogIndex {
  std::uint32_t frames = 0, backfilled = 0;
};
LogIndex read_log_index(const std::filesystem::path& shm) {
  // Two copies of the 48-byte index header (mxFrame at offset 16), then the
  // checkpoint information (nBackfill first), in the machine's byte order.
  const std::string bytes = read_bytes(shm);
  if (bytes.size() < 100) throw std::runtime_error("short -shm file");
  LogIndex index;
  std::memcpy(&index.frames, bytes.data() + 16, 4);
  std::memcpy(&index.backfilled, bytes.data() + 96, 4);
  return index;
}

// The interleaving behind SQLite's WAL-reset bug is a checkpoint running while
// another connection holds the write lock (and may commit). SQLite lets a FULL
// checkpoint that cannot get that lock run passively beside its holder; the
// writer's checkpoint takes the lock first, so it does not run at all while another
// connection holds it, and runs in full once the lock is free.
TEST(Checkpoints, NoCheckpointRunsWhileAnotherConnectionHoldsTheWriteLock) {
  TempDir dir;
  const auto path = dir / "app.db";
  auto store = Store::open(path, fast_options());
  for (int i = 0; i < 50; ++i) store.append("s", event("E"));  // under the threshold
  auto& checkpointer = *detail::StoreAccess::impl(store)->checkpointer;
  const auto before = read_log_index(dir / "app.db-shm");
  ASSERT_GT(before.frames, 0u);
  ASSERT_EQ(before.backfilled, 0u);

  RawDb holder(path);
  holder.exec("BEGIN IMMEDIATE");
  EXPECT_EQ(checkpointer.checkpoint(), detail::WalCheckpointer::Outcome::busy);
  EXPECT_EQ(read_log_index(dir / "app.db-shm").backfilled, 0u);

  // SQLite's own FULL checkpoint, from a third connection, meanwhile: it reports
  // BUSY yet has copied frames back beside the lock's holder.
  RawDb third(path);
  sqlite3_busy_timeout(third.get(), 50);
  third.query_int("SELECT count(*) FROM sqlite_schema");  // it knows the log once it read
  EXPECT_EQ(sqlite3_wal_checkpoint_v2(third.get(), "main", SQLITE_CHECKPOINT_FULL, nullptr,
                                      nullptr),
            SQLITE_BUSY);
  EXPECT_GT(read_log_index(dir / "app.db-shm").backfilled, 0u);
  holder.exec("ROLLBACK");

  // The next commit restarted the fully copied log: frames to copy again.
  for (int i = 0; i < 50; ++i) store.append("s", event("E"));
  ASSERT_LT(read_log_index(dir / "app.db-shm").backfilled,
            read_log_index(dir / "app.db-shm").frames);
  EXPECT_EQ(checkpointer.checkpoint(), detail::WalCheckpointer::Outcome::done);
  const auto after = read_log_index(dir / "app.db-shm");
  EXPECT_EQ(after.backfilled, after.frames);
  EXPECT_EQ(store.head(), 100);
}

// append_in() puts its hook on the application's connection, which replaces that
// connection's automatic checkpoint: the hook keeps what the connection had set,
// SQLite's passive checkpoint every 1000 frames by default, none after
// wal_autocheckpoint=0 (as verify advises: the store's writer checkpoints safely).
TEST(Checkpoints, AppendInKeepsTheApplicationConnectionsOwnCheckpointSetting) {
  for (const bool disabled : {false, true}) {
    SCOPED_TRACE(disabled ? "wal_autocheckpoint=0" : "default");
    TempDir dir;
    const auto path = dir / "app.db";
    std::ostringstream log;
    auto options = fast_options();
    options.logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_st>(log));
    auto store = Store::open(path, options);
    RawDb app(path);
    app.exec("PRAGMA synchronous=NORMAL");
    if (disabled) app.exec("PRAGMA wal_autocheckpoint=0");
    for (int i = 0; i < 5'000; ++i) {
      app.exec("BEGIN IMMEDIATE");
      store.append_in(app.get(), "s", std::vector<NewEvent>{event("E")});
      app.exec("COMMIT");
    }
    const auto wal = std::filesystem::file_size(dir / "app.db-wal");
    if (disabled)
      EXPECT_GT(wal, std::uintmax_t{8} << 20) << "the application's choice was kept";
    else
      EXPECT_LT(wal, std::uintmax_t{8} << 20) << "checkpointed as SQLite would have";
    // Told once, on an affected SQLite, when the connection checkpoints passively.
    const bool affected = sqlite3_libversion_number() < 3051003;
    const auto warnings = count_of(log.str(), "wal_autocheckpoint=0");
    EXPECT_EQ(warnings, affected && !disabled ? 1u : 0u) << log.str();
  }
}

}  // namespace
}  // namespace eventlite
