#pragma once

#include <chrono>
#include <string>

namespace eventlite::detail {

// `t` as UTC ISO-8601 with milliseconds: 2026-11-23T10:00:00.123Z.
std::string format_time(std::chrono::system_clock::time_point t);
inline std::string now_text() {
  return format_time(std::chrono::system_clock::now());
}

}  // namespace eventlite::detail
