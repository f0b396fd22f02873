#pragma once

// The wire format: one event as one line of JSON, both ways. Two shapes:
//
// - The envelope (DESIGN.md), keys in this order:
//     {"seq":17,"id":"…","stream":"user-42","version":3,"type":"UserCreated",
//      "time":"2026-11-23T10:00:00.123Z","data":{…},"metadata":{…}}
//   The CLI's `read` prints it; `append --jsonl` and import read it.
//
// - CloudEvents 1.0, structured JSON mode:
//     {"specversion":"1.0","id":"…","source":"…","type":"UserCreated",
//      "subject":"user-42","time":"2026-11-23T10:00:00.123Z",
//      "datacontenttype":"application/json","seq":17,"streamversion":3,
//      "eventlitemetadata":"{\"user\":\"alice\"}","data":{…}}
//   subject is the stream; seq and streamversion are extension attributes (JSON
//   integers); metadata travels in the extension attribute eventlitemetadata as a
//   string holding the metadata's JSON text (CloudEvents attributes cannot hold
//   objects), left out when the metadata is {}.
//
// Encoding writes data and metadata as stored, byte for byte (line breaks between
// JSON tokens become spaces, so that the event fits on one line). Decoding keeps
// them as the line gives them, byte for byte: numbers such as 12345678901234567.89
// are never rewritten. It checks the line's own shape (a JSON object, its keys, the
// types of its fields) and leaves the content of data and metadata to the store,
// which checks it on append (InvalidEvent "data" or "metadata").
//
// Thread safety: free functions on values; safe from any thread.

#include <optional>
#include <string>
#include <string_view>

#include "eventlite/event.hpp"

namespace eventlite {

// One event read from the wire: the stream it belongs to, the event to append, and
// the positions the line gave, if any.
// Thread safety: a value; copies are independent.
struct DecodedEvent {
  std::string stream = {};
  NewEvent event = {};                  // its time is the line's "time", or empty
  std::optional<Version> version = {};  // the event's version in its stream, >= 1
  std::optional<Seq> seq = {};          // its seq in the store it came from, >= 1

  // What appending it in order expects: the stream at version - 1 when the line gave
  // a version (an import that keeps every version), Expected::any() otherwise.
  Expected expected() const noexcept;
};

// The envelope of `event`: keys in the order seq, id, stream, version, type, time,
// data, metadata. No trailing newline.
std::string to_envelope(const Event& event);
// The same, appended to `out` (its capacity reused: no allocation per event once it
// has grown).
void append_envelope(const Event& event, std::string& out);

// `event` as CloudEvents 1.0 structured JSON (above), from `source`, a URI-reference
// naming the store, e.g. "eventlite://billing". No trailing newline. Throws
// InvalidArgument if `source` is empty.
std::string to_cloudevent(const Event& event, std::string_view source);

// What a sink sends as each message's body.
enum class PayloadFormat {
  envelope,     // the envelope (to_envelope)
  cloudevents,  // CloudEvents 1.0 structured JSON (to_cloudevent)
};

// `event` in `format`; `source` is the CloudEvents source (unused for the envelope).
// Throws InvalidArgument for CloudEvents with an empty source.
std::string encode(const Event& event, PayloadFormat format, std::string_view source);

// The CloudEvents source that names a store: "eventlite://" + its name, or its id
// when it has no name (StoreIdentity::label()).
std::string store_source(std::string_view store_label);

// Decodes an envelope line: "stream", "type" and "data" are required; "id",
// "metadata" (an object), "version", "seq" and "time" are optional, so both the
// `append --jsonl` shape {"stream","type","data"[,"id","metadata","version"]} and
// whole envelopes are accepted. White space around the object is allowed; any other
// key, a key given twice or anything after the object is refused. Throws
// InvalidEvent naming the field and what is wrong with it ("version": "must be a
// positive integer"); for a line that is not one JSON object (malformed, a NUL byte,
// trailing text) the field is "envelope".
DecodedEvent decode_envelope(std::string_view line);

// Decodes a CloudEvents 1.0 structured JSON line: "specversion" must be "1.0";
// "id", "source", "type" and "subject" (the stream) are required strings; "data" is
// required (data_base64 is refused); "datacontenttype", if given, must be
// application/json; "time", if given, is any RFC 3339 date-time (2026-11-23T10:00:00Z,
// 2026-11-23T11:00:00.123456+01:00) and is stored in the store's form, in UTC to the
// millisecond (2026-11-23T10:00:00.123Z); "seq" and "streamversion" are positive integers
// (or strings of decimal digits, as some SDKs write extensions); "eventlitemetadata" is
// a string holding a JSON object. Other attributes (dataschema, other extensions)
// are ignored, once their values are found to be JSON. Throws InvalidEvent naming
// the attribute; for a line that is not one JSON object (a malformed value of an
// ignored attribute included) the field is "cloudevent".
DecodedEvent decode_cloudevent(std::string_view line);

}  // namespace eventlite
