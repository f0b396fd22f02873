#include "bench/raw_inbox.hpp"

#include <simdjson.h>

#include <stdexcept>

namespace eventlite::bench {

struct RawInbox::Parser {
  simdjson::ondemand::parser parser;
};

namespace {

// A value's JSON text, as the envelope gives it.
std::string_view to_json(simdjson::simdjson_result<simdjson::ondemand::value> value) {
  std::string_view s;
  if (simdjson::to_json_string(value).get(s) != simdjson::SUCCESS)
    throw std::runtime_error("the raw bridge got an envelope that is not JSON");
  return s;
}

const std::filesystem::path& with_schema(const std::filesystem::path& path) {
  create_schema(path);
  return path;
}

}  // namespace

RawInbox::RawInbox(const std::filesystem::path& path)
    : db_(with_schema(path), RawDb::Sync::full),
      begin_(db_.get(), "BEGIN IMMEDIATE"),
      commit_(db_.get(), "COMMIT"),
      insert_(db_.get(),
              "INSERT INTO eventlite_events (id, stream, version, type, data, metadata, "
              "time) VALUES (?, ?, ?, ?, ?, ?, ?)"),
      parser_(std::make_unique<Parser>()) {}

RawInbox::~RawInbox() = default;

void RawInbox::insert(std::string_view envelope) {
  simdjson::padded_string json(envelope.data(), envelope.size());
  auto doc = parser_->parser.iterate(json);
  auto object = doc.get_object();
  std::string_view id, stream, type, time, data, metadata;
  for (auto field : object) {
    const std::string_view key = field.unescaped_key();
    if (key == "id")
      id = field.value().get_string();
    else if (key == "stream")
      stream = field.value().get_string();
    else if (key == "type")
      type = field.value().get_string();
    else if (key == "time")
      time = field.value().get_string();
    else if (key == "data")
      data = to_json(field.value());
    else if (key == "metadata")
      metadata = to_json(field.value());
  }
  const std::string stream_text(stream);
  insert_.bind(1, id);
  insert_.bind(2, stream_text);
  insert_.bind(3, ++versions_[stream_text]);
  insert_.bind(4, type);
  insert_.bind(5, data);
  insert_.bind(6, metadata);
  insert_.bind(7, time);
  insert_.run();
}

}  // namespace eventlite::bench
