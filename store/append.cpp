#include "store/append.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <nlohmann/json.hpp>

#include "eventlite/errors.hpp"

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
// "JSON nested too deeply" past SQLite's limit. The slow path: only for payloads the
// fast check refused.
std::string json_problem(std::string_view text) {
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
Seq stored_seq_if_same(Stmt& find, std::string_view stream, const NewEvent& e) {
  find.bind(1, e.id);
  StmtScope scope(find);
  if (!find.step("look up event id")) return 0;
  Seq seq = find.column_int(0);
  bool same = find.column_text(1) == stream && find.column_text(2) == e.type &&
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

// The INSERT of `rows` events. ?1 is the stream and ?2 the time, shared by every row,
// so that they are bound once; row r binds id, version, type, data and metadata at
// ?(3 + 5r) to ?(7 + 5r) (see bind_row()).
std::string insert_sql(std::size_t rows) {
  std::string sql =
      "INSERT INTO eventlite_events (id, stream, version, type, data, metadata, time) "
      "VALUES ";
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t p = 3 + 5 * r;
    sql += fmt::format("{}(?{}, ?1, ?{}, ?{}, ?{}, ?{}, ?2)", r == 0 ? "" : ", ", p,
                       p + 1, p + 2, p + 3, p + 4);
  }
  return sql;
}

void bind_row(Stmt& insert, std::size_t row, std::string_view id, Version version,
              const NewEvent& e) {
  const int p = 3 + 5 * static_cast<int>(row);
  insert.bind(p, id);
  insert.bind(p + 1, version);
  insert.bind(p + 2, e.type);
  insert.bind(p + 3, e.data);
  insert.bind(p + 4, e.metadata);
}

}  // namespace

AppendStatements::AppendStatements(sqlite3* connection, bool persistent_statements)
    : db(connection),
      persistent(persistent_statements),
      stream_version(db,
                     "SELECT version FROM eventlite_events WHERE stream = ? "
                     "ORDER BY version DESC LIMIT 1",
                     persistent),
      find_id(
          db,
          "SELECT seq, stream, type, data, metadata FROM eventlite_events WHERE id = ?",
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

  // Idempotency: events whose ids are stored with the same content are not written.
  std::size_t fresh = events.size();
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (events[i].id.empty()) continue;
    if (Seq seq = stored_seq_if_same(st.find_id, stream, events[i])) {
      seqs[i] = seq;
      --fresh;
    }
  }
  if (fresh == 0) return seqs;

  Version version = 0;
  {
    st.stream_version.bind(1, stream);
    StmtScope scope(st.stream_version);
    if (st.stream_version.step("read stream version"))
      version = st.stream_version.column_int(0);
  }
  if (!expected.holds(version))
    throw VersionConflict(std::string(stream), expected.to_string(), version);

  // The fresh events go kInsertRows at a time through the multi-row INSERT, the rest
  // one by one. The statements' bindings point into `events` and st.generated_ids
  // until the scopes clear them.
  StmtScope single_scope(st.insert);
  st.insert.bind(1, stream);
  st.insert.bind(2, time);
  struct RowsScope {
    Stmt* stmt = nullptr;  // the multi-row INSERT, once a chunk needs it
    ~RowsScope() {
      if (stmt) stmt->reset();
    }
  } rows_scope;
  std::array<std::size_t, kInsertRows> chunk;
  std::size_t next = 0;
  while (next < events.size()) {
    std::size_t n = 0;
    while (next < events.size() && n < kInsertRows) {
      if (seqs[next] == 0) chunk[n++] = next;
      ++next;
    }
    for (std::size_t r = 0; r < n; ++r) {
      if (events[chunk[r]].id.empty()) ids.next(st.generated_ids[r]);
    }
    auto id_of = [&](std::size_t r) -> std::string_view {
      const std::string& given = events[chunk[r]].id;
      return given.empty() ? std::string_view(st.generated_ids[r]) : given;
    };

    if (n == kInsertRows) {
      Stmt* rows = rows_scope.stmt;
      if (rows == nullptr) {
        rows = rows_scope.stmt = &st.insert_rows();
        rows->bind(1, stream);
        rows->bind(2, time);
      }
      for (std::size_t r = 0; r < n; ++r)
        bind_row(*rows, r, id_of(r), version + 1 + static_cast<Version>(r),
                 events[chunk[r]]);
      const int rc = rows->step_rc();
      if (rc == SQLITE_DONE) {
        rows->rewind();
        // One writer in its transaction: each row took the next rowid, in order.
        const Seq last = sqlite3_last_insert_rowid(st.db);
        for (std::size_t r = 0; r < n; ++r)
          seqs[chunk[r]] = last - static_cast<Seq>(n - 1 - r);
        version += static_cast<Version>(n);
        continue;
      }
      const int ext = sqlite3_extended_errcode(st.db);
      const std::string message = sqlite3_errmsg(st.db);
      rows->rewind();
      // A constraint failure backed out the whole statement: insert the rows one by
      // one below, so the error names the event. Anything else is the storage's.
      if ((ext & 0xff) != SQLITE_CONSTRAINT)
        throw_storage_code(ext, message.c_str(), "append");
    }

    for (std::size_t r = 0; r < n; ++r) {
      const NewEvent& e = events[chunk[r]];
      bind_row(st.insert, 0, id_of(r), ++version, e);
      const int rc = st.insert.step_rc();
      if (rc != SQLITE_DONE) {
        const int ext = sqlite3_extended_errcode(st.db);
        const std::string message = sqlite3_errmsg(st.db);
        throw_insert_failure(ext, message, chunk[r], e);
      }
      st.insert.rewind();
      seqs[chunk[r]] = sqlite3_last_insert_rowid(st.db);
    }
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

}  // namespace eventlite::detail
