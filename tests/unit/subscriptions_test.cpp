#include "eventlite/subscriptions.hpp"

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"
#include "test_support.hpp"

// The processor writes subscriptions, deliveries and leases; these tests write them
// with plain SQL in the store's own transaction, as the processor's rows would be.

namespace eventlite {
namespace {

using test::fast_options;
using test::numbered_events;
using test::TempDir;

constexpr const char* kLongAgo = "2000-01-01T00:00:00.000Z";

// Runs `sql` in one transaction of the store and commits it.
void exec(Store& store, const std::string& sql) {
  Transaction transaction = store.transaction();
  transaction.database().exec(sql);
  transaction.commit();
}

// The first column of the first row of `sql`, as text ("" for NULL), read in a
// transaction that is rolled back.
std::string query(Store& store, const std::string& sql) {
  Transaction transaction = store.transaction();
  return transaction.database().execAndGet(sql).getString();
}

// Each row's columns joined by ' ', rows joined by '\n', ordered as `sql` says.
std::string rows(Store& store, const std::string& sql) {
  return query(store,
               "SELECT coalesce(group_concat(line, char(10)), '') FROM (" + sql + ")");
}

std::string position(Store& store, const std::string& name) {
  return query(
      store, "SELECT position FROM eventlite_subscriptions WHERE name = '" + name + "'");
}

std::string deliveries(Store& store) {
  return rows(store,
              "SELECT subscription || ' ' || seq || ' ' || status || ' ' || attempts "
              "AS line FROM eventlite_deliveries ORDER BY subscription, seq");
}

void add_subscription(Store& store, const std::string& name, Seq position) {
  exec(store,
       "INSERT INTO eventlite_subscriptions (name, position, created, updated) "
       "VALUES ('" +
           name + "', " + std::to_string(position) + ", '" + kLongAgo + "', '" +
           kLongAgo + "')");
}

void add_delivery(Store& store, const std::string& subscription, Seq seq,
                  const std::string& status, int attempts = 3,
                  const std::string& last_error = "NULL") {
  exec(store,
       "INSERT INTO eventlite_deliveries (subscription, seq, stream, status, attempts, "
       "next_attempt, last_error, updated) SELECT '" +
           subscription + "', seq, stream, '" + status + "', " +
           std::to_string(attempts) + ", NULL, " + last_error + ", '" + kLongAgo +
           "' FROM eventlite_events WHERE seq = " + std::to_string(seq));
}

void add_lease(Store& store, const std::string& name, const std::string& owner,
               const std::string& expires, std::int64_t token) {
  exec(store, "INSERT INTO eventlite_leases (name, owner, expires, token) VALUES ('" +
                  name + "', '" + owner + "', '" + expires + "', " +
                  std::to_string(token) + ")");
}

// Six events: seq 1..6 alternating between streams a and b, types Created/Updated.
void add_events(Store& store) {
  for (int i = 0; i < 3; ++i) {
    store.append("a", test::event("Created"));
    store.append("b", test::event("Updated"));
  }
}

class Subscriptions : public ::testing::Test {
 protected:
  // Six events; mail at position 4, audit at 6. Each test adds its deliveries.
  void SetUp() override {
    add_events(store_);
    add_subscription(store_, "mail", 4);
    add_subscription(store_, "audit", 6);
  }

  Store store_ = Store::open(":memory:", fast_options());
};

using Status = Subscriptions;
using DeadLetters = Subscriptions;
using Rewind = Subscriptions;

// --- status -------------------------------------------------------------------------

TEST(StatusOfEmptyStore, HasHeadZeroAndNoSubscriptions) {
  Store store = Store::open(":memory:", fast_options());
  StatusReport report = status(store);
  EXPECT_EQ(report.head, 0);
  EXPECT_TRUE(report.subscriptions.empty());
}

TEST(StatusOfEmptyStore, ShowsSubscriptionsWithoutEvents) {
  Store store = Store::open(":memory:", fast_options());
  add_subscription(store, "mail", 0);
  StatusReport report = status(store);
  EXPECT_EQ(report.head, 0);
  ASSERT_EQ(report.subscriptions.size(), 1u);
  EXPECT_EQ(report.subscriptions[0].name, "mail");
  EXPECT_EQ(report.subscriptions[0].lag, 0);
  EXPECT_FALSE(report.subscriptions[0].lease);
}

TEST_F(Status, ReportsEachSubscriptionByNameWithLagCountsAndLease) {
  add_subscription(store_, "zeta", 0);
  add_delivery(store_, "mail", 1, "dead");
  add_delivery(store_, "mail", 2, "retrying");
  add_delivery(store_, "mail", 3, "waiting");
  add_delivery(store_, "mail", 4, "dead");
  add_delivery(store_, "audit", 5, "dead");
  add_lease(store_, "mail", "host:100:a1", "2999-01-01T00:00:00.000Z", 7);
  // A periodic task's lease is not a subscription's.
  add_lease(store_, "every:cleanup", "host:100:a1", "2999-01-01T00:00:00.000Z", 1);

  StatusReport report = status(store_);
  EXPECT_EQ(report.head, 6);
  ASSERT_EQ(report.subscriptions.size(), 3u);

  const SubscriptionStatus& audit = report.subscriptions[0];
  EXPECT_EQ(audit.name, "audit");
  EXPECT_EQ(audit.position, 6);
  EXPECT_EQ(audit.lag, 0);
  EXPECT_EQ(audit.owed, 0u);
  EXPECT_EQ(audit.dead, 1u);
  EXPECT_FALSE(audit.lease);

  const SubscriptionStatus& mail = report.subscriptions[1];
  EXPECT_EQ(mail.name, "mail");
  EXPECT_EQ(mail.position, 4);
  EXPECT_EQ(mail.lag, 2);
  EXPECT_EQ(mail.owed, 2u);  // retrying and waiting
  EXPECT_EQ(mail.dead, 2u);
  ASSERT_TRUE(mail.lease);
  EXPECT_EQ(*mail.lease, (LeaseInfo{"host:100:a1", "2999-01-01T00:00:00.000Z", 7}));

  const SubscriptionStatus& zeta = report.subscriptions[2];
  EXPECT_EQ(zeta.name, "zeta");
  EXPECT_EQ(zeta.position, 0);
  EXPECT_EQ(zeta.lag, 6);
  EXPECT_EQ(zeta.owed, 0u);
  EXPECT_EQ(zeta.dead, 0u);
}

TEST_F(Status, LagIsZeroWhenThePositionIsPastTheHead) {
  add_subscription(store_, "ahead", 10);
  StatusReport report = status(store_);
  ASSERT_EQ(report.subscriptions.size(), 3u);
  EXPECT_EQ(report.subscriptions[0].name, "ahead");
  EXPECT_EQ(report.subscriptions[0].lag, 0);
}

TEST_F(Status, FollowsNewEvents) {
  store_.append("c", numbered_events(3));
  StatusReport report = status(store_);
  EXPECT_EQ(report.head, 9);
  ASSERT_EQ(report.subscriptions.size(), 2u);
  EXPECT_EQ(report.subscriptions[1].lag, 5);
}

// --- dead letters -------------------------------------------------------------------

TEST_F(DeadLetters, ListsOnlyDeadOnesBySubscriptionAndSeqWithTheirEvents) {
  add_delivery(store_, "mail", 4, "dead", 5, "'smtp: connection refused'");
  add_delivery(store_, "mail", 1, "dead", 2);
  add_delivery(store_, "mail", 2, "retrying");
  add_delivery(store_, "mail", 3, "waiting");
  add_delivery(store_, "audit", 5, "dead");

  std::vector<DeadLetter> dead = dead_letters(store_);
  ASSERT_EQ(dead.size(), 3u);
  EXPECT_EQ(dead[0].subscription, "audit");
  EXPECT_EQ(dead[0].seq, 5);
  EXPECT_EQ(dead[1].subscription, "mail");
  EXPECT_EQ(dead[1].seq, 1);
  EXPECT_EQ(dead[1].stream, "a");
  EXPECT_EQ(dead[1].type, "Created");
  EXPECT_EQ(dead[1].attempts, 2);
  EXPECT_EQ(dead[1].last_error, "");
  EXPECT_EQ(dead[1].updated, kLongAgo);
  EXPECT_EQ(dead[2].seq, 4);
  EXPECT_EQ(dead[2].stream, "b");
  EXPECT_EQ(dead[2].type, "Updated");
  EXPECT_EQ(dead[2].attempts, 5);
  EXPECT_EQ(dead[2].last_error, "smtp: connection refused");
}

TEST_F(DeadLetters, FilterBySubscriptionKeepsOnlyItsOwn) {
  add_delivery(store_, "mail", 1, "dead");
  add_delivery(store_, "audit", 2, "dead");
  add_delivery(store_, "audit", 3, "dead");

  std::vector<DeadLetter> audit = dead_letters(store_, "audit");
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[0].seq, 2);
  EXPECT_EQ(audit[1].seq, 3);
  EXPECT_EQ(dead_letters(store_, "mail").size(), 1u);
  EXPECT_TRUE(dead_letters(store_, "absent").empty());
}

TEST_F(DeadLetters, RetryMakesThemDueAgainAndStartsAttemptsOver) {
  add_delivery(store_, "mail", 1, "dead", 5);
  add_delivery(store_, "mail", 2, "dead", 5);
  add_delivery(store_, "mail", 3, "retrying", 2);
  add_delivery(store_, "audit", 1, "dead", 5);

  const std::vector<Seq> seqs = {1, 3, 99};
  EXPECT_EQ(retry_dead_letters(store_, "mail", seqs), 1u);

  EXPECT_EQ(deliveries(store_),
            "audit 1 dead 5\n"
            "mail 1 retrying 0\n"
            "mail 2 dead 5\n"
            "mail 3 retrying 2");
  // No due time: due at once, whatever clock a processor runs on.
  EXPECT_EQ(query(store_,
                  "SELECT next_attempt IS NULL FROM eventlite_deliveries WHERE "
                  "subscription = 'mail' AND seq = 1"),
            "1");
  const std::string updated = query(store_,
                                    "SELECT updated FROM eventlite_deliveries WHERE "
                                    "subscription = 'mail' AND seq = 1");
  EXPECT_TRUE(test::is_utc_millis_time(updated)) << updated;
  EXPECT_GT(updated, kLongAgo);
  EXPECT_EQ(dead_letters(store_, "mail").size(), 1u);
}

TEST_F(DeadLetters, RetryWithoutSeqsRetriesEveryDeadLetterOfTheSubscriptionOnly) {
  add_delivery(store_, "mail", 1, "dead");
  add_delivery(store_, "mail", 2, "dead");
  add_delivery(store_, "mail", 3, "waiting");
  add_delivery(store_, "audit", 1, "dead");

  EXPECT_EQ(retry_dead_letters(store_, "mail"), 2u);
  EXPECT_EQ(deliveries(store_),
            "audit 1 dead 3\n"
            "mail 1 retrying 0\n"
            "mail 2 retrying 0\n"
            "mail 3 waiting 3");
  EXPECT_EQ(retry_dead_letters(store_, "mail"), 0u);
}

TEST_F(DeadLetters, RetryOfUnknownSubscriptionThrowsAndChangesNothing) {
  // Rows of a subscription that has no row of its own: still unknown.
  add_delivery(store_, "ghost", 1, "dead");
  const std::vector<Seq> seqs = {1};
  EXPECT_THROW(retry_dead_letters(store_, "ghost", seqs), InvalidArgument);
  EXPECT_THROW(retry_dead_letters(store_, "ghost"), InvalidArgument);
  EXPECT_THROW(retry_dead_letters(store_, ""), InvalidArgument);
  EXPECT_EQ(deliveries(store_), "ghost 1 dead 3");
}

TEST_F(DeadLetters, DiscardDeletesTheNamedOnesAndKeepsTheirEvents) {
  add_delivery(store_, "mail", 1, "dead");
  add_delivery(store_, "mail", 2, "dead");
  add_delivery(store_, "mail", 3, "retrying");
  add_delivery(store_, "audit", 1, "dead");

  const std::vector<Seq> seqs = {1, 3, 1};
  EXPECT_EQ(discard_dead_letters(store_, "mail", seqs), 1u);
  EXPECT_EQ(deliveries(store_),
            "audit 1 dead 3\n"
            "mail 2 dead 3\n"
            "mail 3 retrying 3");
  EXPECT_EQ(store_.head(), 6);
  EXPECT_EQ(query(store_, "SELECT count(*) FROM eventlite_events"), "6");
}

TEST_F(DeadLetters, DiscardWithoutSeqsDeletesEveryDeadLetterOfTheSubscriptionOnly) {
  add_delivery(store_, "mail", 1, "dead");
  add_delivery(store_, "mail", 2, "dead");
  add_delivery(store_, "mail", 3, "waiting");
  add_delivery(store_, "audit", 1, "dead");

  EXPECT_EQ(discard_dead_letters(store_, "mail"), 2u);
  EXPECT_EQ(deliveries(store_),
            "audit 1 dead 3\n"
            "mail 3 waiting 3");
}

TEST_F(DeadLetters, DiscardOfUnknownSubscriptionThrowsAndChangesNothing) {
  add_delivery(store_, "ghost", 1, "dead");
  EXPECT_THROW(discard_dead_letters(store_, "ghost"), InvalidArgument);
  EXPECT_EQ(deliveries(store_), "ghost 1 dead 3");
}

// --- rewind -------------------------------------------------------------------------

TEST_F(Rewind, MovesThePositionAndDropsDeliveriesAtOrAfterFrom) {
  add_delivery(store_, "mail", 1, "dead");
  add_delivery(store_, "mail", 2, "retrying");
  add_delivery(store_, "mail", 3, "waiting");
  add_delivery(store_, "mail", 4, "dead");
  add_delivery(store_, "audit", 3, "dead");

  rewind(store_, "mail", 3);

  EXPECT_EQ(position(store_, "mail"), "2");
  const std::string updated =
      query(store_, "SELECT updated FROM eventlite_subscriptions WHERE name = 'mail'");
  EXPECT_TRUE(test::is_utc_millis_time(updated)) << updated;
  EXPECT_GT(updated, kLongAgo);
  EXPECT_EQ(deliveries(store_),
            "audit 3 dead 3\n"
            "mail 1 dead 3\n"
            "mail 2 retrying 3");
  EXPECT_EQ(status(store_).subscriptions[1].lag, 4);
  EXPECT_EQ(position(store_, "audit"), "6");
}

TEST_F(Rewind, FromOneStartsOverAndForwardSkipsAhead) {
  add_delivery(store_, "mail", 1, "dead");
  add_delivery(store_, "mail", 2, "retrying");
  rewind(store_, "mail", 1);
  EXPECT_EQ(position(store_, "mail"), "0");
  EXPECT_EQ(deliveries(store_), "");

  rewind(store_, "audit", 100);
  EXPECT_EQ(position(store_, "audit"), "99");
}

TEST_F(Rewind, UnknownSubscriptionOrFromBelowOneThrowsAndChangesNothing) {
  add_delivery(store_, "mail", 4, "dead");
  add_delivery(store_, "ghost", 4, "dead");
  EXPECT_THROW(rewind(store_, "ghost", 1), InvalidArgument);
  EXPECT_THROW(rewind(store_, "mail", 0), InvalidArgument);
  EXPECT_THROW(rewind(store_, "mail", -5), InvalidArgument);
  EXPECT_EQ(query(store_,
                  "SELECT group_concat(name || position, ' ') FROM (SELECT * "
                  "FROM eventlite_subscriptions ORDER BY name)"),
            "audit6 mail4");
  EXPECT_EQ(deliveries(store_),
            "ghost 4 dead 3\n"
            "mail 4 dead 3");
}

// --- another store on the file, a read-only store ------------------------------------

TEST(SubscriptionsOnFile, ChangesAreSeenByAnotherStoreOfTheFile) {
  TempDir dir;
  Store writer = Store::open(dir / "events.db", fast_options());
  Store reader = Store::open(dir / "events.db", {.read_only = true});
  add_events(writer);
  add_subscription(writer, "mail", 6);
  add_delivery(writer, "mail", 5, "dead");
  ASSERT_EQ(status(reader).subscriptions.at(0).dead, 1u);

  EXPECT_EQ(retry_dead_letters(writer, "mail"), 1u);
  EXPECT_EQ(status(reader).subscriptions.at(0).owed, 1u);
  EXPECT_TRUE(dead_letters(reader).empty());
  rewind(writer, "mail", 2);
  EXPECT_EQ(status(reader).subscriptions.at(0).position, 1);
  EXPECT_EQ(status(reader).subscriptions.at(0).owed, 0u);
}

TEST(SubscriptionsOnFile, ReadOnlyStoreReadsButWritesThrowAndLeaveTheFileUnchanged) {
  TempDir dir;
  const auto path = dir / "events.db";
  {
    Store store = Store::open(path, fast_options());
    add_events(store);
    add_subscription(store, "mail", 6);
    add_delivery(store, "mail", 2, "dead");
  }
  test::checkpoint(path);
  const std::string before = test::read_bytes(path);

  {
    Store store = Store::open(path, {.read_only = true});
    EXPECT_EQ(status(store).subscriptions.at(0).dead, 1u);
    EXPECT_EQ(dead_letters(store).size(), 1u);
    const std::vector<Seq> seqs = {2};
    EXPECT_THROW(retry_dead_letters(store, "mail", seqs), InvalidArgument);
    EXPECT_THROW(retry_dead_letters(store, "mail"), InvalidArgument);
    EXPECT_THROW(discard_dead_letters(store, "mail"), InvalidArgument);
    EXPECT_THROW(rewind(store, "mail", 1), InvalidArgument);
  }
  EXPECT_TRUE(test::same_bytes(before, test::read_bytes(path)));
  test::RawDb db(path, SQLITE_OPEN_READONLY);
  EXPECT_EQ(db.query_text("SELECT status || attempts FROM eventlite_deliveries"),
            "dead3");
  EXPECT_EQ(db.query_int("SELECT position FROM eventlite_subscriptions"), 6);
}

}  // namespace
}  // namespace eventlite
