// Fuzzes the store's check of an event on append (Transaction::append, which runs
// store/append.cpp's validate() before any SQL). The input is the event, one field a
// line: stream, type, id, time, metadata, then data (the rest, line breaks and all);
// a field the input stops before gets a valid default.
//
// The append must store the event or throw InvalidEvent, and it must store exactly
// what an independent reading of store.hpp's rules accepts: names not empty, at most
// 1024 bytes of UTF-8 without a NUL byte, an id the same but possibly empty, a time in
// the store's form, data valid JSON and metadata a JSON object (by nlohmann's parser),
// nested at most 2000 deep, no byte order mark, data and metadata within
// max_event_bytes. What it stores must be what it was given, byte for byte, valid for
// SQLite's own JSON functions (json_valid, json_type), and its envelope must decode
// to it again. Each run's append is rolled back, so every input meets the same empty
// store.

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/transaction.hpp"
#include "fuzz/fuzz_support.hpp"
#include "store/time_text.hpp"

using namespace eventlite;
using eventlite::fuzz::require;

namespace {

// Small enough that inputs of a few kilobytes reach it.
constexpr std::size_t kMaxEventBytes = 4096;
constexpr std::size_t kMaxNameBytes = 1024;
constexpr std::size_t kMaxDepth = 2000;

// Well-formed UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
bool utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i - 1 < n) return false;  // cut off
    for (std::size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

// How deep valid JSON text nests: brackets outside strings.
std::size_t depth(std::string_view json) {
  std::size_t d = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : json) {
    if (in_string) {
      in_string = escaped || c != '"';
      escaped = !escaped && c == '\\';
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++d);
    } else if (c == ']' || c == '}') {
      --d;
    }
  }
  return deepest;
}

// Whether the store must take `text` as an event's JSON (`object`: as metadata).
bool acceptable_json(std::string_view text, bool object) {
  // JSON has no place for a raw NUL byte, but nlohmann's parser stops at one.
  if (text.starts_with("\xEF\xBB\xBF") || text.find('\0') != std::string_view::npos)
    return false;
  const nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
  if (value.is_discarded() || (object && !value.is_object())) return false;
  return depth(text) <= kMaxDepth;
}

bool acceptable_name(std::string_view name, bool may_be_empty) {
  return (may_be_empty || !name.empty()) && name.size() <= kMaxNameBytes && utf8(name) &&
         name.find('\0') == std::string_view::npos;
}

// The line at the front of `rest`, taken off it; `fallback` once `rest` is used up.
std::string take_line(std::string_view& rest, bool& more, std::string fallback) {
  if (!more) return fallback;
  const auto end = rest.find('\n');
  std::string line(rest.substr(0, end));
  if (end == std::string_view::npos) {
    more = false;
    rest = {};
  } else {
    rest.remove_prefix(end + 1);
  }
  return line;
}

Store& store() {
  static Store store = fuzz::quiet_store({.max_event_bytes = kMaxEventBytes});
  return store;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  std::string_view rest = fuzz::as_text(bytes, size);
  bool more = true;
  const std::string stream = take_line(rest, more, "user-42");
  NewEvent event;
  event.type = take_line(rest, more, "UserCreated");
  event.id = take_line(rest, more, "");
  event.time = take_line(rest, more, "");
  event.metadata = take_line(rest, more, "{}");
  event.data = more ? std::string(rest) : std::string("{}");

  const bool acceptable =
      acceptable_name(stream, false) && acceptable_name(event.type, false) &&
      acceptable_name(event.id, true) &&
      (event.time.empty() || detail::valid_time(event.time)) &&
      event.data.size() + event.metadata.size() <= kMaxEventBytes &&
      acceptable_json(event.data, false) && acceptable_json(event.metadata, true);

  Transaction tx = store().transaction();
  Seq seq = 0;
  try {
    seq = tx.append(stream, event);
  } catch (const InvalidEvent& e) {
    if (acceptable) std::fprintf(stderr, "refused: %s\n", e.what());
    require(!acceptable, "the store refuses only what its rules refuse");
    return 0;
  }
  require(acceptable, "the store accepts only what its rules accept");

  SQLite::Statement row(tx.database(),
                        "SELECT id, stream, version, type, data, metadata, time, "
                        "json_valid(data), json_valid(metadata), "
                        "CASE WHEN json_valid(metadata) THEN json_type(metadata) END "
                        "FROM eventlite_events WHERE seq = ?");
  row.bind(1, static_cast<std::int64_t>(seq));
  require(row.executeStep(), "the appended event is stored at its seq");
  Event stored;
  stored.seq = seq;
  stored.id = row.getColumn(0).getString();
  stored.stream = row.getColumn(1).getString();
  stored.version = row.getColumn(2).getInt64();
  stored.type = row.getColumn(3).getString();
  stored.data = row.getColumn(4).getString();
  stored.metadata = row.getColumn(5).getString();
  stored.time = row.getColumn(6).getString();
  require(event.id.empty() ? stored.id.size() == 36 : stored.id == event.id,
          "the event keeps its id, or gets a UUID");
  require(stored.stream == stream && stored.type == event.type && stored.version == 1,
          "the event is stored in its stream, with its type, at version 1");
  require(stored.data == event.data && stored.metadata == event.metadata,
          "data and metadata are stored byte for byte");
  require(
      event.time.empty() ? detail::valid_time(stored.time) : stored.time == event.time,
      "the event keeps its time, or gets the commit time");
  require(row.getColumn(7).getInt() == 1 && row.getColumn(8).getInt() == 1,
          "stored data and metadata are valid for SQLite's JSON functions");
  require(row.getColumn(9).getString() == "object", "stored metadata is an object");
  row.reset();

  // Whatever the store holds, its envelope carries: export and import depend on it.
  const std::string line = to_envelope(stored);
  DecodedEvent d;
  try {
    d = decode_envelope(line);
  } catch (const InvalidEvent& e) {
    std::fprintf(stderr, "%s\n", e.what());
    require(false, "the envelope of a stored event decodes");
  }
  require(d.stream == stored.stream && d.event.type == stored.type &&
              d.event.id == stored.id && d.event.time == stored.time &&
              d.version == stored.version && d.seq == stored.seq,
          "a stored event's envelope decodes to its names, positions and time");
  require(d.event.data == fuzz::as_decoded(stored.data) &&
              d.event.metadata == fuzz::as_decoded(stored.metadata),
          "a stored event's envelope decodes to its data and metadata");
  tx.rollback();
  return 0;
}
