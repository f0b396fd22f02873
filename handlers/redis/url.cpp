// redis://[[user]:password@]host[:port][/db], as redis-cli -u and most clients read it.
// The user and password may be percent-encoded (a password with '@' or ':' in it).

#include "handlers/redis/url.hpp"

#include <fmt/format.h>

#include <charconv>

#include "eventlite/errors.hpp"
#include "eventlite/redis.hpp"

namespace eventlite::redis {

namespace {

[[noreturn]] void bad(std::string_view why) {
  throw InvalidArgument(fmt::format("redis URL: {}", why));
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// `part` names the field in errors; its value is never shown (it may be a secret).
std::string percent_decode(std::string_view s, std::string_view part) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    const int hi = i + 2 < s.size() ? hex(s[i + 1]) : -1;
    const int lo = hi >= 0 ? hex(s[i + 2]) : -1;
    if (lo < 0) bad(fmt::format("bad percent-encoding in the {}", part));
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

int number(std::string_view s, int lo, int hi, std::string_view what) {
  int v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi)
    bad(fmt::format("{} must be a number from {} to {}, not \"{}\"", what, lo, hi, s));
  return v;
}

}  // namespace

Url Url::parse(std::string_view text) {
  constexpr std::string_view kScheme = "redis://";
  if (text.starts_with("rediss://"))
    bad("rediss:// (TLS) is not available: this build's hiredis has no TLS support");
  if (!text.starts_with(kScheme))
    bad("must start with redis:// (redis://[[user]:password@]host[:port][/db])");
  std::string_view rest = text.substr(kScheme.size());
  Url url;
  // The credentials end at the last '@': a password may hold '@' or '/' when
  // percent-encoded, and some people leave them raw; the path (a database number)
  // never holds an '@'. Splitting at the first '/' instead would put the rest of such
  // a password into the host or the database, and from there into an error message.
  const std::size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view creds = rest.substr(0, at);
    const std::size_t colon = creds.find(':');
    if (colon == std::string_view::npos) {
      // redis://secret@host: the lone part is the password, as redis-cli reads it.
      url.password = percent_decode(creds, "password");
    } else {
      url.user = percent_decode(creds.substr(0, colon), "user");
      url.password = percent_decode(creds.substr(colon + 1), "password");
    }
    rest = rest.substr(at + 1);
  }
  const std::size_t path = rest.find('/');
  std::string_view hostport = rest.substr(0, path);
  if (path != std::string_view::npos) {
    std::string_view db = rest.substr(path + 1);
    if (!db.empty()) url.db = number(db, 0, 1 << 20, "the database");
  }
  if (hostport.starts_with('[')) {
    const std::size_t close = hostport.find(']');
    if (close == std::string_view::npos) bad("unclosed '[' in the host");
    url.host = std::string(hostport.substr(1, close - 1));
    hostport = hostport.substr(close + 1);
    if (!hostport.empty() && !hostport.starts_with(':'))
      bad("unexpected text after the host");
    if (!hostport.empty()) url.port = number(hostport.substr(1), 1, 65535, "the port");
  } else {
    const std::size_t colon = hostport.rfind(':');
    url.host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos)
      url.port = number(hostport.substr(colon + 1), 1, 65535, "the port");
  }
  if (url.host.empty()) bad("no host");
  return url;
}

std::string Url::redacted() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string out = "redis://";
  if (!user.empty() || !password.empty())
    out += user + (password.empty() ? "" : ":***") + "@";
  out += v6 ? "[" + host + "]" : host;
  out += ":" + std::to_string(port);
  if (db != 0) out += "/" + std::to_string(db);
  return out;
}

std::string redacted(std::string_view url) {
  return Url::parse(url).redacted();
}

}  // namespace eventlite::redis
