#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"
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
// needs a checkpoint racing another connection's commit): the writer checkpoints in
// FULL mode, which holds the log's write lock when it can get it. The log stays
// bounded all the same.
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
// file at once, for a bounded number of events: the file is sound, no event is lost
// or doubled, the projection counted each one once, the log stayed bounded.
TEST(Checkpoints, ProcessesAppendingProcessingAndCheckpointingKeepTheFileSound) {
  TempDir dir;
  const auto path = dir / "app.db";
  constexpr int kProcesses = 3, kSingles = 600, kBatches = 60, kBatch = 10;
  create_in_child(path);
  const auto project = [](const Context& c) {
    c.transaction().database().exec(
        "CREATE TABLE IF NOT EXISTS counted(seq PRIMARY KEY)");
    SQLite::Statement insert(c.transaction().database(),
                             "INSERT INTO counted(seq) VALUES (?)");
    insert.bind(1, static_cast<std::int64_t>(c.event().seq));
    insert.exec();
  };
  const auto codes = run_processes(kProcesses, [&](int p) {
    try {
      auto store = Store::open(path, fast_options());
      Processor processor(store, {.lease_time = std::chrono::milliseconds(300)});
      processor.subscribe("projection", project, {.transactional = true});
      processor.start();
      for (int i = 0; i < kSingles; ++i) {
        store.append("p" + std::to_string(p) + "-" + std::to_string(i % 7), event("One"));
        if (i % (kSingles / kBatches) == 0)
          store.append("batches-" + std::to_string(p), numbered_events(kBatch));
      }
      processor.stop();
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "process %d: %s\n", p, e.what());
      return 1;
    }
  });
  ASSERT_EQ(codes, std::vector<int>(kProcesses, 0));
  auto store = Store::open(path, fast_options());
  Processor last(store);
  last.subscribe("projection", project, {.transactional = true});
  last.run_until_idle();
  constexpr Seq kTotal = kProcesses * (kSingles + kBatches * kBatch);
  EXPECT_EQ(store.head(), kTotal);
  EXPECT_TRUE(store.verify().empty());
  RawDb raw(path, SQLITE_OPEN_READONLY);
  EXPECT_EQ(raw.query_text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(raw.query_int("SELECT count(*) FROM counted"), kTotal);
  EXPECT_LT(std::filesystem::file_size(dir / "app.db-wal"), std::uintmax_t{8} << 20);
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
    auto store = Store::open(path, fast_options());
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
  }
}

}  // namespace
}  // namespace eventlite
