#include "tools/input.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "tools/error.hpp"

namespace eventlite::cli {
namespace {

using Json = nlohmann::ordered_json;  // keeps the keys in the order given

// Keys a batch line may hold. "seq" and "time" come with `eventlite read` output.
constexpr std::array<std::string_view, 8> kBatchKeys = {
    "stream", "type", "data", "id", "metadata", "version", "seq", "time"};

// Deeper JSON is refused before it is re-serialised: dump() recurses once per level.
// SQLite's own parser (the store's check) stops at 2000.
constexpr int kMaxDepth = 1000;

class TooDeep : public std::runtime_error {
 public:
  TooDeep()
      : std::runtime_error(fmt::format("nested deeper than {} levels", kMaxDepth)) {}
};

// Parses `text`, refusing nesting deeper than kMaxDepth. Throws json::parse_error or
// TooDeep.
Json parse_limited(std::string_view text) {
  return Json::parse(text, [](int depth, Json::parse_event_t, Json&) {
    if (depth > kMaxDepth) throw TooDeep();
    return true;
  });
}

// nlohmann's message without its "[json.exception...] parse error at ...: " prefix.
std::string_view parse_error_detail(const nlohmann::json::parse_error& error) {
  std::string_view text = error.what();
  if (auto end = text.find("] "); end != std::string_view::npos) {
    text.remove_prefix(end + 2);
  }
  if (auto colon = text.find(": "); colon != std::string_view::npos) {
    text.remove_prefix(colon + 2);
  }
  return text;
}

// An error about line `line` of a batch.
CommandError line_error(std::size_t line, std::string_view reason) {
  return CommandError(kExitError, fmt::format("line {}: {}", line, reason));
}

std::string required_string(const Json& object, const char* key, std::size_t line) {
  auto it = object.find(key);
  if (it == object.end()) throw line_error(line, fmt::format("\"{}\" is missing", key));
  if (!it->is_string()) {
    throw line_error(line, fmt::format("\"{}\" must be a string", key));
  }
  return it->get<std::string>();
}

BatchEvent parse_line(std::string_view text, std::size_t line) {
  Json object;
  try {
    object = parse_limited(text);
  } catch (const nlohmann::json::parse_error& error) {
    throw line_error(line, fmt::format("not valid JSON at byte {}: {}", error.byte,
                                       parse_error_detail(error)));
  } catch (const TooDeep& error) {
    throw line_error(line, error.what());
  }
  if (!object.is_object()) throw line_error(line, "not a JSON object");
  for (const auto& item : object.items()) {
    if (std::find(kBatchKeys.begin(), kBatchKeys.end(), item.key()) == kBatchKeys.end()) {
      throw line_error(line, fmt::format("unknown key \"{}\"", item.key()));
    }
  }

  BatchEvent result;
  result.line = line;
  result.stream = required_string(object, "stream", line);
  result.event.type = required_string(object, "type", line);
  auto data = object.find("data");
  if (data == object.end()) throw line_error(line, "\"data\" is missing");
  result.event.data = data->dump();
  if (object.contains("id")) result.event.id = required_string(object, "id", line);
  if (auto metadata = object.find("metadata"); metadata != object.end()) {
    result.event.metadata = metadata->dump();
  }
  if (auto version = object.find("version"); version != object.end()) {
    if (!version->is_number_integer() || version->get<std::int64_t>() < 1) {
      throw line_error(line, "\"version\" must be an integer of at least 1");
    }
    result.expected = Expected::exactly(version->get<std::int64_t>() - 1);
  }
  return result;
}

bool is_blank(std::string_view text) {
  return text.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

std::string read_input(const std::string& path) {
  std::ostringstream content;
  if (path == "-") {
    content << std::cin.rdbuf();
    if (std::cin.bad()) throw CommandError(kExitError, "cannot read stdin");
    return std::move(content).str();
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw CommandError(kExitError,
                       fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  }
  content << file.rdbuf();
  if (file.bad()) throw CommandError(kExitError, fmt::format("cannot read {}", path));
  return std::move(content).str();
}

std::string compact_json(std::string_view text, std::string_view what) {
  try {
    return parse_limited(text).dump();
  } catch (const nlohmann::json::parse_error& error) {
    throw CommandError(
        kExitError, fmt::format("{} is not valid JSON at byte {}: {}", what, error.byte,
                                parse_error_detail(error)));
  } catch (const TooDeep& error) {
    throw CommandError(kExitError, fmt::format("{} is {}", what, error.what()));
  }
}

std::vector<BatchEvent> parse_jsonl(std::string_view text) {
  std::vector<BatchEvent> events;
  std::size_t line = 0;
  while (!text.empty()) {
    ++line;
    auto end = text.find('\n');
    std::string_view current = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (!is_blank(current)) events.push_back(parse_line(current, line));
  }
  return events;
}

}  // namespace eventlite::cli
