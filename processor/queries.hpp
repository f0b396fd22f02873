#pragma once

// The processor's SQL: checkpoints with their fencing check, delivery rows, leases and
// the reads that decide what is due. Every function takes the connection it runs on;
// writes expect the caller's write transaction (BEGIN IMMEDIATE) to be open.

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "eventlite/event.hpp"
#include "store/sqlite_util.hpp"
#include "store/time_text.hpp"

namespace eventlite::detail {

// A change to a subscription's eventlite_deliveries rows.
struct RowWrite {
  enum class Status { waiting, retrying, dead, done };  // done: delete the row
  Seq seq = 0;
  std::string stream = {};
  Status status = Status::waiting;
  std::int64_t attempts = 0;      // failed attempts so far
  std::string next_attempt = {};  // retrying: when it is due
  std::string error = {};         // retrying, dead: the last error
};

// A subscription's owed delivery, as stored.
struct OwedRow {
  Seq seq = 0;
  std::string stream = {};
  std::int64_t attempts = 0;
};

// What a lease row says.
struct LeaseRow {
  std::string owner = {};
  std::string expires = {};
  std::int64_t token = 0;
};

// A sink's health row (eventlite_sink_health), as its lease holder writes it.
struct SinkHealthRow {
  std::optional<std::string> failing_since = {};
  std::string last_error = {};
  std::uint64_t forwarded = 0;
  std::uint64_t failed = 0;
  std::int64_t round_trip_p50_us = 0;
  std::int64_t round_trip_p99_us = 0;
};

// The owed predicate, spliced into statements as a literal: a delivery row of
// eventlite_deliveries (`row` its alias and a dot, or "") is owed (retrying or
// waiting) unless it is dead.
#define EVENTLITE_OWED(row) row "status != 'dead'"

// A shadow build's row in eventlite_rebuilds.
struct RebuildRow {
  Seq from = 1;
  Seq position = 0;
  std::string build = {};  // what was built: the version, from and the filters, as JSON
};

// Times in the file are UTC ISO-8601 text with milliseconds; they sort as text.
inline std::optional<std::chrono::system_clock::time_point> parse_time(
    std::string_view text) {
  return parse_time_text(text);
}
// How long before `now` the time `text` was; 0 for a time in the future or text that
// does not parse.
std::chrono::milliseconds age_of(std::string_view text,
                                 std::chrono::system_clock::time_point now);

// The processor's statements on one connection, prepared once and reused.
// Thread safety: one thread at a time, with its connection.
class Queries {
 public:
  explicit Queries(sqlite3* db) : db_(db) {}
  sqlite3* db() const noexcept { return db_; }

  // ---- The lease-row protocol (queries_leases.cpp), the only code that writes
  // eventlite_leases: subscriptions, periodic tasks, Lease, rebuilds and rewind all
  // go through it. A row names its owner, when it expires, and a token that grows
  // whenever the lease changes hands; a holder's writes check their token.
  std::optional<LeaseRow> read_lease(std::string_view name);
  // What take_lease() and steal_lease() found and did.
  struct LeaseTake {
    std::int64_t token = 0;          // held now with this token; 0: held elsewhere
    bool renewed = false;            // it was held already, with the same token
    std::optional<LeaseRow> before;  // the row as it stood
  };
  // Takes lease `name` for `owner` until `expires`. With `renew`, and the row still
  // this owner's with `token`, renews it with that token; else takes it with a new one
  // (the row's + 1) if it is free, expired at `now`, or still this owner's with
  // `token`; else leaves it to its holder.
  LeaseTake take_lease(std::string_view name, std::string_view owner, std::int64_t token,
                       bool renew, std::string_view now, std::string_view expires);
  // Takes lease `name` for `owner` until `expires` from whoever holds it, with a new
  // token: its holder's uncommitted work cannot land.
  LeaseTake steal_lease(std::string_view name, std::string_view owner,
                        std::string_view expires);
  // Ends lease `name` at `expires` with a new token, whoever holds it (a rewind, a
  // rebuild's swap): its holder's uncommitted work cannot land, and it is taken again
  // at once. Returns the row as it stood, none when there is none.
  std::optional<LeaseRow> revoke_lease(std::string_view name, std::string_view expires);
  // Ends the lease at `expires` if `owner` still holds it with `token`.
  void release_lease(std::string_view name, std::string_view owner, std::int64_t token,
                     std::string_view expires);

  // This owner waits for lease `name` (held elsewhere) until `expires`; `since` is
  // kept from the row it replaces.
  void write_standby(std::string_view name, std::string_view owner,
                     std::string_view since, std::string_view expires);
  void delete_standby(std::string_view name, std::string_view owner);

  void write_sink_health(std::string_view subscription, std::string_view owner,
                         const SinkHealthRow& row, std::string_view now);

  // Creates the subscription's row at `position` unless it exists; returns the
  // stored position.
  Seq ensure_subscription(std::string_view name, Seq position, std::string_view now);
  Seq head();

  // True if the checkpoint stands where this owner last left it and the owner still
  // holds the lease with `token`: only then may the owner move it.
  bool fence_holds(std::string_view name, Seq expected_position, std::string_view owner,
                   std::int64_t token);
  void write_position(std::string_view name, Seq position, std::string_view now);
  void write_rows(std::string_view subscription, const std::vector<RowWrite>& rows,
                  std::string_view now);

  // Streams with owed (not dead) deliveries, and with `hold` those with dead letters
  // too: later events of them must wait.
  std::unordered_set<std::string> blocked_streams(std::string_view subscription,
                                                  bool hold);
  // A subscription as the file has it, in one read: its position (none when the row
  // is missing), how many deliveries it owes and when the earliest retry is due, and
  // whether it has dead letters.
  struct SubscriptionRow {
    std::optional<Seq> position = {};
    std::int64_t owed = 0;
    std::optional<std::string> next_due = {};
    bool has_dead = false;
  };
  SubscriptionRow subscription(std::string_view name);
  // Streams whose first owed delivery is due at `now` (waiting ones at once); with
  // `hold`, none behind a dead letter.
  std::vector<std::string> due_streams(std::string_view subscription,
                                       std::string_view now, std::size_t limit,
                                       bool hold);
  // A stream's owed deliveries in seq order.
  std::vector<OwedRow> owed_rows(std::string_view subscription, std::string_view stream,
                                 std::size_t limit);
  std::optional<Event> event_at(Seq seq);
  // Events after `after`, in seq order, at most `limit` of them and, past the first,
  // at most about `max_bytes` of data and metadata, copied into out[0..n) (reusing
  // the strings' storage; `out` grows as needed). Returns n; `full` is set when it
  // stopped at a cap (more may follow at once).
  std::size_t read_events(Seq after, std::size_t limit, std::size_t max_bytes,
                          std::vector<Event>& out, bool& full);
  std::int64_t data_version();
  // The time of the oldest event `subscription` has not delivered: the first past
  // its position, or the oldest it owes. None when it is at the head and owes none.
  std::optional<std::string> oldest_undelivered(std::string_view subscription);

  // Administration (subscriptions.hpp), in the caller's write transaction.
  bool subscription_exists(std::string_view name);
  // Dead letters of `subscription` (all, or the one at `seq`) made due at once with
  // their attempts starting over, or deleted. Returns how many changed.
  std::size_t retry_dead(std::string_view subscription, std::optional<Seq> seq,
                         std::string_view now);
  std::size_t discard_dead(std::string_view subscription, std::optional<Seq> seq);
  // Moves the position to `from - 1`, drops deliveries at or after `from`, and ends
  // the lease with a new token (so its holder's uncommitted work cannot land).
  void rewind(std::string_view subscription, Seq from, std::string_view now,
              std::string_view long_ago);
  // The subscription's stored position; none when it has no row.
  std::optional<Seq> position_of(std::string_view subscription);
  // Deletes the subscription's deliveries at or after `from`; returns how many.
  std::size_t drop_deliveries(std::string_view subscription, Seq from);

  // A shadow build's row (rebuild.hpp), in the caller's write transaction.
  std::optional<RebuildRow> read_rebuild(std::string_view subscription);
  // Inserts the row, or moves its position.
  void write_rebuild(std::string_view subscription, const RebuildRow& row,
                     std::string_view now);
  void delete_rebuild(std::string_view subscription);

  // A bridge's row (eventlite_bridges), in the inbox's write transaction: where it
  // stands at its source and how many entries it stored and rejected (added).
  struct BridgeStep {
    std::string_view name, broker, source, last_entry;
    std::size_t stored = 0, rejected = 0;
  };
  void write_bridge(const BridgeStep& step, std::string_view now);

  // One more statement on this connection, prepared once: `sql` must be a literal
  // (statements are kept by its address).
  Stmt& statement(const char* sql) { return get(sql); }

 private:
  Stmt& get(const char* sql);
  void write_lease(std::string_view name, std::string_view owner,
                   std::string_view expires, std::int64_t token);

  sqlite3* db_;
  std::unordered_map<const char*, Stmt> statements_;  // keyed by the SQL literal
};

}  // namespace eventlite::detail
