// NATS connections for the sink and the bridge (connection.hpp).

#include "handlers/nats/connection.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "eventlite/errors.hpp"
#include "eventlite/nats.hpp"

namespace eventlite::nats::detail {

std::string status_text(natsStatus s) {
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  std::string text = natsStatus_GetText(s);
  if (detail && *detail && last == s && text != detail)
    text += std::string(": ") + detail;
  return text;
}

bool retryable_status(natsStatus s) {
  switch (s) {
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
    case NATS_MAX_PAYLOAD:
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_ARG: return false;
    default: return true;
  }
}

void fail(std::string_view where, std::string_view what, natsStatus s) {
  throw BrokerError("nats", retryable_status(s),
                    fmt::format("{} on {}: {}", what, where, status_text(s)));
}

void check_url(std::string_view url, std::string_view who) {
  const auto refuse = [&](std::string_view why) {
    throw InvalidArgument(fmt::format("{}: the URL {} is not one: {}", who,
                                      redacted(url), why));
  };
  if (url.empty()) refuse("it is empty");
  std::size_t at = 0;
  while (at <= url.size()) {
    const std::size_t comma = std::min(url.find(',', at), url.size());
    std::string_view one = url.substr(at, comma - at);
    at = comma + 1;
    const std::size_t scheme = one.find("://");
    if (scheme != std::string_view::npos) {
      const std::string_view name = one.substr(0, scheme);
      if (name != "nats" && name != "tls" && name != "ws" && name != "wss")
        refuse(fmt::format("the scheme {} is not nats, tls, ws or wss", name));
      one.remove_prefix(scheme + 3);
    }
    if (const std::size_t user = one.rfind('@'); user != std::string_view::npos)
      one.remove_prefix(user + 1);
    if (one.empty()) refuse("a server has no host");
    const std::size_t colon = one.rfind(':');
    const std::size_t bracket = one.rfind(']');  // [::1]:4222
    if (colon == std::string_view::npos ||
        (bracket != std::string_view::npos && colon < bracket)) {
      if (one.find('/') != std::string_view::npos) refuse("a host holds a '/'");
      continue;
    }
    const std::string_view port = one.substr(colon + 1);
    int n = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || n < 1 ||
        n > 65535)
      refuse("a port must be a number from 1 to 65535");
    if (colon == 0) refuse("a server has no host");
  }
}

std::string token_problem(std::string_view text) {
  if (text.empty()) return "is empty";
  for (const char c : text) {
    if (c == '.') return "holds '.'";
    if (c == '*') return "holds '*'";
    if (c == '>') return "holds '>'";
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v')
      return "holds white space";
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return "holds a control character";
  }
  return {};
}

std::string subject_problem(std::string_view text, bool wildcards) {
  if (text.empty()) return "is empty";
  std::size_t at = 0;
  for (;;) {
    const std::size_t dot = std::min(text.find('.', at), text.size());
    const std::string_view token = text.substr(at, dot - at);
    const bool last = dot == text.size();
    if (token.empty()) return "has an empty token (a '.' at either end, or \"..\")";
    const bool wildcard = wildcards && (token == "*" || (token == ">" && last));
    if (!wildcard) {
      if (const std::string why = token_problem(token); !why.empty())
        return fmt::format("has a token {:?} that {}", token, why);
    }
    if (last) return {};
    at = dot + 1;
  }
}

std::string name_problem(std::string_view text) {
  if (std::string why = token_problem(text); !why.empty()) return why;
  if (text.find('/') != std::string_view::npos) return "holds '/'";
  if (text.find('\\') != std::string_view::npos) return "holds '\\'";
  return {};
}

std::string header_value_problem(std::string_view text) {
  if (text.find_first_of("\r\n") != std::string_view::npos) return "holds a line break";
  if (text.find('\0') != std::string_view::npos) return "holds a NUL";
  return {};
}

void refuse_name(std::string_view who, std::string_view field, std::string_view text,
                 const std::string& problem) {
  if (!problem.empty())
    throw InvalidArgument(fmt::format("{}: {} {:?} {}", who, field, text, problem));
}

ConnPtr connect(const Settings& settings, std::string_view where) {
  natsOptions* raw = nullptr;
  if (natsOptions_Create(&raw) != NATS_OK) fail(where, "connect", NATS_NO_MEMORY);
  std::unique_ptr<natsOptions, OptionsFree> opts(raw);
  check(natsOptions_SetURL(opts.get(), settings.url.c_str()), where, "connect");
  check(natsOptions_SetTimeout(opts.get(), settings.timeout.count()), where, "connect");
  check(natsOptions_SetAllowReconnect(opts.get(), false), where, "connect");
  check(natsOptions_SetName(opts.get(), "eventlite"), where, "connect");
  if (!settings.token.empty())
    check(natsOptions_SetToken(opts.get(), settings.token.c_str()), where, "connect");
  if (!settings.credentials_file.empty())
    check(natsOptions_SetUserCredentialsFromFiles(
              opts.get(), settings.credentials_file.c_str(), nullptr),
          where, "read the credentials");
  if (settings.tls) check(natsOptions_SetSecure(opts.get(), true), where, "set up TLS");
  if (!settings.ca_file.empty())
    check(natsOptions_LoadCATrustedCertificates(opts.get(), settings.ca_file.c_str()),
          where, "load the CA file");
  natsConnection* conn = nullptr;
  check(natsConnection_Connect(&conn, opts.get()), where, "connect");
  return ConnPtr(conn);
}

}  // namespace eventlite::nats::detail
