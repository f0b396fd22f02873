// Resource faults and damaged files beyond faults_test.cpp: a disk that fills while
// the processor runs and is freed again, a database or write-ahead log truncated or
// with a bit flipped. Every case ends in a clear error or a sound file whose events
// are a prefix of what was written, and never in a crash.

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <optional>
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
namespace fs = std::filesystem;

// max_page_count on the store's writer (per connection, outliving the transaction).
void set_max_pages(Store& store, std::int64_t pages) {
  auto tx = store.transaction();
  tx.database().exec("PRAGMA max_page_count = " + std::to_string(pages));
  tx.rollback();
}

std::int64_t page_count(Store& store) {
  auto tx = store.transaction();
  const auto pages = tx.database().execAndGet("PRAGMA page_count").getInt64();
  tx.rollback();
  return pages;
}

// The disk fills while a transactional projection runs: appends fail with
// SQLITE_FULL and store nothing, the projection's checkpoint cannot commit and is
// kept; once space is freed, appends and the projection go on, each event once.
TEST(DiskFull, AppendsAndTheProcessorResumeOnceSpaceIsFreed) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  {
    auto tx = store.transaction();
    tx.database().exec("CREATE TABLE projected(seq INTEGER PRIMARY KEY, pad TEXT)");
    tx.commit();
  }
  ProcessorOptions options;
  options.checkpoint_interval = std::chrono::milliseconds(5);
  Processor processor(store, options);
  processor.subscribe(
      "projection",
      [](const Context& c) {
        SQLite::Statement insert(c.transaction().database(),
                                 "INSERT INTO projected(seq, pad) VALUES (?, ?)");
        insert.bind(1, static_cast<std::int64_t>(c.event().seq));
        insert.bind(2, std::string(3000, 'p'));  // the projection needs room too
        insert.exec();
      },
      {.transactional = true});
  processor.start();
  store.append("s", numbered_events(20));
  ASSERT_TRUE(wait_until([&] { return processor.metrics().at(0).position == 20; }));

  set_max_pages(store, page_count(store) + 3);
  Seq acknowledged = 20;
  int full = 0;
  for (int i = 0; i < 200 && full < 5; ++i) {
    try {
      acknowledged = store.append("s", event("Filler", "{\"pad\":\"" +
                                                            std::string(2000, 'f') + "\"}"));
    } catch (const StorageError& e) {
      ASSERT_EQ(e.sqlite_code(), SQLITE_FULL) << e.what();
      EXPECT_NE(std::string(e.what()).find("full"), std::string::npos) << e.what();
      ++full;
    }
  }
  ASSERT_EQ(full, 5) << "the disk never filled";
  EXPECT_EQ(store.head(), acknowledged);
  // The projection cannot keep up while the disk is full.
  ASSERT_TRUE(wait_until([&] { return processor.metrics().at(0).failed > 0; }));

  set_max_pages(store, 1'073'741'823);
  const Seq more = store.append("s", numbered_events(10)).back();
  EXPECT_EQ(more, acknowledged + 10);
  ASSERT_TRUE(wait_until([&] { return processor.metrics().at(0).position == more; }, 20s));
  processor.stop();
  EXPECT_TRUE(store.verify().empty());
  auto tx = store.transaction();
  EXPECT_EQ(tx.database().execAndGet("SELECT count(*) FROM projected").getInt64(), more);
  EXPECT_EQ(tx.database().execAndGet("SELECT max(seq) FROM projected").getInt64(), more);
}

// A file of 2000 events, its last appends still in the write-ahead log (the file is
// copied while the store is open, as a crash would leave it).
struct Crashed {
  TempDir dir;
  fs::path db = dir / "app.db";
  fs::path wal = dir / "app.db-wal";
  std::vector<Event> written;

  Crashed() {
    auto store = Store::open(dir / "source.db", fast_options());
    for (int i = 0; i < 20; ++i) store.append("s-" + std::to_string(i % 3), numbered_events(50));
    checkpoint(dir / "source.db");  // the first 1000 events into the main file
    for (int i = 0; i < 20; ++i) store.append("s-" + std::to_string(i % 3), numbered_events(50));
    written = store.read_all().to_vector();
    fs::copy_file(dir / "source.db", db);
    fs::copy_file(dir / "source.db-wal", wal);
  }
};

// Whatever is left opens with a clear error or holds a prefix of what was written,
// unchanged, and verify passes; never a crash. Returns how many events are left.
std::size_t expect_clear_error_or_a_sound_prefix(const Crashed& c,
                                                 bool damage_in_main_file) {
  std::optional<Store> store;
  try {
    store.emplace(Store::open(c.db, fast_options()));
  } catch (const Error& e) {  // StorageError or NotAnEventliteDatabase
    EXPECT_TRUE(damage_in_main_file) << "a damaged log refused the file: " << e.what();
    return 0;
  }
  std::vector<std::string> problems;
  try {
    problems = store->verify();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "verify threw instead of reporting: " << e.what();
    return 0;
  }
  if (damage_in_main_file) {
    EXPECT_FALSE(problems.empty()) << "verify found nothing in a damaged file";
    return 0;
  }
  EXPECT_TRUE(problems.empty()) << problems.front();
  const auto events = store->read_all().to_vector();
  EXPECT_LE(events.size(), c.written.size());
  EXPECT_GE(events.size(), 1000u) << "the main file's events are all there";
  for (std::size_t i = 0; i < std::min(events.size(), c.written.size()); ++i) {
    EXPECT_EQ(events[i].id, c.written[i].id) << "seq " << events[i].seq;
    EXPECT_EQ(events[i].data, c.written[i].data) << "seq " << events[i].seq;
  }
  // And it takes appends again, gap-free.
  EXPECT_EQ(store->append("after", event("After")), static_cast<Seq>(events.size()) + 1);
  return events.size();
}

// A log cut anywhere: SQLite keeps the commits whose frames are whole and checksum,
// so the store holds a prefix of what was written.
TEST(DamagedLog, TruncatedLogLeavesAPrefixOfTheEvents) {
  for (const double fraction : {0.0, 0.1, 0.37, 0.5, 0.83, 0.999}) {
    SCOPED_TRACE(fraction);
    Crashed c;
    const auto size = fs::file_size(c.wal);
    fs::resize_file(c.wal, static_cast<std::uintmax_t>(static_cast<double>(size) * fraction));
    const auto left = expect_clear_error_or_a_sound_prefix(c, false);
    if (fraction < 0.9) {
      EXPECT_LT(left, c.written.size()) << "the cut dropped nothing";
    }
  }
}

// A bit flipped in a frame: its checksum fails, and SQLite drops that frame's commit
// and every later one.
TEST(DamagedLog, BitFlippedLogLeavesAPrefixOfTheEvents) {
  for (const double fraction : {0.05, 0.3, 0.6, 0.95}) {
    SCOPED_TRACE(fraction);
    Crashed c;
    const auto at = static_cast<std::uint64_t>(static_cast<double>(fs::file_size(c.wal)) *
                                               fraction);
    std::string byte = read_bytes(c.wal).substr(at, 1);
    byte[0] = static_cast<char>(byte[0] ^ 0x10);
    overwrite_bytes(c.wal, at, byte);
    EXPECT_LT(expect_clear_error_or_a_sound_prefix(c, false), c.written.size())
        << "the flip dropped nothing";
  }
}

// The main file cut short: a clear error at open, or verify names the damage.
TEST(DamagedFile, TruncatedDatabaseIsAClearErrorOrNamedByVerify) {
  for (const double fraction : {0.0, 0.02, 0.5, 0.9}) {
    SCOPED_TRACE(fraction);
    Crashed c;
    fs::remove(c.wal);
    const auto size = fs::file_size(c.db);
    fs::resize_file(c.db, static_cast<std::uintmax_t>(static_cast<double>(size) * fraction));
    if (fraction == 0.0) {
      // An empty file is a new database to SQLite: eventlite sets it up afresh.
      auto store = Store::open(c.db, fast_options());
      EXPECT_EQ(store.head(), 0);
      continue;
    }
    expect_clear_error_or_a_sound_prefix(c, true);
  }
}

// A bit flipped in the first byte of pages (their b-tree page type, or an overflow
// page's link): a clear error or verify names the damage. (A flip inside a record's
// bytes is beyond any check: SQLite keeps no page checksums. verify still finds one
// that breaks an event's JSON.)
TEST(DamagedFile, BitFlippedPagesAreAClearErrorOrNamedByVerify) {
  for (const double fraction : {0.1, 0.4, 0.7}) {
    SCOPED_TRACE(fraction);
    Crashed c;
    fs::remove(c.wal);
    std::int64_t page_size = 0, pages = 0;
    {
      RawDb raw(c.db, SQLITE_OPEN_READONLY);
      page_size = raw.query_int("PRAGMA page_size");
      pages = raw.query_int("PRAGMA page_count");
    }
    const auto first = static_cast<std::int64_t>(static_cast<double>(pages) * fraction);
    for (std::int64_t page = std::max<std::int64_t>(first, 2); page < first + 4 && page <= pages;
         ++page) {
      const auto at = static_cast<std::uint64_t>((page - 1) * page_size);
      std::string byte = read_bytes(c.db).substr(at, 1);
      byte[0] = static_cast<char>(byte[0] ^ 0x5A);
      overwrite_bytes(c.db, at, byte);
    }
    expect_clear_error_or_a_sound_prefix(c, true);
  }
}

}  // namespace
}  // namespace eventlite
