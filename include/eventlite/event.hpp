#pragma once

// Events as they are appended (NewEvent) and as they are stored (Event), and the
// expected version of an append. The wire format's envelope is in envelope.hpp.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace eventlite {

// Global position in the store: strictly increasing, gap-free, 1-based.
using Seq = std::int64_t;
// Position within a stream, 1-based; 0 means "no event yet".
using Version = std::int64_t;

// An event to append. `data` and `metadata` are JSON text, stored byte for byte as
// given once checked; `data` may be any JSON value, `metadata` must be an object. An
// empty `id` gets a fresh UUID v7; give your own id (new_event_id()) to make retries
// idempotent. An empty `time` gets the commit time; an imported or bridged event
// gives its original time, in the store's form (UTC ISO-8601 with milliseconds,
// exactly like 2026-11-23T10:00:00.123Z), or the append throws InvalidEvent "time".
//
// Idempotency: re-appending a stored id is a no-op when stream, type, data and
// metadata are the same (JSON-equal) and, if this event gives a time, the stored
// time is that time; otherwise IdConflict. So a re-import of the same events is a
// no-op, and a retry without a time matches whatever time the first try got.
// Thread safety: a value; copies are independent.
struct NewEvent {
  std::string type = {};
  std::string data = "{}";
  std::string metadata = "{}";
  std::string id = {};
  std::string time = {};
};

// A NewEvent from JSON values.
NewEvent make_event(std::string type, const nlohmann::json& data);
NewEvent make_event(std::string type, const nlohmann::json& data,
                    const nlohmann::json& metadata);

// A stored event, columns of eventlite_events.
// Thread safety: a value; copies are independent.
struct Event {
  Seq seq = 0;
  std::string id = {};
  std::string stream = {};
  Version version = 0;
  std::string type = {};
  std::string data = {};      // JSON text, as appended
  std::string metadata = {};  // JSON object text
  std::string time = {};      // UTC ISO-8601 with milliseconds: 2026-11-23T10:00:00.123Z

  // Parses data / metadata. Throws nlohmann::json::parse_error only if the file was
  // edited behind eventlite's back (the store checks both before inserting).
  nlohmann::json data_json() const;
  nlohmann::json metadata_json() const;

  bool operator==(const Event&) const = default;
};

// What an append expects the stream's version to be.
// Thread safety: a value.
class Expected {
 public:
  enum class Kind { any, no_stream, exactly };

  // Append whatever the stream's version.
  static Expected any() noexcept { return Expected(Kind::any, 0); }
  // The stream must have no events.
  static Expected no_stream() noexcept { return Expected(Kind::no_stream, 0); }
  // The stream's version must be `version` (0 is the same as no_stream()).
  static Expected exactly(Version version) noexcept {
    return Expected(Kind::exactly, version);
  }

  Kind kind() const noexcept { return kind_; }
  Version version() const noexcept { return version_; }
  // Whether a stream at `actual` satisfies this expectation.
  bool holds(Version actual) const noexcept;
  // "any", "no stream" or the number.
  std::string to_string() const;

  bool operator==(const Expected&) const = default;

 private:
  Expected(Kind kind, Version version) noexcept : kind_(kind), version_(version) {}
  Kind kind_;
  Version version_;
};

// A fresh UUID v7 (time-ordered; monotonic within this thread), as 36 characters.
// Thread safety: safe from any thread; safe across fork().
std::string new_event_id();

}  // namespace eventlite
