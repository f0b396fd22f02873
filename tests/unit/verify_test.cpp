#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "eventlite/store.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;
namespace fs = std::filesystem;

// A closed file with events 1..3 of stream "seed", then `edit` run on it by a raw
// connection, as someone editing behind eventlite's back would.
std::vector<std::string> verify_after(const fs::path& path, const std::string& edit) {
  {
    auto store = Store::open(path, fast_options());
    store.append("seed", numbered_events(3));
  }
  {
    RawDb db(path, SQLITE_OPEN_READWRITE);
    db.exec(edit);
  }
  auto store = Store::open(path, fast_options());
  return store.verify();
}

const std::string kInsert =
    "INSERT INTO eventlite_events (seq, id, stream, version, type, data, metadata, time) "
    "VALUES ";

TEST(Verify, HealthyStoreHasNoProblems) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  store.append("a", numbered_events(50));
  store.append("b", numbered_events(5));
  store.append("a", event("More"));
  EXPECT_EQ(store.verify(), std::vector<std::string>{});
}

TEST(Verify, ReportsAGapInSeqs) {
  TempDir dir;
  auto problems = verify_after(
      dir / "app.db",
      kInsert +
          "(10, 'forged-1', 'seed', 4, 'T', '{}', '{}', '2026-01-01T00:00:00.000Z')");
  EXPECT_FALSE(problems.empty());
}

TEST(Verify, ReportsAGapInAStreamsVersions) {
  TempDir dir;
  auto problems = verify_after(
      dir / "app.db",
      kInsert +
          "(4, 'forged-1', 'seed', 6, 'T', '{}', '{}', '2026-01-01T00:00:00.000Z')");
  EXPECT_FALSE(problems.empty());
}

TEST(Verify, ReportsInvalidJson) {
  TempDir dir;
  auto problems = verify_after(
      dir / "app.db",
      "PRAGMA ignore_check_constraints = ON; " + kInsert +
          "(4, 'forged-1', 'seed', 4, 'T', '{broken', '[]', '2026-01-01T00:00:00.000Z')");
  EXPECT_FALSE(problems.empty());
}

TEST(Verify, ReportsADeletedEvent) {
  TempDir dir;
  auto problems = verify_after(dir / "app.db",
                               "DROP TRIGGER eventlite_events_no_delete; "
                               "DELETE FROM eventlite_events WHERE seq = 2;");
  EXPECT_FALSE(problems.empty());
}

}  // namespace
}  // namespace eventlite
