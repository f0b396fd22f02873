// NATS connections for the sink and the bridge (connection.hpp).

#include "handlers/nats/connection.hpp"

#include <fmt/format.h>

#include "eventlite/errors.hpp"

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
