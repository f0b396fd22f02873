#pragma once

// What the NATS sink and bridge share: connecting with the options libnats takes,
// JetStream contexts, and libnats statuses as BrokerErrors naming the redacted URL.

#include <nats/nats.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace eventlite::nats::detail {

struct OptionsFree {
  void operator()(natsOptions* o) const noexcept { natsOptions_Destroy(o); }
};
struct ConnFree {
  void operator()(natsConnection* c) const noexcept { natsConnection_Destroy(c); }
};
struct JsFree {
  void operator()(jsCtx* j) const noexcept { jsCtx_Destroy(j); }
};
struct MsgFree {
  void operator()(natsMsg* m) const noexcept { natsMsg_Destroy(m); }
};
struct InfoFree {
  void operator()(jsStreamInfo* i) const noexcept { jsStreamInfo_Destroy(i); }
};
struct SubFree {
  void operator()(natsSubscription* s) const noexcept { natsSubscription_Destroy(s); }
};

using ConnPtr = std::unique_ptr<natsConnection, ConnFree>;
using JsPtr = std::unique_ptr<jsCtx, JsFree>;
using MsgPtr = std::unique_ptr<natsMsg, MsgFree>;

// The connection options both SinkOptions and BridgeOptions carry.
struct Settings {
  std::string url;
  std::string credentials_file;
  std::string token;
  bool tls = false;
  std::string ca_file;
  std::chrono::milliseconds timeout{5000};
};

template <typename Options>
Settings settings_of(const Options& o) {
  return {o.url, o.credentials_file, o.token, o.tls, o.ca_file, o.timeout};
}

// libnats's text for `s`, with its last error's detail when it has one.
std::string status_text(natsStatus s);
// Whether trying again can mend `s` (not a refused authorization, a payload over the
// limit, a subject that is not one).
bool retryable_status(natsStatus s);
// Throws BrokerError("nats", retryable_status(s), "<what> on <where>: <status>").
[[noreturn]] void fail(std::string_view where, std::string_view what, natsStatus s);
inline void check(natsStatus s, std::string_view where, std::string_view what) {
  if (s != NATS_OK) fail(where, what, s);
}

// Throws InvalidArgument (naming the URL redacted) unless `url` is one or more
// comma-separated [nats|tls|ws|wss://][user:password@|token@]host[:port], port 1 to
// 65535: a URL libnats would refuse only when connecting.
void check_url(std::string_view url, std::string_view who);

// Names that become parts of subjects, validated where they do: what is stored is
// never changed, a name that cannot be one is refused. Each returns why `text`
// cannot be what it names ("holds '.'"), or "" when it can be.
//
// One token of a subject: not empty, no '.', '*', '>', white space or other control
// character (a NUL would cut the C string libnats is given).
std::string token_problem(std::string_view text);
// A subject: tokens joined by '.', each as token_problem() says; with `wildcards` (a
// filter) a token may also be '*', and the last one '>'.
std::string subject_problem(std::string_view text, bool wildcards);
// A JetStream stream or consumer name, which the server puts into its API subjects
// and its storage directory: a token, and no '/' or '\' either.
std::string name_problem(std::string_view text);
// A header value (Nats-Msg-Id): no line break, which would end the header and start
// another, and no NUL.
std::string header_value_problem(std::string_view text);

// Throws InvalidArgument("<who>: <field> <text quoted> <problem>") unless `problem`
// is empty.
void refuse_name(std::string_view who, std::string_view field, std::string_view text,
                 const std::string& problem);

// Connects without reconnecting on its own (a lost connection is the caller's error
// to retry). Throws BrokerError.
ConnPtr connect(const Settings& settings, std::string_view where);

}  // namespace eventlite::nats::detail
