#pragma once

// What the fuzz targets share: stopping the run as a crash when an invariant does not
// hold, the input as text, a decoded line as a stored event, and a store that logs
// nothing.

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "eventlite/envelope.hpp"
#include "eventlite/event.hpp"
#include "eventlite/store.hpp"

namespace eventlite::fuzz {

// Aborts, which libFuzzer reports as a crash and saves the input of, when `ok` is
// false: the library broke a promise of its headers.
inline void require(bool ok, std::string_view what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// What decoding gives back of JSON text that an encoder wrote: the encoder turns line
// breaks into spaces (to keep the event on one line), the decoder drops the white
// space around the value.
inline std::string as_decoded(std::string_view text) {
  std::string s(text);
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// The stored event a decoded line stands for, to encode again: a seq and version of 1
// and a fixed time where the line gave none.
inline Event as_stored(const DecodedEvent& d) {
  Event e;
  e.seq = d.seq.value_or(1);
  e.id = d.event.id;
  e.stream = d.stream;
  e.version = d.version.value_or(1);
  e.type = d.event.type;
  e.data = d.event.data;
  e.metadata = d.event.metadata;
  e.time = d.event.time.empty() ? "2026-11-23T10:00:00.123Z" : d.event.time;
  return e;
}

// A fresh in-memory store whose log goes nowhere: a million runs must not fill the
// terminal with warnings.
inline Store quiet_store(StoreOptions options = {}) {
  options.logger = std::make_shared<spdlog::logger>(
      "fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
  return Store::open(":memory:", std::move(options));
}

}  // namespace eventlite::fuzz
