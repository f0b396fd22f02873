#pragma once

// One synchronous hiredis connection, with the library's one translation of Redis
// failures into BrokerError (throw_broker_error): what a retry can mend (the socket,
// a timeout, a server loading or out of memory) and what it cannot (a refused
// password, a wrong key type, any other error reply).

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eventlite/redis.hpp"
#include "handlers/redis/url.hpp"

namespace eventlite::redis::detail {

struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// Whether an error reply ("ERR ...", "WRONGTYPE ...") could succeed if sent again
// later: LOADING, BUSY, OOM, READONLY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN.
bool retryable_reply(std::string_view message) noexcept;

// Throws BrokerError("redis", retryable, "<what> on <redacted url>: <why>").
[[noreturn]] void throw_broker_error(const Url& url, std::string_view what,
                                     bool retryable, std::string_view why);

// Thread safety: one thread at a time.
class Connection {
 public:
  // Connects, authenticates and selects the database; throws BrokerError.
  Connection(const Url& url, std::chrono::milliseconds timeout);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends one command and returns its reply; an error reply is thrown as
  // BrokerError, as is a broken connection.
  Reply command(std::span<const std::string_view> args, std::string_view what);

  // Pipelining: append() queues a command, reply() reads the next reply (an error
  // reply is returned, not thrown; a broken connection throws). A throw leaves the
  // connection unusable.
  void append(std::span<const std::string_view> args);
  Reply reply(std::string_view what);

  const Url& url() const noexcept { return url_; }

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
  };
  [[noreturn]] void throw_io(std::string_view what) const;

  Url url_;
  std::unique_ptr<redisContext, ContextDeleter> ctx_;
  std::vector<const char*> argv_;  // scratch for append
  std::vector<size_t> argvlen_;    // scratch for append
};

}  // namespace eventlite::redis::detail
