#include "store/time_text.hpp"

#include <fmt/format.h>

#include <ctime>

namespace eventlite::detail {

std::string format_time(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  auto secs = static_cast<std::time_t>(ms / 1000);
  auto millis = static_cast<int>(ms % 1000);
  if (millis < 0) {
    millis += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

std::optional<std::chrono::system_clock::time_point> parse_time_text(
    std::string_view text) {
  // 2026-11-23T10:00:00.123Z
  // 0123456789012345678901234
  if (text.size() != 24 || text[4] != '-' || text[7] != '-' || text[10] != 'T' ||
      text[13] != ':' || text[16] != ':' || text[19] != '.' || text[23] != 'Z')
    return std::nullopt;
  bool ok = true;
  auto number = [&](std::size_t at, std::size_t digits) {
    int value = 0;
    for (std::size_t i = at; i < at + digits; ++i) {
      if (text[i] < '0' || text[i] > '9') ok = false;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  const int year = number(0, 4), month = number(5, 2), day = number(8, 2);
  const int hour = number(11, 2), minute = number(14, 2), second = number(17, 2);
  const int millis = number(20, 3);
  if (!ok || hour > 23 || minute > 59 || second > 59) return std::nullopt;
  using namespace std::chrono;
  const year_month_day date{std::chrono::year(year),
                            std::chrono::month(static_cast<unsigned>(month)),
                            std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok()) return std::nullopt;
  const sys_time<milliseconds> t = sys_days(date) + hours(hour) + minutes(minute) +
                                   seconds(second) + milliseconds(millis);
  // The clock counts nanoseconds in 64 bits, up to the year 2262: a later time (a
  // lease "until 2999") is the clock's end, not an overflow.
  using Clock = std::chrono::system_clock;
  const auto last = time_point_cast<milliseconds>(Clock::time_point::max());
  const auto first = time_point_cast<milliseconds>(Clock::time_point::min());
  if (t >= last) return Clock::time_point::max();
  if (t <= first) return Clock::time_point::min();
  return Clock::time_point(t);
}

std::optional<std::string> normalize_rfc3339(std::string_view text) {
  // 2026-11-23T10:00:00[.fff...](Z|+hh:mm)
  // 0123456789012345678
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':')
    return std::nullopt;
  bool ok = true;
  auto number = [&](std::size_t at, std::size_t digits) {
    int value = 0;
    for (std::size_t i = at; i < at + digits; ++i) {
      if (i >= text.size() || text[i] < '0' || text[i] > '9') {
        ok = false;
        return 0;
      }
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  std::string canonical(text.substr(0, 19));
  canonical[10] = 'T';
  std::size_t at = 19;
  int millis = 0;
  if (at < text.size() && text[at] == '.') {
    std::size_t digits = 0;
    for (++at; at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at, ++digits)
      if (digits < 3) millis = millis * 10 + (text[at] - '0');
    if (digits == 0) return std::nullopt;
    for (; digits < 3; ++digits) millis *= 10;
  }
  int offset_minutes = 0;
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    ++at;
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    const int sign = text[at] == '-' ? -1 : 1;
    if (at + 6 != text.size() || text[at + 3] != ':') return std::nullopt;
    const int oh = number(at + 1, 2), om = number(at + 4, 2);
    if (!ok || oh > 23 || om > 59) return std::nullopt;
    offset_minutes = sign * (oh * 60 + om);
    at += 6;
  } else {
    return std::nullopt;
  }
  if (at != text.size()) return std::nullopt;
  canonical += fmt::format(".{:03}Z", millis);
  const auto local = parse_time_text(canonical);  // checks the date and the clock
  if (!ok || !local) return std::nullopt;
  if (offset_minutes == 0) return canonical;
  using Clock = std::chrono::system_clock;
  if (*local == Clock::time_point::max() || *local == Clock::time_point::min())
    return std::nullopt;
  return format_time(*local - std::chrono::minutes(offset_minutes));
}

}  // namespace eventlite::detail
