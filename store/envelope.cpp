// The wire format's codec (include/eventlite/envelope.hpp).
//
// Decoding uses simdjson's on-demand parser, which hands out the raw text of a value
// (raw_json) instead of a parsed copy: data and metadata reach the store exactly as
// the line spelled them, so no number is rounded and no key order changes. The price
// is that on-demand parsing checks only what it visits: the decoder checks the
// line's structure (one object, nothing after it) and every field it interprets,
// and leaves the inside of data and metadata to the store's own check on append.

#include "eventlite/envelope.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "eventlite/errors.hpp"
#include "store/envelope_encode.hpp"
#include "store/time_text.hpp"

namespace eventlite {
namespace {

namespace od = simdjson::ondemand;

// ---- encoding -------------------------------------------------------------------

void append_quoted(std::string& out, std::string_view s) {
  // Ids, streams, types and times are plain text in practice; escape only if needed
  // (UTF-8 needs no escaping: only quotes, backslashes and control characters do).
  bool plain = true;
  for (char c : s)
    plain &= static_cast<unsigned char>(c) >= 0x20 && c != '"' && c != '\\';
  if (plain) {
    out += '"';
    out += s;
    out += '"';
  } else {
    out += nlohmann::json(std::string(s))
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

// Stored JSON is valid (the store checks it) but may span lines. Outside strings,
// line breaks can only be white space, and inside strings they cannot appear raw, so
// replacing them keeps the text valid and equal while fitting it on one line.
void append_json_one_line(std::string& out, std::string_view json) {
  const std::size_t start = out.size();
  out += json;
  // Most JSON text is on one line already: two memchr scans say so quickly.
  if (std::memchr(json.data(), '\n', json.size()) == nullptr &&
      std::memchr(json.data(), '\r', json.size()) == nullptr)
    return;
  std::replace_if(
      out.begin() + static_cast<std::ptrdiff_t>(start), out.end(),
      [](char c) { return c == '\n' || c == '\r'; }, ' ');
}

// ---- decoding -------------------------------------------------------------------

// Reading one line: `what` names the line itself in errors ("envelope").
class LineReader {
 public:
  explicit LineReader(const char* what) : what_(what) {}

  // Calls on_field(key, value) for each field of the object that `line` holds.
  // Refuses a NUL byte, malformed JSON, a line that is not one object, anything after
  // the object and a key given twice.
  template <class OnField>
  void for_each_field(std::string_view line, OnField&& on_field) {
    if (auto nul = line.find('\0'); nul != std::string_view::npos)
      fail_line(fmt::format("contains a NUL byte (at byte {})", nul + 1));
    // simdjson reads a few bytes past the end: copy into a padded buffer, reused.
    thread_local std::string buffer;
    thread_local od::parser parser;
    buffer.assign(line);
    buffer.append(simdjson::SIMDJSON_PADDING, ' ');
    od::document doc;
    check_json(parser.iterate(buffer.data(), line.size(), buffer.size()).get(doc));

    // The whole object first: where it ends tells trailing text apart.
    od::object object;
    if (auto error = doc.get_object().get(object)) {
      if (error == simdjson::INCORRECT_TYPE) fail_line("not a JSON object");
      check_json(error);
    }
    std::string_view whole;
    check_json(object.raw_json().get(whole));
    const auto end =
        static_cast<std::size_t>(whole.data() - buffer.data()) + whole.size();
    whole = simdjson::trim(whole);
    if (whole.empty() || whole.back() != '}' ||
        line.find_first_not_of(" \t\r\n", end) != std::string_view::npos)
      fail_line("not valid JSON: text after the object");

    doc.rewind();
    check_json(doc.get_object().get(object));
    seen_.clear();
    for (auto result : object) {
      od::field field;
      check_json(std::move(result).get(field));
      std::string_view key_view;
      check_json(field.unescaped_key().get(key_view));
      std::string key(key_view);
      if (std::find(seen_.begin(), seen_.end(), key) != seen_.end())
        throw InvalidEvent(0, key, "appears twice");
      seen_.push_back(key);
      on_field(key, field.value());
    }
  }

  // Whether the object had `key`.
  bool has(std::string_view key) const {
    return std::find(seen_.begin(), seen_.end(), key) != seen_.end();
  }
  void require(const char* key) const {
    if (!has(key)) throw InvalidEvent(0, key, "is missing");
  }

  // The string value of `field`.
  std::string text(od::value& value, const std::string& field) const {
    std::string_view s;
    if (auto error = value.get_string().get(s)) {
      if (error == simdjson::INCORRECT_TYPE)
        throw InvalidEvent(0, field, "must be a string");
      check_json(error);
    }
    return std::string(s);
  }

  // A positive integer; with `digits_too`, also a string of decimal digits.
  std::int64_t positive(od::value& value, const std::string& field,
                        bool digits_too = false) const {
    constexpr const char* kReason = "must be a positive integer";
    od::json_type type{};
    check_json(value.type().get(type));
    std::int64_t n = 0;
    if (type == od::json_type::number) {
      if (value.get_int64().get(n) != simdjson::SUCCESS || n < 1)
        throw InvalidEvent(0, field, kReason);
      return n;
    }
    if (type == od::json_type::string && digits_too) {
      std::string s = text(value, field);
      auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), n);
      if (s.empty() || s.front() == '-' || error != std::errc() ||
          end != s.data() + s.size() || n < 1)
        throw InvalidEvent(0, field, kReason);
      return n;
    }
    throw InvalidEvent(0, field, kReason);
  }

  // The value's JSON text as the line gives it, without the white space around it.
  std::string raw(od::value& value) const {
    std::string_view s;
    check_json(simdjson::to_json_string(value).get(s));
    return std::string(s);
  }

  // The raw text of an object value.
  std::string raw_object(od::value& value, const std::string& field) const {
    od::json_type type{};
    check_json(value.type().get(type));
    if (type != od::json_type::object)
      throw InvalidEvent(0, field, "must be a JSON object");
    return raw(value);
  }

  std::string time(od::value& value, const std::string& field) const {
    std::string t = text(value, field);
    if (!detail::valid_time(t)) throw InvalidEvent(0, field, detail::kTimeFormat);
    return t;
  }

  // Any RFC 3339 date-time, stored in the store's form (UTC, milliseconds).
  std::string rfc3339_time(od::value& value, const std::string& field) const {
    const auto normalized = detail::normalize_rfc3339(text(value, field));
    if (!normalized) throw InvalidEvent(0, field, detail::kRfc3339Format);
    return *normalized;
  }

 private:
  [[noreturn]] void fail_line(const std::string& reason) const {
    throw InvalidEvent(0, what_, reason);
  }
  void check_json(simdjson::error_code error) const {
    if (error == simdjson::SUCCESS) return;
    if (error == simdjson::UTF8_ERROR) fail_line("not valid UTF-8");
    std::string_view message = simdjson::error_message(error);
    if (!message.empty() && message.back() == '.') message.remove_suffix(1);
    fail_line(fmt::format("not valid JSON: {}", message));
  }

  const char* what_;
  std::vector<std::string> seen_;
};

}  // namespace

Expected DecodedEvent::expected() const noexcept {
  return version ? Expected::exactly(*version - 1) : Expected::any();
}

namespace detail {

void append_envelope(std::string& out, const EnvelopeFields& e) {
  out.reserve(out.size() + 160 + e.data.size() + e.metadata.size());
  const auto append_number = [&](std::int64_t n) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, n);
    out.append(digits, r.ptr);
  };
  out += "{\"seq\":";
  append_number(e.seq);
  out += ",\"id\":";
  append_quoted(out, e.id);
  out += ",\"stream\":";
  append_quoted(out, e.stream);
  out += ",\"version\":";
  append_number(e.version);
  out += ",\"type\":";
  append_quoted(out, e.type);
  out += ",\"time\":";
  append_quoted(out, e.time);
  out += ",\"data\":";
  append_json_one_line(out, e.data);
  out += ",\"metadata\":";
  append_json_one_line(out, e.metadata);
  out += '}';
}

}  // namespace detail

void append_envelope(const Event& e, std::string& out) {
  detail::append_envelope(out, {e.seq, e.id, e.stream, e.version, e.type, e.time, e.data,
                                e.metadata});
}

std::string to_envelope(const Event& e) {
  std::string out;
  append_envelope(e, out);
  return out;
}

std::string to_cloudevent(const Event& e, std::string_view source) {
  if (source.empty()) throw InvalidArgument("to_cloudevent: the source is empty");
  std::string out;
  out.reserve(240 + source.size() + e.data.size() + 2 * e.metadata.size());
  out += "{\"specversion\":\"1.0\",\"id\":";
  append_quoted(out, e.id);
  out += ",\"source\":";
  append_quoted(out, source);
  out += ",\"type\":";
  append_quoted(out, e.type);
  out += ",\"subject\":";
  append_quoted(out, e.stream);
  out += ",\"time\":";
  append_quoted(out, e.time);
  out += ",\"datacontenttype\":\"application/json\",\"seq\":";
  out += std::to_string(e.seq);
  out += ",\"streamversion\":";
  out += std::to_string(e.version);
  if (e.metadata != "{}") {
    out += ",\"eventlitemetadata\":";
    out += nlohmann::json(e.metadata)
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  out += ",\"data\":";
  append_json_one_line(out, e.data);
  out += '}';
  return out;
}

std::string encode(const Event& e, PayloadFormat format, std::string_view source) {
  return format == PayloadFormat::envelope ? to_envelope(e) : to_cloudevent(e, source);
}

std::string store_source(std::string_view store_label) {
  return "eventlite://" + std::string(store_label);
}

DecodedEvent decode_envelope(std::string_view line) {
  DecodedEvent d;
  LineReader reader("envelope");
  reader.for_each_field(line, [&](const std::string& key, od::value& value) {
    if (key == "stream") {
      d.stream = reader.text(value, key);
    } else if (key == "type") {
      d.event.type = reader.text(value, key);
    } else if (key == "data") {
      d.event.data = reader.raw(value);
    } else if (key == "id") {
      d.event.id = reader.text(value, key);
    } else if (key == "metadata") {
      d.event.metadata = reader.raw_object(value, key);
    } else if (key == "version") {
      d.version = reader.positive(value, key);
    } else if (key == "seq") {
      d.seq = reader.positive(value, key);
    } else if (key == "time") {
      d.event.time = reader.time(value, key);
    } else {
      throw InvalidEvent(0, key, "unknown key");
    }
  });
  reader.require("stream");
  reader.require("type");
  reader.require("data");
  return d;
}

DecodedEvent decode_cloudevent(std::string_view line) {
  DecodedEvent d;
  LineReader reader("cloudevent");
  reader.for_each_field(line, [&](const std::string& key, od::value& value) {
    if (key == "specversion") {
      if (reader.text(value, key) != "1.0") throw InvalidEvent(0, key, "must be \"1.0\"");
    } else if (key == "id" || key == "source") {
      std::string s = reader.text(value, key);
      if (s.empty()) throw InvalidEvent(0, key, "must not be empty");
      if (key == "id") d.event.id = std::move(s);
    } else if (key == "type") {
      d.event.type = reader.text(value, key);
    } else if (key == "subject") {
      d.stream = reader.text(value, key);
    } else if (key == "time") {
      d.event.time = reader.rfc3339_time(value, key);
    } else if (key == "datacontenttype") {
      std::string type = reader.text(value, key);
      constexpr std::string_view kJson = "application/json";
      if (type.compare(0, kJson.size(), kJson) != 0 ||
          (type.size() > kJson.size() && type[kJson.size()] != ';'))
        throw InvalidEvent(0, key, "must be application/json");
    } else if (key == "data") {
      d.event.data = reader.raw(value);
    } else if (key == "data_base64") {
      throw InvalidEvent(0, key, "binary data is not supported: data must be JSON");
    } else if (key == "seq") {
      d.seq = reader.positive(value, key, /*digits_too=*/true);
    } else if (key == "streamversion") {
      d.version = reader.positive(value, key, /*digits_too=*/true);
    } else if (key == "eventlitemetadata") {
      d.event.metadata = reader.text(value, key);
    } else if (!nlohmann::json::accept(reader.raw(value))) {
      // Other attributes (dataschema, other producers' extensions) are not ours, but
      // the line is one JSON object only if they are JSON too: on-demand parsing
      // skips a value it does not read without looking inside.
      throw InvalidEvent(0, "cloudevent",
                         fmt::format("not valid JSON: the value of \"{}\"", key));
    }
  });
  reader.require("specversion");
  reader.require("id");
  reader.require("source");
  reader.require("type");
  if (!reader.has("subject")) throw InvalidEvent(0, "subject", "is missing (the stream)");
  reader.require("data");
  return d;
}

}  // namespace eventlite
