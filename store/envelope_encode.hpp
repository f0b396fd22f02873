#pragma once

// The envelope encoder on plain fields, for paths that encode straight from a row
// (export) without an Event in between.

#include <cstdint>
#include <string>
#include <string_view>

namespace eventlite::detail {

struct EnvelopeFields {
  std::int64_t seq;
  std::string_view id, stream;
  std::int64_t version;
  std::string_view type, time, data, metadata;
};

// Appends the envelope of `e` to `out`, as eventlite::to_envelope() writes it.
void append_envelope(std::string& out, const EnvelopeFields& e);

}  // namespace eventlite::detail
