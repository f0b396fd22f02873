#include "store/append.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>

#include "eventlite/errors.hpp"
#include "store/time_text.hpp"

namespace eventlite::detail {
namespace {

// Stream and type names are identifiers, not payloads.
constexpr std::size_t kMaxNameBytes = 1024;

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or code points past
// U+10FFFF). SQLite's json_valid does not check encoding, and a stored string that
// is not UTF-8 would break every reader that parses it.
bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    // Fast path: eight ASCII bytes at a time.
    if (end - p >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, 8);
      if ((word & 0x8080808080808080ull) == 0) {
        p += 8;
        continue;
      }
    }
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    std::uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    p += n + 1;
  }
  return true;
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

// Why `text` is not valid JSON, as nlohmann words it, or "" if it is.
std::string json_problem(std::string_view text) {
  try {
    [[maybe_unused]] auto parsed = nlohmann::json::parse(text);
    return {};
  } catch (const nlohmann::json::parse_error& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, ...".
    std::string what = e.what();
    auto pos = what.find("] ");
    return "malformed JSON: " + (pos == std::string::npos ? what : what.substr(pos + 2));
  }
}

bool same_json(std::string_view a, std::string_view b) {
  if (a == b) return true;
  try {
    return nlohmann::json::parse(a) == nlohmann::json::parse(b);
  } catch (const nlohmann::json::parse_error&) {
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

// Whether SQLite's json_valid accepts `text` (it caps nesting lower than nlohmann).
bool sqlite_json_valid(sqlite3* db, std::string_view text) {
  Stmt s(db, "SELECT json_valid(?)", false);
  s.bind(1, text);
  StmtScope scope(s);
  return s.step("check JSON") && s.column_int(0) == 1;
}

// The insert stored no row: json_valid refused data or metadata. Say why.
[[noreturn]] void throw_invalid_json(sqlite3* db, std::size_t index, const NewEvent& e) {
  if (auto p = json_problem(e.data); !p.empty()) throw InvalidEvent(index, "data", p);
  if (auto p = json_problem(e.metadata); !p.empty())
    throw InvalidEvent(index, "metadata", p);
  // Valid to nlohmann but refused by SQLite: nested deeper than its parser allows.
  const char* field = sqlite_json_valid(db, e.data) ? "metadata" : "data";
  throw InvalidEvent(index, field, "JSON nested too deeply");
}

[[noreturn]] void throw_insert_failure(sqlite3* db, int ext, const std::string& message,
                                       std::size_t index, const NewEvent& e) {
  if (ext == SQLITE_CONSTRAINT_NOTNULL) throw_invalid_json(db, index, e);
  if (ext == SQLITE_CONSTRAINT_UNIQUE) {
    // Two events of one batch with one id, or a generated id that collided.
    throw InvalidEvent(index, "id",
                       fmt::format("id {} appears twice in the batch", e.id));
  }
  throw_storage_code(ext, message.c_str(), "append");
}

}  // namespace

AppendStatements::AppendStatements(sqlite3* db, bool persistent)
    : stream_version(db,
                     "SELECT version FROM eventlite_events WHERE stream = ? "
                     "ORDER BY version DESC LIMIT 1",
                     persistent),
      find_id(db,
              "SELECT seq, stream, type, data, metadata, time FROM eventlite_events "
              "WHERE id = ?",
              persistent),
      insert(db,
             // The JSON check lives here, not in the schema (see schema/001_events.sql):
             // invalid JSON becomes NULL and fails the NOT NULL constraint. VALUES, not
             // INSERT ... SELECT ... WHERE, which opens a statement journal per row.
             "INSERT INTO eventlite_events (id, stream, version, type, data, metadata, "
             "time) VALUES (?1, ?2, ?3, ?4, iif(json_valid(?5), ?5, NULL), "
             "iif(?6 = '{}' OR json_valid(?6), ?6, NULL), ?7)",
             persistent),
      savepoint(db, persistent) {}

void validate(std::string_view stream, std::span<const NewEvent> events,
              const AppendLimits& limits) {
  if (stream.empty()) throw InvalidEvent(0, "stream", "empty");
  if (stream.size() > kMaxNameBytes)
    throw InvalidEvent(0, "stream", fmt::format("longer than {} bytes", kMaxNameBytes));
  require_utf8(0, "stream", stream);
  if (events.empty()) throw InvalidArgument("append of no events");
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
    require_utf8(i, "data", e.data);
    require_utf8(i, "metadata", e.metadata);
    if (!e.time.empty() && !valid_time(e.time))
      throw InvalidEvent(i, "time", kTimeFormat);
    // The insert checks validity; this catches the common mistake early and clearly.
    auto meta = trim_left(e.metadata);
    if (meta.empty() || meta.front() != '{') {
      auto p = json_problem(e.metadata);
      throw InvalidEvent(i, "metadata", p.empty() ? "not a JSON object" : p);
    }
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

  std::string generated;
  Stmt& insert = st.insert;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (seqs[i] != 0) continue;
    const NewEvent& e = events[i];
    const std::string* id = &e.id;
    if (id->empty()) {
      ids.next(generated);
      id = &generated;
    }
    insert.bind(1, *id);
    insert.bind(2, stream);
    insert.bind(3, ++version);
    insert.bind(4, e.type);
    insert.bind(5, e.data);
    insert.bind(6, e.metadata);
    insert.bind(7, e.time.empty() ? time : e.time);
    int rc = insert.step_rc();
    if (rc != SQLITE_DONE) {
      int ext = sqlite3_extended_errcode(insert.db());
      std::string message = sqlite3_errmsg(insert.db());
      insert.reset();
      throw_insert_failure(insert.db(), ext, message, i, e);
    }
    insert.reset();
    seqs[i] = sqlite3_last_insert_rowid(insert.db());
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
