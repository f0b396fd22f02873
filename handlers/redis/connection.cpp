#include "handlers/redis/connection.hpp"

#include <fmt/format.h>
#include <sys/time.h>

#include <array>
#include <cstring>

#include "eventlite/errors.hpp"

namespace eventlite::redis::detail {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string_view reply_text(const redisReply& r) {
  return {r.str, r.len};
}

}  // namespace

bool retryable_reply(std::string_view message) noexcept {
  static constexpr std::array<std::string_view, 7> kRetryable = {
      "LOADING", "BUSY", "OOM", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"};
  const std::string_view word = message.substr(0, message.find(' '));
  for (std::string_view r : kRetryable)
    if (word == r) return true;
  return false;
}

void throw_broker_error(const Url& url, std::string_view what, bool retryable,
                        std::string_view why) {
  throw BrokerError("redis", retryable,
                    fmt::format("{} on {}: {}", what, url.redacted(), why));
}

Connection::Connection(const Url& url, std::chrono::milliseconds timeout) : url_(url) {
  const timeval tv = to_timeval(timeout);
  ctx_.reset(redisConnectWithTimeout(url_.host.c_str(), url_.port, tv));
  if (!ctx_) throw_broker_error(url_, "connect", true, "out of memory");
  if (ctx_->err) throw_io("connect");
  if (redisSetTimeout(ctx_.get(), tv) != REDIS_OK) throw_io("set timeout");
  redisEnableKeepAlive(ctx_.get());
  if (!url_.password.empty()) {
    std::vector<std::string_view> auth{"AUTH"};
    if (!url_.user.empty()) auth.push_back(url_.user);
    auth.push_back(url_.password);
    command(auth, "authenticate");
  }
  if (url_.db != 0) {
    const std::string db = std::to_string(url_.db);
    const std::array<std::string_view, 2> select{"SELECT", db};
    command(select, "select database");
  }
}

void Connection::throw_io(std::string_view what) const {
  // REDIS_ERR_IO leaves errno's text in errstr ("Connection refused"); EOF and
  // protocol errors say so themselves. All of them end the connection.
  const bool protocol = ctx_ && ctx_->err == REDIS_ERR_PROTOCOL;
  throw_broker_error(url_, what, !protocol,
                     ctx_ && ctx_->errstr[0] ? ctx_->errstr : "connection lost");
}

void Connection::append(std::span<const std::string_view> args) {
  argv_.clear();
  argvlen_.clear();
  for (std::string_view a : args) {
    argv_.push_back(a.data());
    argvlen_.push_back(a.size());
  }
  if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(argv_.size()), argv_.data(),
                             argvlen_.data()) != REDIS_OK)
    throw_io("queue a command");
}

Reply Connection::reply(std::string_view what) {
  void* raw = nullptr;
  if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) throw_io(what);
  return Reply(static_cast<redisReply*>(raw));
}

Reply Connection::command(std::span<const std::string_view> args, std::string_view what) {
  append(args);
  Reply r = reply(what);
  if (r->type == REDIS_REPLY_ERROR) {
    const std::string_view text = reply_text(*r);
    throw_broker_error(url_, what, retryable_reply(text), text);
  }
  return r;
}

}  // namespace eventlite::redis::detail
