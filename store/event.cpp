#include "eventlite/event.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace eventlite {

NewEvent make_event(std::string type, const nlohmann::json& data) {
  return NewEvent{
      .type = std::move(type), .data = data.dump(), .metadata = "{}", .id = {}};
}

NewEvent make_event(std::string type, const nlohmann::json& data,
                    const nlohmann::json& metadata) {
  return NewEvent{.type = std::move(type),
                  .data = data.dump(),
                  .metadata = metadata.dump(),
                  .id = {}};
}

nlohmann::json Event::data_json() const {
  return nlohmann::json::parse(data);
}
nlohmann::json Event::metadata_json() const {
  return nlohmann::json::parse(metadata);
}

namespace {

void append_quoted(std::string& out, const std::string& s) {
  // Ids, streams, types and times are plain text in practice; escape only if needed.
  bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x80 && c != '"' && c != '\\';
  });
  if (plain) {
    out += '"';
    out += s;
    out += '"';
  } else {
    out +=
        nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

// Stored JSON is valid (the schema checks it) but may span lines. Outside strings,
// line breaks can only be white space, and inside strings they cannot appear raw, so
// replacing them keeps the text valid and equal while fitting it on one line.
void append_json_one_line(std::string& out, const std::string& json) {
  std::size_t start = out.size();
  out += json;
  std::replace_if(
      out.begin() + static_cast<std::ptrdiff_t>(start), out.end(),
      [](char c) { return c == '\n' || c == '\r'; }, ' ');
}

}  // namespace

std::string to_envelope(const Event& e) {
  std::string out;
  out.reserve(160 + e.data.size() + e.metadata.size());
  out += "{\"seq\":";
  out += std::to_string(e.seq);
  out += ",\"id\":";
  append_quoted(out, e.id);
  out += ",\"stream\":";
  append_quoted(out, e.stream);
  out += ",\"version\":";
  out += std::to_string(e.version);
  out += ",\"type\":";
  append_quoted(out, e.type);
  out += ",\"time\":";
  append_quoted(out, e.time);
  out += ",\"data\":";
  append_json_one_line(out, e.data);
  out += ",\"metadata\":";
  append_json_one_line(out, e.metadata);
  out += '}';
  return out;
}

bool Expected::holds(Version actual) const noexcept {
  switch (kind_) {
    case Kind::any: return true;
    case Kind::no_stream: return actual == 0;
    case Kind::exactly: return actual == version_;
  }
  return false;
}

std::string Expected::to_string() const {
  switch (kind_) {
    case Kind::any: return "any";
    case Kind::no_stream: return "no stream";
    case Kind::exactly: return std::to_string(version_);
  }
  return "?";
}

}  // namespace eventlite
