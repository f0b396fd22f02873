#include "store/append.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "eventlite/errors.hpp"

namespace eventlite::detail {
namespace {

bool same_json(std::string_view a, std::string_view b) {
  if (a == b) return true;
  try {
    return nlohmann::json::parse(a) == nlohmann::json::parse(b);
  } catch (const nlohmann::json::exception&) {  // e.g. 1e400, stored by older versions
    return false;
  }
}

// An event whose id is stored: its seq if the content matches, IdConflict otherwise.
// A time is content only when the event gives one (event.hpp says why).
Seq stored_seq_if_same(Stmt& find, std::string_view stream, const NewEvent& e) {
  find.bind(1, e.id);
  StmtScope scope(find);
  if (!find.step("look up event id")) return 0;
  Seq seq = find.column_int(0);
  bool same = find.column_text(1) == stream && find.column_text(2) == e.type &&
              (e.time.empty() || find.column_text(5) == e.time) &&
              same_json(find.column_text(3), e.data) &&
              same_json(find.column_text(4), e.metadata);
  if (!same) throw IdConflict(e.id, seq);
  return seq;
}

[[noreturn]] void throw_insert_failure(int ext, const std::string& message,
                                       std::size_t index, const NewEvent& e) {
  if (ext == SQLITE_CONSTRAINT_UNIQUE) {
    // Two events of one batch with one id, or a generated id that collided.
    throw InvalidEvent(index, "id",
                       fmt::format("id {} appears twice in the batch", e.id));
  }
  throw_storage_code(ext, message.c_str(), "append");
}

// The INSERT of `rows` events; row r binds its seven columns at ?(1 + 7r) on.
std::string insert_sql(std::size_t rows) {
  std::string sql =
      "INSERT INTO eventlite_events (id, stream, version, type, data, metadata, time) "
      "VALUES ";
  for (std::size_t r = 0; r < rows; ++r)
    sql += r == 0 ? "(?,?,?,?,?,?,?)" : ",(?,?,?,?,?,?,?)";
  return sql;
}

void bind_row(Stmt& insert, std::size_t slot, std::string_view id, const InsertRow& row,
              const std::string& time) {
  const NewEvent& e = *row.event;
  const int p = 1 + 7 * static_cast<int>(slot);
  insert.bind(p, id);
  insert.bind(p + 1, row.stream);
  insert.bind(p + 2, row.version);
  insert.bind(p + 3, e.type);
  insert.bind(p + 4, e.data);
  insert.bind(p + 5, e.metadata);
  // An imported or bridged event keeps its original time; others get the commit's.
  insert.bind(p + 6, e.time.empty() ? std::string_view(time) : std::string_view(e.time));
}

// A constraint that an insert failed: which row, and SQLite's code and message.
struct InsertFailure {
  std::size_t row;
  int extended_code;
  std::string message;
};

// Inserts `rows` in order, kInsertRows per statement and the rest one per statement,
// and stores each row's seq. A constraint failure stops it and is returned, with the
// rows before it inserted (a multi-row statement that fails one is backed out, and
// its rows are tried one by one to find it). Other failures throw StorageError. The
// statements' bindings point into `rows` and st.generated_ids until it returns.
std::optional<InsertFailure> insert_rows(AppendStatements& st, UuidV7& ids,
                                         std::span<const InsertRow> rows,
                                         const std::string& time) {
  StmtScope single_scope(st.insert);
  struct RowsScope {
    Stmt* stmt = nullptr;  // the multi-row INSERT, once a chunk needs it
    ~RowsScope() {
      if (stmt) stmt->reset();
    }
  } rows_scope;
  for (std::size_t k = 0; k < rows.size();) {
    const std::size_t n = std::min(kInsertRows, rows.size() - k);
    const auto chunk = rows.subspan(k, n);
    for (std::size_t r = 0; r < n; ++r) {
      if (chunk[r].event->id.empty()) ids.next(st.generated_ids[r]);
    }
    auto id_of = [&](std::size_t r) -> std::string_view {
      const std::string& given = chunk[r].event->id;
      return given.empty() ? std::string_view(st.generated_ids[r]) : given;
    };

    if (n == kInsertRows) {
      if (rows_scope.stmt == nullptr) rows_scope.stmt = &st.insert_rows();
      Stmt& multi = *rows_scope.stmt;
      for (std::size_t r = 0; r < n; ++r) bind_row(multi, r, id_of(r), chunk[r], time);
      const int rc = multi.step_rc();
      if (rc == SQLITE_DONE) {
        multi.rewind();
        // One writer in its transaction: each row took the next rowid, in order.
        const Seq last = sqlite3_last_insert_rowid(st.db);
        for (std::size_t r = 0; r < n; ++r)
          *chunk[r].seq = last - static_cast<Seq>(n - 1 - r);
        k += n;
        continue;
      }
      const int ext = sqlite3_extended_errcode(st.db);
      const std::string message = sqlite3_errmsg(st.db);
      multi.rewind();
      if ((ext & 0xff) != SQLITE_CONSTRAINT)
        throw_storage_code(ext, message.c_str(), "append");
      // The statement was backed out: find the row below, one at a time.
    }

    for (std::size_t r = 0; r < n; ++r) {
      bind_row(st.insert, 0, id_of(r), chunk[r], time);
      const int rc = st.insert.step_rc();
      if (rc != SQLITE_DONE) {
        const int ext = sqlite3_extended_errcode(st.db);
        std::string message = sqlite3_errmsg(st.db);
        if ((ext & 0xff) != SQLITE_CONSTRAINT)
          throw_storage_code(ext, message.c_str(), "append");
        return InsertFailure{k + r, ext, std::move(message)};
      }
      st.insert.rewind();
      *chunk[r].seq = sqlite3_last_insert_rowid(st.db);
    }
    k += n;
  }
  return std::nullopt;
}

// Idempotency: the events of a call whose ids are stored with the same content get
// their stored seq in `seqs` and are not written again. Returns how many are left.
std::size_t resolve_stored_ids(AppendStatements& st, std::string_view stream,
                               std::span<const NewEvent> events, std::vector<Seq>& seqs) {
  std::size_t fresh = events.size();
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (events[i].id.empty()) continue;
    if (Seq seq = stored_seq_if_same(st.find_id, stream, events[i])) {
      seqs[i] = seq;
      --fresh;
    }
  }
  return fresh;
}

Version stored_version(AppendStatements& st, std::string_view stream) {
  st.stream_version.bind(1, stream);
  StmtScope scope(st.stream_version);
  return st.stream_version.step("read stream version") ? st.stream_version.column_int(0)
                                                       : 0;
}

}  // namespace

AppendStatements::AppendStatements(sqlite3* connection, bool persistent_statements)
    : db(connection),
      persistent(persistent_statements),
      stream_version(db,
                     "SELECT version FROM eventlite_events WHERE stream = ? "
                     "ORDER BY version DESC LIMIT 1",
                     persistent),
      find_id(db,
              "SELECT seq, stream, type, data, metadata, time FROM eventlite_events "
              "WHERE id = ?",
              persistent),
      // No JSON check in the INSERT: validate() checked data and metadata before any
      // SQL (SQLite 3.40's json_valid builds a node tree: 1.3 us per 200 bytes).
      insert(db, insert_sql(1), persistent),
      savepoint(db, persistent) {}

Stmt& AppendStatements::insert_rows() {
  if (!insert_rows_) insert_rows_.emplace(db, insert_sql(kInsertRows), persistent);
  return *insert_rows_;
}

std::vector<Seq> append_events(AppendStatements& st, UuidV7& ids, std::string_view stream,
                               std::span<const NewEvent> events, Expected expected,
                               const std::string& time) {
  std::vector<Seq> seqs(events.size(), 0);
  if (resolve_stored_ids(st, stream, events, seqs) == 0) return seqs;

  Version version = stored_version(st, stream);
  if (!expected.holds(version))
    throw VersionConflict(std::string(stream), expected.to_string(), version);

  auto& rows = st.rows;
  rows.clear();
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (seqs[i] == 0) rows.push_back({stream, ++version, &events[i], &seqs[i], i});
  }
  if (auto failure = insert_rows(st, ids, rows, time)) {
    const InsertRow& row = rows[failure->row];
    throw_insert_failure(failure->extended_code, failure->message, row.index, *row.event);
  }
  return seqs;
}

std::vector<Seq> append_atomically(AppendStatements& st, UuidV7& ids,
                                   std::string_view stream,
                                   std::span<const NewEvent> events, Expected expected,
                                   const std::string& time) {
  if (events.size() == 1) return append_events(st, ids, stream, events, expected, time);
  Savepoint sp(st.savepoint);
  auto seqs = append_events(st, ids, stream, events, expected, time);
  sp.release();
  return seqs;
}

bool append_group(AppendStatements& st, UuidV7& ids, std::span<GroupAppend* const> group,
                  const std::string& time) {
  sqlite3* db = st.db;
  if (group.size() == 1) {
    GroupAppend& r = *group.front();
    try {
      r.seqs = append_atomically(st, ids, r.stream, r.events, r.expected, time);
      return true;
    } catch (...) {
      if (sqlite3_get_autocommit(db)) throw;
      r.seqs.clear();
      r.error = std::current_exception();
      return false;
    }
  }
  // The fast way: every check in memory first (stored ids, versions, which a request
  // that comes earlier in the group advances), then one run of multi-row INSERTs for
  // all the requests that passed, under one savepoint. The checks leave only one
  // failure to the INSERT: an id given twice (in one request, or in two that are
  // both new). Then, or on any failure of the INSERTs, the savepoint goes back and the
  // group runs the slow way: each request in turn in its own savepoint, which gives
  // each request exactly its outcome of a run on its own.
  auto& rows = st.rows;
  rows.clear();
  std::unordered_map<std::string_view, Version> versions;
  versions.reserve(group.size());
  bool any = false;
  for (GroupAppend* r : group) {
    try {
      r->seqs.assign(r->events.size(), 0);
      const std::size_t fresh = resolve_stored_ids(st, r->stream, r->events, r->seqs);
      if (fresh > 0) {
        auto [it, inserted] = versions.try_emplace(r->stream, 0);
        if (inserted) it->second = stored_version(st, r->stream);
        Version& version = it->second;
        if (!r->expected.holds(version))
          throw VersionConflict(std::string(r->stream), r->expected.to_string(), version);
        rows.reserve(rows.size() + fresh);  // the last step that may throw
        for (std::size_t i = 0; i < r->events.size(); ++i) {
          if (r->seqs[i] == 0)
            rows.push_back({r->stream, ++version, &r->events[i], &r->seqs[i], i});
        }
      }
      any = true;
    } catch (...) {
      if (sqlite3_get_autocommit(db)) throw;
      r->seqs.clear();
      r->error = std::current_exception();
    }
  }
  if (rows.empty()) return any;

  bool written = false;
  try {
    Savepoint sp(st.savepoint);
    written = !insert_rows(st, ids, rows, time).has_value();
    if (written) sp.release();
  } catch (...) {
    if (sqlite3_get_autocommit(db)) throw;
  }
  if (written) return any;

  any = false;
  for (GroupAppend* r : group) {
    r->error = nullptr;
    try {
      r->seqs = append_atomically(st, ids, r->stream, r->events, r->expected, time);
      any = true;
    } catch (...) {
      if (sqlite3_get_autocommit(db)) throw;
      r->seqs.clear();
      r->error = std::current_exception();
    }
  }
  return any;
}

}  // namespace eventlite::detail
