// Looking at and steering subscriptions from outside a processor (subscriptions.hpp):
// the reads behind `eventlite status` and `dead list`, and the writes behind `dead
// retry|discard` and `rewind`.
//
// Reads run on a reader connection as one statement each, so a report is one
// snapshot: the head, positions, counts and leases are read in the same transaction.
// Writes run in one write transaction (BEGIN IMMEDIATE on the store's connection), so
// a processor of another process sees them whole or not at all; each first checks
// that the subscription exists, inside that transaction, and throws InvalidArgument
// (rolling back) if it does not.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>

#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "eventlite/transaction.hpp"
#include "store/clock.hpp"
#include "store/reader.hpp"
#include "store/sqlite_util.hpp"
#include "store/store_impl.hpp"

namespace eventlite {
namespace {

// One row per subscription, by name; with no subscription, one row whose name is
// NULL, which still carries the head.
constexpr const char* kStatusSql =
    "SELECT h.head, s.name, s.position, "
    "(SELECT count(*) FROM eventlite_deliveries AS d "
    " WHERE d.subscription = s.name AND d.status != 'dead'), "
    "(SELECT count(*) FROM eventlite_deliveries AS d "
    " WHERE d.subscription = s.name AND d.status = 'dead'), "
    "l.owner, l.expires, l.token "
    "FROM (SELECT coalesce(max(seq), 0) AS head FROM eventlite_events) AS h "
    "LEFT JOIN eventlite_subscriptions AS s ON 1 "
    "LEFT JOIN eventlite_leases AS l ON l.name = s.name "
    "ORDER BY s.name";

// A LEFT JOIN, so a dead letter is listed (with the stream its row names) even if its
// event is missing: status() counts it, so the list must show it.
constexpr const char* kDeadLettersSql =
    "SELECT d.subscription, d.seq, coalesce(e.stream, d.stream), coalesce(e.type, ''), "
    "d.attempts, coalesce(d.last_error, ''), d.updated "
    "FROM eventlite_deliveries AS d LEFT JOIN eventlite_events AS e ON e.seq = d.seq "
    "WHERE d.status = 'dead' AND (?1 = '' OR d.subscription = ?1) "
    "ORDER BY d.subscription, d.seq";

// The store's write transaction, after the checks every write makes: a writable
// store and an existing subscription. Throws InvalidArgument otherwise.
Transaction begin_for(Store& store, std::string_view subscription, const char* what) {
  detail::StoreAccess::impl(store)->require_writer(what);
  Transaction transaction = store.transaction();
  try {
    SQLite::Statement exists(transaction.database(),
                             "SELECT 1 FROM eventlite_subscriptions WHERE name = ?");
    exists.bind(1, std::string(subscription));
    if (!exists.executeStep())
      throw InvalidArgument(
          fmt::format("{}: unknown subscription \"{}\"", what, subscription));
  } catch (const SQLite::Exception& e) {
    detail::rethrow_storage(e, what);
  }
  return transaction;
}

// Changes the dead letters of `subscription` named by `seqs` (all of them when it is
// empty) with `sql`, whose binds are ?1 the subscription, ?2 the time now and ?3 one
// seq or NULL for all; commits and returns how many rows changed.
std::size_t change_dead_letters(Store& store, std::string_view subscription,
                                std::span<const Seq> seqs, const char* what,
                                const char* sql) {
  Transaction transaction = begin_for(store, subscription, what);
  const std::string name(subscription);
  const std::string now = detail::now_text();
  std::size_t changed = 0;
  try {
    SQLite::Statement change(transaction.database(), sql);
    auto run = [&](const std::optional<Seq>& seq) {
      change.reset();
      change.bind(1, name);
      change.bind(2, now);
      if (seq)
        change.bind(3, static_cast<std::int64_t>(*seq));
      else
        change.bind(3);
      changed += static_cast<std::size_t>(change.exec());
    };
    if (seqs.empty()) run(std::nullopt);
    // A seq named twice counts once: the second run finds no dead letter there.
    for (Seq seq : seqs) run(seq);
  } catch (const SQLite::Exception& e) {
    detail::rethrow_storage(e, what);
  }
  transaction.commit();
  return changed;
}

}  // namespace

StatusReport status(const Store& store) {
  auto conn = detail::StoreAccess::impl(store)->readers->acquire();
  detail::Stmt& s = conn->statement(kStatusSql);
  detail::StmtScope scope(s);
  StatusReport report;
  while (s.step("read status")) {
    report.head = s.column_int(0);
    if (s.column_null(1)) continue;  // no subscription: the head alone
    SubscriptionStatus sub;
    s.column_text(1, sub.name);
    sub.position = s.column_int(2);
    // A rewind past the head leaves the position above it: nothing is owed.
    sub.lag = std::max<Seq>(0, report.head - sub.position);
    sub.retrying = static_cast<std::uint64_t>(s.column_int(3));
    sub.dead = static_cast<std::uint64_t>(s.column_int(4));
    if (!s.column_null(5)) {
      LeaseInfo lease;
      s.column_text(5, lease.owner);
      s.column_text(6, lease.expires);
      lease.token = s.column_int(7);
      sub.lease = std::move(lease);
    }
    report.subscriptions.push_back(std::move(sub));
  }
  return report;
}

std::vector<DeadLetter> dead_letters(const Store& store, std::string_view subscription) {
  auto conn = detail::StoreAccess::impl(store)->readers->acquire();
  detail::Stmt& s = conn->statement(kDeadLettersSql);
  detail::StmtScope scope(s);
  s.bind(1, subscription);
  std::vector<DeadLetter> out;
  while (s.step("read dead letters")) {
    DeadLetter d;
    s.column_text(0, d.subscription);
    d.seq = s.column_int(1);
    s.column_text(2, d.stream);
    s.column_text(3, d.type);
    d.attempts = s.column_int(4);
    s.column_text(5, d.last_error);
    s.column_text(6, d.updated);
    out.push_back(std::move(d));
  }
  return out;
}

std::size_t retry_dead_letters(Store& store, std::string_view subscription,
                               std::span<const Seq> seqs) {
  // No due time: due at once on whatever clock the processor runs (a test's
  // ManualClock included).
  return change_dead_letters(
      store, subscription, seqs, "retry dead letters",
      "UPDATE eventlite_deliveries "
      "SET status = 'retrying', attempts = 0, next_attempt = NULL, updated = ?2 "
      "WHERE subscription = ?1 AND status = 'dead' AND (?3 IS NULL OR seq = ?3)");
}

std::size_t discard_dead_letters(Store& store, std::string_view subscription,
                                 std::span<const Seq> seqs) {
  // ?2 (the time) is bound and unused: ?3 makes room for it.
  return change_dead_letters(
      store, subscription, seqs, "discard dead letters",
      "DELETE FROM eventlite_deliveries "
      "WHERE subscription = ?1 AND status = 'dead' AND (?3 IS NULL OR seq = ?3)");
}

void rewind(Store& store, std::string_view subscription, Seq from) {
  if (from < 1)
    throw InvalidArgument(
        fmt::format("rewind: from must be a seq of 1 or more, not {}", from));
  Transaction transaction = begin_for(store, subscription, "rewind");
  const std::string name(subscription);
  try {
    SQLite::Database& db = transaction.database();
    SQLite::Statement move(
        db,
        "UPDATE eventlite_subscriptions SET position = ?2, updated = ?3 "
        "WHERE name = ?1");
    move.bind(1, name);
    move.bind(2, static_cast<std::int64_t>(from - 1));
    move.bind(3, detail::now_text());
    move.exec();
    // Owed or dead at or after `from`: the log delivers them again from there.
    SQLite::Statement drop(
        db, "DELETE FROM eventlite_deliveries WHERE subscription = ?1 AND seq >= ?2");
    drop.bind(1, name);
    drop.bind(2, static_cast<std::int64_t>(from));
    drop.exec();
    // Take the subscription from whoever dispatches it: a new token fences the work
    // it has not committed yet, even when the position ends where it was, and the
    // lease ends now, so it (or another process) picks the subscription up again at
    // once from the new position.
    SQLite::Statement release(
        db,
        "UPDATE eventlite_leases SET token = token + 1, expires = ?2 WHERE name = ?1");
    release.bind(1, name);
    // Long past on any clock (a processor on a test's ManualClock included).
    release.bind(2, detail::format_time(std::chrono::system_clock::time_point{}));
    release.exec();
  } catch (const SQLite::Exception& e) {
    detail::rethrow_storage(e, "rewind");
  }
  transaction.commit();
}

}  // namespace eventlite
