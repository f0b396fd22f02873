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

// An RFC 3339 date-time (what CloudEvents' `time` holds) in format_time()'s form:
// 2026-11-23T10:00:00Z, 2026-11-23T11:00:00.5+01:00, 2026-11-23t10:00:00.123456789z;
// any number of fraction digits (truncated to the millisecond), an offset of "Z" or
// +-HH:MM (moved to UTC). nullopt for anything else, a leap second (:60) included, and
// for a time with an offset outside the clock's years (1678 to 2261). A UTC time is
// rewritten as text, never through the clock: year 9999 stays year 9999.
std::optional<std::string> normalize_rfc3339(std::string_view text);

// What a malformed RFC 3339 time is told.
inline constexpr const char* kRfc3339Format =
    "must be an RFC 3339 date-time, like 2026-11-23T10:00:00Z or "
    "2026-11-23T11:00:00.123+01:00";

// Whether parse_time_text() accepts `text`.
inline bool valid_time(std::string_view text) {
  return parse_time_text(text).has_value();
}

// What a malformed time is told, e.g. as an InvalidEvent's reason.
inline constexpr const char* kTimeFormat =
    "must be UTC ISO-8601 with milliseconds, like 2026-11-23T10:00:00.123Z";

}  // namespace eventlite::detail
