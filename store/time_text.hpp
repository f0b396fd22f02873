#pragma once

// Times as the store writes them: UTC ISO-8601 with milliseconds, always 24
// characters (2026-11-23T10:00:00.123Z), so that comparing the text compares the
// times. The one place that formats and parses that text.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace eventlite::detail {

// `t` as 2026-11-23T10:00:00.123Z (truncated to the millisecond).
std::string format_time(std::chrono::system_clock::time_point t);

// The time that `text` names, if it is exactly in format_time()'s form: four-digit
// year, a real calendar date, hours 00-23, minutes and seconds 00-59, three digits of
// milliseconds and "Z". nullopt otherwise (another offset, other precision, a leap
// second, white space).
std::optional<std::chrono::system_clock::time_point> parse_time_text(
    std::string_view text);

// Whether parse_time_text() accepts `text`.
inline bool valid_time(std::string_view text) {
  return parse_time_text(text).has_value();
}

// What a malformed time is told, e.g. as an InvalidEvent's reason.
inline constexpr const char* kTimeFormat =
    "must be UTC ISO-8601 with milliseconds, like 2026-11-23T10:00:00.123Z";

}  // namespace eventlite::detail
