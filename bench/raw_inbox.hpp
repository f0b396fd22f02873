#pragma once

// The bridge figures' baseline side of the file (figures 14 and 16): envelopes parsed
// with simdjson and their fields inserted with a prepared statement, one BEGIN
// IMMEDIATE ... COMMIT per batch, durability full; versions kept in memory, no id
// check. What a hand-written bridge would do at the least.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "bench/raw_sqlite.hpp"

namespace eventlite::bench {

// Thread safety: one thread at a time.
class RawInbox {
 public:
  // Creates eventlite's schema in the new file `path`.
  explicit RawInbox(const std::filesystem::path& path);
  ~RawInbox();
  RawInbox(const RawInbox&) = delete;
  RawInbox& operator=(const RawInbox&) = delete;

  void begin() { begin_.run(); }
  // Throws if `envelope` is not a JSON object.
  void insert(std::string_view envelope);
  void commit() { commit_.run(); }

 private:
  RawDb db_;
  Statement begin_, commit_, insert_;
  std::unordered_map<std::string, std::int64_t> versions_;
  struct Parser;  // simdjson's, kept out of this header
  std::unique_ptr<Parser> parser_;
};

}  // namespace eventlite::bench
