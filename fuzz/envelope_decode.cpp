// Fuzzes decode_envelope() (include/eventlite/envelope.hpp): the input is one line.
// It must decode or throw InvalidEvent, nothing else. What it decodes must be in the
// shape the header promises, and, when its data and metadata are valid JSON (the
// decoder leaves them to the store), survive the trip through to_envelope() and a
// second decode unchanged (data and metadata byte for byte, but for line breaks,
// which the encoder turns into spaces).

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "fuzz/fuzz_support.hpp"
#include "store/time_text.hpp"

using namespace eventlite;
using eventlite::fuzz::as_stored;
using eventlite::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  DecodedEvent d;
  try {
    d = decode_envelope(fuzz::as_text(bytes, size));
  } catch (const InvalidEvent& e) {
    require(!e.reason().empty(), "an InvalidEvent says what is wrong");
    return 0;
  }
  require(!d.version || *d.version >= 1, "a decoded version is positive");
  require(!d.seq || *d.seq >= 1, "a decoded seq is positive");
  require(!d.event.data.empty() && d.event.metadata.starts_with('{'),
          "decoded data is a value's text, metadata an object's");
  require(d.event.time.empty() || detail::valid_time(d.event.time),
          "a decoded time is in the store's form");

  // Decoding leaves the content of data and metadata to the store's check on append:
  // only what that check can let through is an event the encoder may meet.
  const auto data = nlohmann::json::parse(d.event.data, nullptr, false);
  const auto metadata = nlohmann::json::parse(d.event.metadata, nullptr, false);
  if (data.is_discarded() || metadata.is_discarded()) return 0;
  require(metadata.is_object(), "decoded metadata is an object");

  // Then the line is a JSON object with just these fields: a malformed line never
  // passes for an event.
  const auto given = nlohmann::json::parse(fuzz::as_text(bytes, size), nullptr, false);
  require(given.is_object(), "a line that decodes is a JSON object");
  const auto text = [&](const char* key) {
    return given.contains(key) ? given[key].get<std::string>() : std::string();
  };
  require(text("stream") == d.stream && text("type") == d.event.type &&
              text("id") == d.event.id && text("time") == d.event.time,
          "the decoded names, id and time are the line's");
  require(given["data"] == data &&
              (given.contains("metadata") ? given["metadata"]
                                          : nlohmann::json::object()) == metadata,
          "the decoded data and metadata are the line's");
  require((d.version ? given["version"] == *d.version : !given.contains("version")) &&
              (d.seq ? given["seq"] == *d.seq : !given.contains("seq")),
          "the decoded version and seq are the line's");

  const Event e = as_stored(d);
  const std::string line = to_envelope(e);
  require(line.find_first_of("\n\r") == std::string::npos, "an envelope is one line");
  DecodedEvent again;
  try {
    again = decode_envelope(line);
  } catch (const InvalidEvent& error) {
    std::fprintf(stderr, "%s\n%s\n", error.what(), line.c_str());
    require(false, "the envelope of a decoded event decodes");
  }
  require(again.stream == e.stream && again.event.type == e.type &&
              again.event.id == e.id && again.event.time == e.time,
          "names, id and time survive the round trip");
  require(again.event.data == fuzz::as_decoded(e.data) &&
              again.event.metadata == fuzz::as_decoded(e.metadata),
          "data and metadata survive the round trip byte for byte");
  require(again.version == e.version && again.seq == e.seq,
          "version and seq survive the round trip");
  return 0;
}
