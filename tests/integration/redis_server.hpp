#pragma once

// A real redis-server for one test: started on 127.0.0.1 on a free port, in a temp
// directory of its own (append-only file, appendfsync always, so that a SIGKILL
// loses nothing it acknowledged), stopped with the fixture. Plus a small hiredis
// client for the test's own checks.

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "server_process.hpp"
#include "test_support.hpp"

namespace eventlite::test {

struct RedisReplyDeleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyDeleter>;

// The test's own connection. Thread safety: one thread at a time.
class RedisClient {
 public:
  RedisClient(int port, const std::string& password = {}) {
    const timeval tv{5, 0};
    ctx_.reset(redisConnectWithTimeout("127.0.0.1", port, tv));
    if (!ctx_ || ctx_->err)
      throw std::runtime_error("test client cannot connect to redis on port " +
                               std::to_string(port));
    redisSetTimeout(ctx_.get(), tv);
    if (!password.empty()) run({"AUTH", password});
  }
  // Runs a command; throws on a broken connection, returns error replies.
  RedisReply run(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    void* r = redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(),
                               lens.data());
    if (!r) throw std::runtime_error("redis test client: connection lost");
    return RedisReply(static_cast<redisReply*>(r));
  }
  long long integer(const std::vector<std::string>& args) {
    auto r = run(args);
    if (r->type != REDIS_REPLY_INTEGER)
      throw std::runtime_error("redis test client: not an integer reply");
    return r->integer;
  }
  // Waits for the next pushed reply (a Pub/Sub message), up to the socket timeout.
  RedisReply next() {
    void* r = nullptr;
    if (redisGetReply(ctx_.get(), &r) != REDIS_OK || !r) return nullptr;
    return RedisReply(static_cast<redisReply*>(r));
  }
  // Sends without waiting for a reply (PSUBSCRIBE).
  void send(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(),
                           lens.data());
  }

 private:
  struct Deleter {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
  };
  std::unique_ptr<redisContext, Deleter> ctx_;
};

// Thread safety: one thread at a time.
class RedisServer {
 public:
  struct Options {
    std::string password = {};  // requirepass
    int port = 0;               // 0: a free one
  };

  RedisServer() : RedisServer(Options{}) {}
  explicit RedisServer(Options options)
      : options_(std::move(options)), port_(options_.port) {
    start();
  }
  ~RedisServer() { stop(SIGKILL); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const noexcept { return port_; }
  std::string url() const {
    return "redis://" + (options_.password.empty() ? "" : ":" + options_.password + "@") +
           "127.0.0.1:" + std::to_string(port_);
  }
  RedisClient client() const { return RedisClient(port_, options_.password); }

  // Starts the server (again, on the same port and data after a kill) and waits
  // until it answers PING: not just accepts connections, which it does while it
  // still loads its append-only file and answers every command with -LOADING.
  void start() {
    if (port_ == 0) port_ = free_port();
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--dir",
                                     dir_.path().string(),
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "yes",
                                     "--appendfsync",
                                     "always",
                                     "--daemonize",
                                     "no",
                                     "--logfile",
                                     (dir_.path() / "redis.log").string(),
                                     "--protected-mode",
                                     "no"};
    if (!options_.password.empty()) {
      args.push_back("--requirepass");
      args.push_back(options_.password);
    }
    pid_ = start_server(args, dir_.path() / "redis.out");
    const bool up = wait_until(
        [&] {
          try {
            return client().run({"PING"})->type == REDIS_REPLY_STATUS;
          } catch (const std::exception&) {
            return false;  // not listening yet
          }
        },
        30s);
    if (!up)
      throw std::runtime_error("redis-server did not come up on port " +
                               std::to_string(port_));
  }

  // Stops it with `sig` (SIGKILL: as a crash; SIGTERM: a clean shutdown) and reaps it.
  void stop(int sig = SIGTERM) {
    stop_server(pid_, sig);
    pid_ = 0;
  }

 private:
  Options options_;
  TempDir dir_;
  int port_ = 0;
  pid_t pid_ = 0;
};

}  // namespace eventlite::test
