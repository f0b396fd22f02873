#include "store/append.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "eventlite/errors.hpp"
#include "store/time_text.hpp"

namespace eventlite::detail {
namespace {

// Stream and type names are identifiers, not payloads.
constexpr std::size_t kMaxNameBytes = 1024;
// SQLite's JSON functions (verify's json_valid, an application's json_extract) refuse
// nesting deeper than 2000, so a stored payload stays within it.
constexpr std::size_t kMaxJsonDepth = 2000;
// Payloads up to this size are checked with the thread's parser and buffer, larger ones
// with their own, so that no thread keeps megabytes after one large event.
constexpr std::size_t kThreadBufferBytes = 64 * 1024;
constexpr std::string_view kByteOrderMark = "\xef\xbb\xbf";

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or code points past
// U+10FFFF): a stored string that is not UTF-8 would break every reader that parses it.
bool valid_utf8(std::string_view s) {
  // Names are short and mostly ASCII: a byte loop beats the dispatch of simdjson's
  // SIMD validator, which takes the rest.
  if (s.size() <= 64 &&
      std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; }))
    return true;
  return simdjson::validate_utf8(s.data(), s.size());
}

void require_utf8(std::size_t index, const char* field, std::string_view text) {
  if (!valid_utf8(text)) throw InvalidEvent(index, field, "not valid UTF-8");
}

// A name with a NUL byte: SQLite's text functions stop at it (the schema's CHECK
// length(stream) > 0 fails for "\0x", with a StorageError), and SQLite leaves the
// result of expressions on such text undefined.
void require_no_nul(std::size_t index, const char* field, std::string_view name) {
  if (auto nul = name.find('\0'); nul != std::string_view::npos)
    throw InvalidEvent(index, field,
                       fmt::format("contains a NUL byte (at byte {})", nul + 1));
}

std::string_view trim_left(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
    ++i;
  return s.substr(i);
}

// The fast check of a payload: simdjson's DOM parser, which checks UTF-8, structure,
// strings and numbers at memory speed. It refuses a little more than the store
// accepts (integers beyond 64 bits, which nlohmann reads as doubles), so a refusal
// goes on to json_problem(), which decides and words the error.
// Thread safety: one thread at a time (each thread has its own, see validate()).
class JsonChecker {
 public:
  enum class Result { object, other_value, refused };

  JsonChecker() {
    if (parser_.allocate(kInitialBytes, kMaxJsonDepth) != simdjson::SUCCESS)
      throw std::bad_alloc();
  }

  Result check(std::string_view text) {
    if (text.size() > kThreadBufferBytes) {
      // simdjson reads up to SIMDJSON_PADDING bytes past the end of its input.
      const simdjson::padded_string padded(text);
      simdjson::dom::parser parser;
      if (parser.allocate(padded.size(), kMaxJsonDepth) != simdjson::SUCCESS)
        throw std::bad_alloc();
      return classify(parser.parse(padded));
    }
    if (buffer_.size() < text.size() + simdjson::SIMDJSON_PADDING)
      buffer_.resize(std::max(text.size(), kInitialBytes) + simdjson::SIMDJSON_PADDING);
    std::memcpy(buffer_.data(), text.data(), text.size());
    return classify(parser_.parse(buffer_.data(), text.size(), false));
  }

 private:
  static constexpr std::size_t kInitialBytes = 4096;

  static Result classify(simdjson::simdjson_result<simdjson::dom::element> parsed) {
    if (parsed.error() != simdjson::SUCCESS) return Result::refused;
    return parsed.value_unsafe().is_object() ? Result::object : Result::other_value;
  }

  simdjson::dom::parser parser_;
  std::vector<char> buffer_;  // the payload, copied, with simdjson's padding after it
};

// Walks a document with nlohmann's SAX parser: whether it is valid, and how deep.
struct DepthCounter : nlohmann::json_sax<nlohmann::json> {
  std::size_t depth = 0;
  std::size_t max_depth = 0;
  std::string error;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return enter(); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return leave(); }
  bool start_array(std::size_t) override { return enter(); }
  bool end_array() override { return leave(); }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::json::exception& e) override {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, ...".
    error = e.what();
    auto pos = error.find("] ");
    if (pos != std::string::npos) error.erase(0, pos + 2);
    return false;
  }

 private:
  bool enter() {
    max_depth = std::max(max_depth, ++depth);
    return true;
  }
  bool leave() {
    --depth;
    return true;
  }
};

// Why `text` is refused as JSON, or "" if it is accepted. The errors are those the
// store has always given: nlohmann's wording for malformed text (and for numbers no
// double holds, and surrogate escapes with no pair, which no reader could parse),
// "JSON nested too deeply" past SQLite's limit; a NUL byte is named as such. The
// slow path: only for payloads the fast check refused.
std::string json_problem(std::string_view text) {
  // nlohmann's lexer takes a NUL byte for the end of the input, so whatever follows
  // one would pass unchecked (and SQLite's JSON functions stop at it too).
  if (auto nul = text.find('\0'); nul != std::string_view::npos)
    return fmt::format("malformed JSON: a NUL byte (at byte {})", nul + 1);
  DepthCounter counter;
  (void)nlohmann::json::sax_parse(text.begin(), text.end(), &counter);
  if (!counter.error.empty()) return "malformed JSON: " + counter.error;
  if (counter.max_depth > kMaxJsonDepth) return "JSON nested too deeply";
  // nlohmann skips a byte order mark; SQLite's JSON functions refuse it.
  if (text.starts_with(kByteOrderMark))
    return "malformed JSON: a byte order mark before the value";
  return {};
}

// Refuses metadata that is not an object, with the errors the store has always given.
void require_object(std::size_t index, std::string_view metadata) {
  auto meta = trim_left(metadata);
  if (meta.empty() || meta.front() != '{') {
    auto p = json_problem(metadata);
    throw InvalidEvent(index, "metadata", p.empty() ? "not a JSON object" : p);
  }
}

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

void validate(std::string_view stream, std::span<const NewEvent> events,
              const AppendLimits& limits) {
  if (stream.empty()) throw InvalidEvent(0, "stream", "empty");
  if (stream.size() > kMaxNameBytes)
    throw InvalidEvent(0, "stream", fmt::format("longer than {} bytes", kMaxNameBytes));
  require_utf8(0, "stream", stream);
  require_no_nul(0, "stream", stream);
  if (events.empty()) throw InvalidArgument("append of no events");
  thread_local JsonChecker checker;
  // Which error wins when several events are bad is as it always was: names, sizes,
  // encoding and the shape of metadata first, in batch order; then the first event
  // whose data or metadata is not valid JSON.
  std::size_t bad_json = events.size();
  for (std::size_t i = 0; i < events.size(); ++i) {
    const NewEvent& e = events[i];
    if (e.type.empty()) throw InvalidEvent(i, "type", "empty");
    if (e.type.size() > kMaxNameBytes)
      throw InvalidEvent(i, "type", fmt::format("longer than {} bytes", kMaxNameBytes));
    if (e.id.size() > kMaxNameBytes)
      throw InvalidEvent(i, "id", fmt::format("longer than {} bytes", kMaxNameBytes));
    if (e.data.size() + e.metadata.size() > limits.max_event_bytes)
      throw InvalidEvent(
          i, "data",
          fmt::format("{} bytes of data and metadata, over the cap of {}",
                      e.data.size() + e.metadata.size(), limits.max_event_bytes));
    require_utf8(i, "type", e.type);
    require_utf8(i, "id", e.id);
    require_no_nul(i, "type", e.type);
    require_no_nul(i, "id", e.id);
    if (!e.time.empty() && !valid_time(e.time)) throw InvalidEvent(i, "time", kTimeFormat);
    // A payload simdjson accepts is valid UTF-8 and valid JSON within the depth cap.
    const bool data_ok = checker.check(e.data) != JsonChecker::Result::refused;
    const bool metadata_ok =
        e.metadata == "{}" || checker.check(e.metadata) == JsonChecker::Result::object;
    if (data_ok && metadata_ok) continue;
    require_utf8(i, "data", e.data);
    require_utf8(i, "metadata", e.metadata);
    require_object(i, e.metadata);
    if (bad_json == events.size() &&
        (!json_problem(e.data).empty() || !json_problem(e.metadata).empty()))
      bad_json = i;
  }
  if (bad_json < events.size()) {
    const NewEvent& e = events[bad_json];
    if (auto p = json_problem(e.data); !p.empty())
      throw InvalidEvent(bad_json, "data", p);
    throw InvalidEvent(bad_json, "metadata", json_problem(e.metadata));
  }
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
