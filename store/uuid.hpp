#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <string>

namespace eventlite::detail {

// Generates UUID v7 (RFC 9562): 48 bits of Unix milliseconds, then a 12-bit counter
// that keeps ids from one generator strictly increasing within a millisecond (method
// 1 of the RFC), then 62 random bits. Seeded from the OS and re-seeded in a child
// after fork(), so parent and child never share a sequence.
// Thread safety: one thread at a time.
class UuidV7 {
 public:
  UuidV7();
  // Writes 36 characters into `out`, reusing its capacity.
  void next(std::string& out);
  std::string next() {
    std::string s;
    next(s);
    return s;
  }

 private:
  void reseed();
  std::mt19937_64 rng_;
  std::uint64_t fork_generation_ = 0;
  std::uint64_t last_ms_ = 0;
  std::uint32_t counter_ = 0;
};

}  // namespace eventlite::detail
