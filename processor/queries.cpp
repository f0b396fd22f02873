#include "processor/queries.hpp"

#include "store/reader.hpp"

namespace eventlite::detail {

std::chrono::milliseconds age_of(std::string_view text,
                                 std::chrono::system_clock::time_point now) {
  const auto t = parse_time(text);
  if (!t || *t >= now) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - *t);
}

Stmt& Queries::get(const char* sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second;
  return statements_.emplace(sql, Stmt(db_, sql)).first->second;
}

void Queries::write_sink_health(std::string_view subscription, std::string_view owner,
                                const SinkHealthRow& row, std::string_view now) {
  Stmt& s = get(
      "INSERT OR REPLACE INTO eventlite_sink_health(subscription, owner, failing_since, "
      "last_error, forwarded, failed, round_trip_p50_us, round_trip_p99_us, updated) "
      "VALUES (?1, ?2, nullif(?3, ''), nullif(?4, ''), ?5, ?6, ?7, ?8, ?9)");
  StmtScope scope(s);
  s.bind(1, subscription);
  s.bind(2, owner);
  s.bind(3, row.failing_since ? std::string_view(*row.failing_since) : "");
  s.bind(4, row.last_error);
  s.bind(5, static_cast<std::int64_t>(row.forwarded));
  s.bind(6, static_cast<std::int64_t>(row.failed));
  s.bind(7, row.round_trip_p50_us);
  s.bind(8, row.round_trip_p99_us);
  s.bind(9, now);
  s.step("write sink health");
}

Seq Queries::ensure_subscription(std::string_view name, Seq position,
                                 std::string_view now) {
  {
    Stmt& s =
        get("INSERT INTO eventlite_subscriptions(name, position, created, updated) "
            "VALUES (?1, ?2, ?3, ?3) ON CONFLICT(name) DO NOTHING");
    StmtScope scope(s);
    s.bind(1, name);
    s.bind(2, position);
    s.bind(3, now);
    s.step("create subscription");
  }
  Stmt& s = get("SELECT position FROM eventlite_subscriptions WHERE name = ?1");
  StmtScope scope(s);
  s.bind(1, name);
  s.step("read subscription");
  return s.column_int(0);
}

Seq Queries::head() {
  Stmt& s = get("SELECT coalesce(max(seq), 0) FROM eventlite_events");
  StmtScope scope(s);
  s.step("read head");
  return s.column_int(0);
}

bool Queries::fence_holds(std::string_view name, Seq expected_position,
                          std::string_view owner, std::int64_t token) {
  Stmt& s =
      get("SELECT s.position, l.owner, l.token FROM eventlite_subscriptions AS s "
          "JOIN eventlite_leases AS l ON l.name = s.name WHERE s.name = ?1");
  StmtScope scope(s);
  s.bind(1, name);
  if (!s.step("check lease")) return false;
  return s.column_int(0) == expected_position && s.column_text(1) == owner &&
         s.column_int(2) == token;
}

void Queries::write_position(std::string_view name, Seq position, std::string_view now) {
  Stmt& s = get(
      "UPDATE eventlite_subscriptions SET position = ?2, updated = ?3 WHERE name = ?1");
  StmtScope scope(s);
  s.bind(1, name);
  s.bind(2, position);
  s.bind(3, now);
  s.step("write checkpoint");
}

void Queries::write_rows(std::string_view subscription, const std::vector<RowWrite>& rows,
                         std::string_view now) {
  for (const RowWrite& row : rows) {
    if (row.status == RowWrite::Status::done) {
      Stmt& s =
          get("DELETE FROM eventlite_deliveries WHERE subscription = ?1 AND seq = ?2");
      StmtScope scope(s);
      s.bind(1, subscription);
      s.bind(2, row.seq);
      s.step("delete delivery");
      continue;
    }
    Stmt& s = get(
        "INSERT INTO eventlite_deliveries(subscription, seq, stream, status, attempts, "
        "next_attempt, last_error, updated) VALUES (?1, ?2, ?3, ?4, ?5, nullif(?6, ''), "
        "nullif(?7, ''), ?8) ON CONFLICT(subscription, seq) DO UPDATE SET "
        "status = excluded.status, attempts = excluded.attempts, "
        "next_attempt = excluded.next_attempt, last_error = excluded.last_error, "
        "updated = excluded.updated");
    StmtScope scope(s);
    const char* status = row.status == RowWrite::Status::waiting    ? "waiting"
                         : row.status == RowWrite::Status::retrying ? "retrying"
                                                                    : "dead";
    s.bind(1, subscription);
    s.bind(2, row.seq);
    s.bind(3, row.stream);
    s.bind(4, std::string_view(status));
    s.bind(5, row.attempts);
    s.bind(6, row.next_attempt);
    s.bind(7, row.error);
    s.bind(8, now);
    s.step("write delivery");
  }
}

std::unordered_set<std::string> Queries::blocked_streams(std::string_view subscription,
                                                         bool hold) {
  Stmt& s =
      get("SELECT DISTINCT stream FROM eventlite_deliveries WHERE subscription = ?1 AND "
          "(" EVENTLITE_OWED("") " OR ?2)");
  StmtScope scope(s);
  s.bind(1, subscription);
  s.bind(2, std::int64_t{hold});
  std::unordered_set<std::string> out;
  while (s.step("read owed streams")) out.emplace(s.column_text(0));
  return out;
}

Queries::SubscriptionRow Queries::subscription(std::string_view name) {
  Stmt& s = get(
      "SELECT (SELECT position FROM eventlite_subscriptions WHERE name = ?1), "
      "(SELECT count(*) FROM eventlite_deliveries WHERE subscription = ?1 AND "
      EVENTLITE_OWED("") "), "
      "(SELECT min(next_attempt) FROM eventlite_deliveries WHERE subscription = ?1 AND "
      EVENTLITE_OWED("") "), "
      "EXISTS (SELECT 1 FROM eventlite_deliveries WHERE subscription = ?1 AND "
      "status = 'dead')");
  StmtScope scope(s);
  s.bind(1, name);
  s.step("read subscription");
  SubscriptionRow row;
  if (!s.column_null(0)) row.position = s.column_int(0);
  row.owed = s.column_int(1);
  if (!s.column_null(2)) row.next_due = std::string(s.column_text(2));
  row.has_dead = s.column_int(3) != 0;
  return row;
}

std::vector<std::string> Queries::due_streams(std::string_view subscription,
                                              std::string_view now, std::size_t limit,
                                              bool hold) {
  Stmt& s =
      get("SELECT d.stream FROM eventlite_deliveries AS d "
          "WHERE d.subscription = ?1 AND " EVENTLITE_OWED("d.") " "
          "AND (d.status = 'waiting' OR d.next_attempt IS NULL OR d.next_attempt <= ?2) "
          "AND NOT EXISTS (SELECT 1 FROM eventlite_deliveries AS p "
          "  WHERE p.subscription = ?1 AND p.stream = d.stream "
          "  AND (" EVENTLITE_OWED("p.") " OR ?4) AND p.seq < d.seq) "
          "ORDER BY d.seq LIMIT ?3");
  StmtScope scope(s);
  s.bind(1, subscription);
  s.bind(2, now);
  s.bind(3, static_cast<std::int64_t>(limit));
  s.bind(4, std::int64_t{hold});
  std::vector<std::string> out;
  while (s.step("read due deliveries")) out.emplace_back(s.column_text(0));
  return out;
}

std::vector<OwedRow> Queries::owed_rows(std::string_view subscription,
                                        std::string_view stream, std::size_t limit) {
  Stmt& s =
      get("SELECT seq, attempts FROM eventlite_deliveries WHERE subscription = ?1 AND "
          "stream = ?2 AND " EVENTLITE_OWED("") " ORDER BY seq LIMIT ?3");
  StmtScope scope(s);
  s.bind(1, subscription);
  s.bind(2, stream);
  s.bind(3, static_cast<std::int64_t>(limit));
  std::vector<OwedRow> out;
  while (s.step("read owed deliveries"))
    out.push_back(OwedRow{s.column_int(0), std::string(stream), s.column_int(1)});
  return out;
}

std::optional<Event> Queries::event_at(Seq seq) {
  static const std::string sql =
      std::string("SELECT ") + kEventColumns + " FROM eventlite_events WHERE seq = ?1";
  Stmt& s = get(sql.c_str());
  StmtScope scope(s);
  s.bind(1, seq);
  if (!s.step("read event")) return std::nullopt;
  Event e;
  copy_event(s, e);
  return e;
}

std::size_t Queries::read_events(Seq after, std::size_t limit, std::size_t max_bytes,
                                 std::vector<Event>& out, bool& full) {
  static const std::string sql = std::string("SELECT ") + kEventColumns +
                                 " FROM eventlite_events WHERE seq > ?1 ORDER BY seq "
                                 "LIMIT ?2";
  Stmt& s = get(sql.c_str());
  StmtScope scope(s);
  s.bind(1, after);
  s.bind(2, static_cast<std::int64_t>(limit));
  std::size_t count = 0;
  std::size_t bytes = 0;
  while (count < limit && bytes < max_bytes && s.step("read events")) {
    if (count == out.size()) out.emplace_back();
    Event& e = out[count];
    copy_event(s, e);
    bytes += e.data.size() + e.metadata.size();
    ++count;
  }
  full = count == limit || bytes >= max_bytes;
  return count;
}

std::int64_t Queries::data_version() {
  Stmt& s = get("PRAGMA data_version");
  StmtScope scope(s);
  s.step("read data_version");
  return s.column_int(0);
}

std::optional<std::string> Queries::oldest_undelivered(std::string_view subscription) {
  // min() of two values is NULL when either is: coalesce picks the one there is.
  Stmt& s =
      get("SELECT coalesce(min(n, o), n, o) FROM (SELECT "
          "(SELECT e.time FROM eventlite_events AS e WHERE e.seq = "
          "  (SELECT position FROM eventlite_subscriptions WHERE name = ?1) + 1) AS n, "
          "(SELECT min(e.time) FROM eventlite_deliveries AS d "
          "  JOIN eventlite_events AS e ON e.seq = d.seq "
          "  WHERE d.subscription = ?1 AND " EVENTLITE_OWED("d.") ") AS o)");
  StmtScope scope(s);
  s.bind(1, subscription);
  if (!s.step("read oldest undelivered event") || s.column_null(0)) return std::nullopt;
  return std::string(s.column_text(0));
}

}  // namespace eventlite::detail
