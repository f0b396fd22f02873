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
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "eventlite/transaction.hpp"
#include "processor/queries.hpp"
#include "store/clock.hpp"
#include "store/reader.hpp"
#include "store/schema.hpp"
#include "store/sqlite_util.hpp"
#include "store/store_impl.hpp"

namespace eventlite {
namespace {

// One row per subscription, by name; with no subscription, one row whose name is
// NULL, which still carries the head. A held stream is one whose dead letter has a
// waiting delivery behind it (eventlite_held_streams); the oldest undelivered event
// is the first past the position or the oldest owed one (min() of two values is NULL
// when either is, so coalesce picks the one there is). From schema version 4, each
// sink's health row, and the standbys whose rows have not expired by ?1 (now) as a
// JSON array; before it, NULLs and an empty array in their place.
std::string status_sql(bool v4) {
  const std::string sinks =
      v4 ? "k.owner, k.failing_since, k.last_error, k.forwarded, k.failed, "
           "k.round_trip_p50_us, k.round_trip_p99_us, k.updated, "
           "(SELECT json_group_array(json_object('owner', w.owner, 'since', w.since)) "
           " FROM eventlite_standbys AS w WHERE w.name = s.name AND w.expires > ?1) "
         : "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '[]' ";
  return "SELECT h.head, s.name, s.position, "
         "(SELECT count(*) FROM eventlite_deliveries AS d "
         " WHERE d.subscription = s.name AND " EVENTLITE_OWED("d.") "), "
         "(SELECT count(*) FROM eventlite_deliveries AS d "
         " WHERE d.subscription = s.name AND d.status = 'dead'), "
         "l.owner, l.expires, l.token, "
         "(SELECT count(*) FROM eventlite_held_streams AS x WHERE x.subscription = "
         "s.name), "
         "coalesce(min(o.n, o.o), o.n, o.o), " +
         sinks +
         "FROM (SELECT coalesce(max(seq), 0) AS head FROM eventlite_events) AS h "
         "LEFT JOIN eventlite_subscriptions AS s ON 1 "
         "LEFT JOIN eventlite_leases AS l ON l.name = s.name " +
         (v4 ? "LEFT JOIN eventlite_sink_health AS k ON k.subscription = s.name " : "") +
         "LEFT JOIN (SELECT s2.name AS name, "
         "  (SELECT e.time FROM eventlite_events AS e WHERE e.seq = s2.position + 1) AS "
         "n, "
         "  (SELECT min(e.time) FROM eventlite_deliveries AS d "
         "   JOIN eventlite_events AS e ON e.seq = d.seq "
         "   WHERE d.subscription = s2.name AND " EVENTLITE_OWED("d.") ") AS o "
         "  FROM eventlite_subscriptions AS s2) AS o ON o.name = s.name "
         "ORDER BY s.name";
}

// Bridges by name, with their leases ("bridge:<name>").
constexpr const char* kBridgesSql =
    "SELECT b.name, b.broker, b.source, b.last_entry, b.stored, b.rejected, b.updated, "
    "l.owner, l.expires, l.token "
    "FROM eventlite_bridges AS b LEFT JOIN eventlite_leases AS l "
    "ON l.name = 'bridge:' || b.name ORDER BY b.name";

constexpr const char* kRebuildsSql =
    "SELECT r.subscription, r.from_seq, r.position, r.started, r.updated, "
    "l.owner, l.expires, l.token "
    "FROM eventlite_rebuilds AS r LEFT JOIN eventlite_leases AS l "
    "ON l.name = 'rebuild:' || r.subscription ORDER BY r.subscription";

std::optional<LeaseInfo> lease_at(const detail::Stmt& s, int column) {
  if (s.column_null(column)) return std::nullopt;
  LeaseInfo lease;
  s.column_text(column, lease.owner);
  s.column_text(column + 1, lease.expires);
  lease.token = s.column_int(column + 2);
  return lease;
}

// The status report's first read, a row at a time: the subscriptions.
void read_subscriptions(detail::Stmt& s, StatusReport& report,
                        const std::string& now_text,
                        std::chrono::system_clock::time_point now) {
  while (s.step("read status")) {
    report.head = s.column_int(0);
    if (s.column_null(1)) continue;  // no subscription: the head alone
    SubscriptionStatus sub;
    s.column_text(1, sub.name);
    sub.position = s.column_int(2);
    // A rewind past the head leaves the position above it: nothing is owed.
    sub.lag = std::max<Seq>(0, report.head - sub.position);
    sub.owed = static_cast<std::uint64_t>(s.column_int(3));
    sub.dead = static_cast<std::uint64_t>(s.column_int(4));
    sub.lease = lease_at(s, 5);
    sub.held = static_cast<std::uint64_t>(s.column_int(8));
    if (!s.column_null(9)) sub.lag_time = detail::age_of(s.column_text(9), now);
    if (!s.column_null(10)) {
      SinkStatus k;
      s.column_text(10, k.owner);
      // A time the store did not write (edited by hand) still says it fails.
      if (!s.column_null(11))
        k.failing_since = detail::parse_time_text(s.column_text(11))
                              .value_or(std::chrono::system_clock::time_point{});
      s.column_text(12, k.last_error);
      k.forwarded = static_cast<std::uint64_t>(s.column_int(13));
      k.failed = static_cast<std::uint64_t>(s.column_int(14));
      k.round_trip_p50 = std::chrono::microseconds(s.column_int(15));
      k.round_trip_p99 = std::chrono::microseconds(s.column_int(16));
      s.column_text(17, k.updated);
      sub.sink = std::move(k);
    }
    for (const auto& w : nlohmann::json::parse(s.column_text(18)))
      sub.standbys.push_back(
          {w.at("owner").get<std::string>(), w.at("since").get<std::string>()});
    const bool running = sub.lease && sub.lease->expires > now_text;
    if (running && sub.sink && sub.sink->failing_since &&
        sub.sink->owner == sub.lease->owner)
      sub.activity = Activity::retrying;
    else if (sub.lag == 0 && sub.owed == 0)
      sub.activity = Activity::caught_up;
    else
      sub.activity = running ? Activity::working : Activity::not_running;
    report.subscriptions.push_back(std::move(sub));
  }
}

void read_rebuilds(detail::Stmt& s, StatusReport& report) {
  while (s.step("read rebuilds")) {
    RebuildStatus r;
    s.column_text(0, r.subscription);
    r.from = s.column_int(1);
    r.position = s.column_int(2);
    s.column_text(3, r.started);
    s.column_text(4, r.updated);
    r.lease = lease_at(s, 5);
    report.rebuilds.push_back(std::move(r));
  }
}

void read_bridges(detail::Stmt& s, StatusReport& report) {
  while (s.step("read bridges")) {
    BridgeStatus b;
    s.column_text(0, b.name);
    s.column_text(1, b.broker);
    s.column_text(2, b.source);
    s.column_text(3, b.last_entry);
    b.stored = static_cast<std::uint64_t>(s.column_int(4));
    b.rejected = static_cast<std::uint64_t>(s.column_int(5));
    s.column_text(6, b.updated);
    b.lease = lease_at(s, 7);
    report.bridges.push_back(std::move(b));
  }
}

// A LEFT JOIN, so a dead letter is listed (with the stream its row names) even if its
// event is missing: status() counts it, so the list must show it.
constexpr const char* kDeadLettersSql =
    "SELECT d.subscription, d.seq, coalesce(e.stream, d.stream), coalesce(e.type, ''), "
    "d.attempts, coalesce(d.last_error, ''), d.updated "
    "FROM eventlite_deliveries AS d LEFT JOIN eventlite_events AS e ON e.seq = d.seq "
    "WHERE d.status = 'dead' AND (?1 = '' OR d.subscription = ?1) "
    "ORDER BY d.subscription, d.seq";

// Runs `fn(queries)` in the store's write transaction after the checks every write
// makes (a writable store, an existing subscription: InvalidArgument otherwise), and
// commits; returns what fn returned.
template <class F>
auto write_for(Store& store, std::string_view subscription, const char* what, F fn) {
  detail::StoreAccess::impl(store)->require_writer(what);
  Transaction transaction = store.transaction();
  detail::Queries q(transaction.database().getHandle());
  if (!q.subscription_exists(subscription))
    throw InvalidArgument(
        fmt::format("{}: unknown subscription \"{}\"", what, subscription));
  auto result = fn(q);
  transaction.commit();
  return result;
}

// Applies `change` to the dead letters named by `seqs` (all of them when empty).
template <class F>
std::size_t change_dead_letters(Store& store, std::string_view subscription,
                                std::span<const Seq> seqs, const char* what, F change) {
  return write_for(store, subscription, what, [&](detail::Queries& q) {
    if (seqs.empty()) return change(q, std::optional<Seq>());
    // A seq named twice counts once: the second run finds no dead letter there.
    std::size_t changed = 0;
    for (Seq seq : seqs) changed += change(q, std::optional<Seq>(seq));
    return changed;
  });
}

}  // namespace

std::string_view activity_name(Activity a, bool sink) noexcept {
  switch (a) {
    case Activity::caught_up: return "caught up";
    case Activity::working: return sink ? "sending" : "delivering";
    case Activity::retrying: return "retrying";
    case Activity::not_running: return "not running";
  }
  return "?";
}

StatusReport status(const Store& store) {
  StatusReport report;
  report.store = store.identity();
  auto conn = detail::StoreAccess::impl(store)->readers->acquire();
  sqlite3* db = conn->db->getHandle();
  const auto now = std::chrono::system_clock::now();
  const std::string now_text = detail::format_time(now);
  // One read transaction, so that the subscriptions and the bridges are one snapshot.
  detail::exec(db, "BEGIN", "read status");
  try {
    const int version = detail::read_schema_version(db);
    const bool v4 = version >= 4;
    {
      detail::Stmt& s = conn->statement(status_sql(v4));
      detail::StmtScope scope(s);
      s.bind(1, now_text);
      read_subscriptions(s, report, now_text, now);
    }
    if (v4) {
      detail::Stmt& s = conn->statement(kBridgesSql);
      detail::StmtScope scope(s);
      read_bridges(s, report);
    }
    if (version >= 5) {
      detail::Stmt& s = conn->statement(kRebuildsSql);
      detail::StmtScope scope(s);
      read_rebuilds(s, report);
    }
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  detail::exec(db, "COMMIT", "read status");
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
  const std::string now = detail::now_text();
  return change_dead_letters(store, subscription, seqs, "retry dead letters",
                             [&](detail::Queries& q, std::optional<Seq> seq) {
                               return q.retry_dead(subscription, seq, now);
                             });
}

std::size_t discard_dead_letters(Store& store, std::string_view subscription,
                                 std::span<const Seq> seqs) {
  return change_dead_letters(store, subscription, seqs, "discard dead letters",
                             [&](detail::Queries& q, std::optional<Seq> seq) {
                               return q.discard_dead(subscription, seq);
                             });
}

RewindReport rewind(Store& store, std::string_view subscription, Seq from) {
  if (from < 1)
    throw InvalidArgument(
        fmt::format("rewind: from must be a seq of 1 or more, not {}", from));
  return write_for(store, subscription, "rewind", [&](detail::Queries& q) {
    RewindReport report;
    report.position_before = q.subscription(subscription).position.value_or(0);
    report.position_after = from - 1;
    {
      detail::Stmt& s = q.statement("SELECT count(*) FILTER (WHERE " EVENTLITE_OWED(
          "") "), "
              "count(*) FILTER (WHERE status = 'dead') FROM eventlite_deliveries "
              "WHERE subscription = ?1 AND seq >= ?2");
      detail::StmtScope scope(s);
      s.bind(1, subscription);
      s.bind(2, from);
      s.step("count deliveries");
      report.owed_dropped = static_cast<std::uint64_t>(s.column_int(0));
      report.dead_dropped = static_cast<std::uint64_t>(s.column_int(1));
    }
    const std::string now = detail::now_text();
    if (const auto lease = q.read_lease(subscription); lease && lease->expires > now)
      report.ended_lease_of = lease->owner;
    // The lease ends long past on any clock (a processor on a test's ManualClock
    // included).
    q.rewind(subscription, from, now,
             detail::format_time(std::chrono::system_clock::time_point{}));
    return report;
  });
}

}  // namespace eventlite
