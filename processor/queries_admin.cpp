// Queries: the writes of administration (dead letters, rewind), of rebuilds (their
// positions, deliveries and rows) and of bridges (their rows). See queries.hpp.

#include "processor/queries.hpp"

namespace eventlite::detail {

bool Queries::subscription_exists(std::string_view name) {
  Stmt& s = get("SELECT 1 FROM eventlite_subscriptions WHERE name = ?1");
  StmtScope scope(s);
  s.bind(1, name);
  return s.step("read subscription");
}

std::size_t Queries::retry_dead(std::string_view subscription, std::optional<Seq> seq,
                                std::string_view now) {
  // No due time: due at once on whatever clock the processor runs (a test's
  // ManualClock included).
  Stmt& s =
      get("UPDATE eventlite_deliveries "
          "SET status = 'retrying', attempts = 0, next_attempt = NULL, updated = ?2 "
          "WHERE subscription = ?1 AND status = 'dead' AND (?3 < 0 OR seq = ?3)");
  StmtScope scope(s);
  s.bind(1, subscription);
  s.bind(2, now);
  s.bind(3, seq.value_or(-1));
  s.step("retry dead letters");
  return static_cast<std::size_t>(sqlite3_changes(db_));
}

std::size_t Queries::discard_dead(std::string_view subscription, std::optional<Seq> seq) {
  Stmt& s =
      get("DELETE FROM eventlite_deliveries "
          "WHERE subscription = ?1 AND status = 'dead' AND (?2 < 0 OR seq = ?2)");
  StmtScope scope(s);
  s.bind(1, subscription);
  s.bind(2, seq.value_or(-1));
  s.step("discard dead letters");
  return static_cast<std::size_t>(sqlite3_changes(db_));
}

void Queries::rewind(std::string_view subscription, Seq from, std::string_view now,
                     std::string_view long_ago) {
  write_position(subscription, from - 1, now);
  drop_deliveries(subscription, from);  // the log delivers them again from there
  // Take the subscription from whoever dispatches it: a new token fences the work
  // it has not committed yet, even when the position ends where it was, and the
  // lease ends now, so it (or another process) picks the subscription up again at
  // once from the new position.
  revoke_lease(subscription, long_ago);
}

std::optional<Seq> Queries::position_of(std::string_view subscription) {
  Stmt& s = get("SELECT position FROM eventlite_subscriptions WHERE name = ?1");
  StmtScope scope(s);
  s.bind(1, subscription);
  if (!s.step("read subscription")) return std::nullopt;
  return s.column_int(0);
}

std::size_t Queries::drop_deliveries(std::string_view subscription, Seq from) {
  Stmt& s = get("DELETE FROM eventlite_deliveries WHERE subscription = ?1 AND seq >= ?2");
  StmtScope scope(s);
  s.bind(1, subscription);
  s.bind(2, from);
  s.step("drop deliveries");
  return static_cast<std::size_t>(sqlite3_changes(db_));
}

std::optional<RebuildRow> Queries::read_rebuild(std::string_view subscription) {
  Stmt& s = get(
      "SELECT from_seq, position, build FROM eventlite_rebuilds WHERE subscription = ?1");
  StmtScope scope(s);
  s.bind(1, subscription);
  if (!s.step("read rebuild")) return std::nullopt;
  return RebuildRow{s.column_int(0), s.column_int(1), std::string(s.column_text(2))};
}

void Queries::write_rebuild(std::string_view subscription, const RebuildRow& row,
                            std::string_view now) {
  Stmt& s = get(
      "INSERT INTO eventlite_rebuilds(subscription, from_seq, position, build, started, "
      "updated) VALUES (?1, ?2, ?3, ?5, ?4, ?4) ON CONFLICT(subscription) DO UPDATE "
      "SET position = excluded.position, updated = excluded.updated");
  StmtScope scope(s);
  s.bind(1, subscription);
  s.bind(2, row.from);
  s.bind(3, row.position);
  s.bind(4, now);
  s.bind(5, row.build);
  s.step("write rebuild");
}

void Queries::delete_rebuild(std::string_view subscription) {
  Stmt& s = get("DELETE FROM eventlite_rebuilds WHERE subscription = ?1");
  StmtScope scope(s);
  s.bind(1, subscription);
  s.step("end rebuild");
}

void Queries::write_bridge(const BridgeStep& step, std::string_view now) {
  Stmt& s =
      get("INSERT INTO eventlite_bridges (name, broker, source, last_entry, stored, "
          "rejected, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
          "ON CONFLICT(name) DO UPDATE SET broker = excluded.broker, "
          "source = excluded.source, last_entry = excluded.last_entry, "
          "stored = stored + excluded.stored, rejected = rejected + excluded.rejected, "
          "updated = excluded.updated");
  StmtScope scope(s);
  s.bind(1, step.name);
  s.bind(2, step.broker);
  s.bind(3, step.source);
  s.bind(4, step.last_entry);
  s.bind(5, static_cast<std::int64_t>(step.stored));
  s.bind(6, static_cast<std::int64_t>(step.rejected));
  s.bind(7, now);
  s.step("write bridge");
}

}  // namespace eventlite::detail
