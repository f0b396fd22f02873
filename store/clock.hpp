#pragma once

#include <chrono>
#include <string>

#include "store/time_text.hpp"

namespace eventlite::detail {

// Now, as format_time() writes it: the commit time of appended events.
inline std::string now_text() {
  return format_time(std::chrono::system_clock::now());
}

}  // namespace eventlite::detail
