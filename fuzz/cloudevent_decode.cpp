// Fuzzes decode_cloudevent() (include/eventlite/envelope.hpp): the input is one line.
// It must decode or throw InvalidEvent, nothing else. What it decodes must be in the
// shape the header promises, and, when its data is valid JSON (the decoder leaves it
// to the store), survive to_cloudevent() and a second decode, and to_envelope() and
// decode_envelope() (metadata an object), unchanged.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "fuzz/fuzz_support.hpp"
#include "store/time_text.hpp"

using namespace eventlite;
using eventlite::fuzz::as_stored;
using eventlite::fuzz::require;

namespace {

template <class Decode>
DecodedEvent decode_again(Decode decode, const std::string& line) {
  try {
    return decode(line);
  } catch (const InvalidEvent& error) {
    std::fprintf(stderr, "%s\n%s\n", error.what(), line.c_str());
    require(false, "the encoding of a decoded event decodes");
  }
  return {};
}

// `metadata_as_text`: the CloudEvent carries metadata as a string, kept exactly; the
// envelope carries it as JSON.
void require_same(const Event& e, const DecodedEvent& again, bool metadata_as_text,
                  const char* how) {
  require(again.stream == e.stream && again.event.type == e.type &&
              again.event.id == e.id && again.event.time == e.time,
          how);
  require(again.event.data == fuzz::as_decoded(e.data) &&
              again.event.metadata ==
                  (metadata_as_text ? e.metadata : fuzz::as_decoded(e.metadata)),
          how);
  require(again.version == e.version && again.seq == e.seq, how);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  DecodedEvent d;
  try {
    d = decode_cloudevent(fuzz::as_text(bytes, size));
  } catch (const InvalidEvent& e) {
    require(!e.reason().empty(), "an InvalidEvent says what is wrong");
    return 0;
  }
  require(!d.event.id.empty(), "a CloudEvent has an id");
  require(!d.version || *d.version >= 1, "a decoded streamversion is positive");
  require(!d.seq || *d.seq >= 1, "a decoded seq is positive");
  require(!d.event.data.empty(), "decoded data is a JSON value's text");
  require(d.event.time.empty() || detail::valid_time(d.event.time),
          "a decoded time is in the store's form");

  // Decoding leaves the content of data to the store's check on append: only what
  // that check can let through is an event the encoders may meet.
  const auto data = nlohmann::json::parse(d.event.data, nullptr, false);
  if (data.is_discarded()) return 0;

  // Then the line is a JSON object with these attributes: a malformed line never
  // passes for an event.
  const auto line = nlohmann::json::parse(fuzz::as_text(bytes, size), nullptr, false);
  require(line.is_object(), "a line that decodes is a JSON object");
  require(line["id"] == d.event.id && line["subject"] == d.stream &&
              line["type"] == d.event.type && line["data"] == data,
          "the decoded id, stream, type and data are the line's");
  if (line.contains("time")) {
    const auto given = line["time"].is_string()
                           ? detail::normalize_rfc3339(line["time"].get<std::string>())
                           : std::nullopt;
    require(given && *given == d.event.time,
            "the decoded time is the line's, in the store's form");
  } else {
    require(d.event.time.empty(), "no time in the line, none decoded");
  }

  const Event e = as_stored(d);

  const std::string cloudevent = to_cloudevent(e, "eventlite://fuzz");
  require(cloudevent.find_first_of("\n\r") == std::string::npos,
          "a CloudEvent is one line");
  require_same(e, decode_again(decode_cloudevent, cloudevent), true,
               "a CloudEvent survives to_cloudevent and decode_cloudevent");

  // The envelope wants metadata as an object; eventlitemetadata is any string.
  const nlohmann::json metadata = nlohmann::json::parse(e.metadata, nullptr, false);
  if (metadata.is_object()) {
    require_same(e, decode_again(decode_envelope, to_envelope(e)), false,
                 "a CloudEvent survives to_envelope and decode_envelope");
  }
  return 0;
}
