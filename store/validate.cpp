// Appending's checks of an event's content (store/append.hpp's validate()): names,
// sizes, UTF-8, NUL bytes, JSON, a given time. simdjson checks a payload first; what it
// refuses goes to nlohmann's parser, which decides and words the error.

#include "store/append.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <nlohmann/json.hpp>

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

}  // namespace

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

}  // namespace eventlite::detail
