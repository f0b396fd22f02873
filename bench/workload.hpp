#pragma once

// The data every figure writes and reads, the same for eventlite and the baseline:
// 1,000 streams "stream-N", 5 event types, 200-byte JSON payloads, metadata "{}".
// Event n of a run has type(n) and data(n). Everything is built before any timing.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eventlite/event.hpp"

namespace eventlite::bench {

class Workload {
 public:
  static constexpr std::size_t kStreams = 1000;
  static constexpr std::size_t kTypes = 5;
  static constexpr std::size_t kPayloads = 64;
  static constexpr std::size_t kPayloadBytes = 200;
  // type(n) and data(n) repeat with this period.
  static constexpr std::size_t kCycle = kTypes * kPayloads;

  Workload();

  const std::string& stream(std::size_t n) const { return streams_[n % kStreams]; }
  const std::string& type(std::size_t n) const { return types_[n % kTypes]; }
  const std::string& data(std::size_t n) const { return payloads_[n % kPayloads]; }
  const std::string& metadata() const { return metadata_; }

  // Events 0..count-1 for Store::append, with empty ids: the store generates UUID v7
  // ids with new_event_id(), as the baseline does in its timed loop.
  std::vector<NewEvent> new_events(std::size_t count) const;

 private:
  std::vector<std::string> streams_;
  std::vector<std::string> types_;
  std::vector<std::string> payloads_;
  std::string metadata_ = "{}";
};

// The current UTC time as ISO-8601 text with milliseconds (2026-11-23T10:00:00.123Z),
// written into `buf`, which the returned view points into.
std::string_view utc_now(std::array<char, 64>& buf);

// Folds every field of every event read into a sum, so that no read can be optimized
// away and both sides can be checked to have read the same data.
struct Checksum {
  std::uint64_t events = 0;
  std::uint64_t sum = 0;

  void add(const Event& e) noexcept;
  bool operator==(const Checksum&) const = default;
};

}  // namespace eventlite::bench
