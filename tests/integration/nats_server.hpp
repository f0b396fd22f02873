#pragma once

// A real nats-server for one test: JetStream on, file storage in a temp directory of
// its own, on 127.0.0.1 on a free port; stopped with the fixture, and startable again
// on the same port and data after a kill. Plus a few libnats helpers for the test's
// own checks.

#include <nats/nats.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "server_process.hpp"
#include "test_support.hpp"

namespace eventlite::test {

struct NatsConnFree {
  void operator()(natsConnection* c) const noexcept { natsConnection_Destroy(c); }
};
using NatsConn = std::unique_ptr<natsConnection, NatsConnFree>;
struct NatsMsgFree {
  void operator()(natsMsg* m) const noexcept { natsMsg_Destroy(m); }
};
using NatsMsg = std::unique_ptr<natsMsg, NatsMsgFree>;
struct NatsJsFree {
  void operator()(jsCtx* j) const noexcept { jsCtx_Destroy(j); }
};
using NatsJs = std::unique_ptr<jsCtx, NatsJsFree>;

// A JetStream context on `conn`; throws if there is none.
inline NatsJs jetstream(natsConnection* conn) {
  jsCtx* js = nullptr;
  if (natsConnection_JetStream(&js, conn, nullptr) != NATS_OK)
    throw std::runtime_error("no JetStream context");
  return NatsJs(js);
}

// Thread safety: one thread at a time.
class NatsServer {
 public:
  struct Options {
    std::string user = {};  // with password: --user/--pass
    std::string password = {};
    int port = 0;  // 0: a free one
  };
  NatsServer() : NatsServer(Options{}) {}
  explicit NatsServer(Options options)
      : options_(std::move(options)), port_(options_.port) {
    start();
  }
  ~NatsServer() { stop(SIGKILL); }
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  int port() const noexcept { return port_; }
  std::string url() const {
    const std::string auth =
        options_.user.empty() ? "" : options_.user + ":" + options_.password + "@";
    return "nats://" + auth + "127.0.0.1:" + std::to_string(port_);
  }
  NatsConn connect() const {
    natsConnection* c = nullptr;
    if (natsConnection_ConnectTo(&c, url().c_str()) != NATS_OK)
      throw std::runtime_error("test client cannot connect to nats-server");
    return NatsConn(c);
  }

  void start() {
    if (port_ == 0) port_ = free_port();
    std::vector<std::string> args = {
        "nats-server",         "-a",  "127.0.0.1", "-p",
        std::to_string(port_), "-js", "-sd",       dir_.path().string()};
    if (!options_.user.empty()) {
      args.insert(args.end(), {"--user", options_.user, "--pass", options_.password});
    }
    pid_ = start_server(args, dir_.path() / "nats.log");
    const bool up = wait_until(
        [&] {
          natsConnection* c = nullptr;
          const bool ok = natsConnection_ConnectTo(&c, url().c_str()) == NATS_OK;
          natsConnection_Destroy(c);
          return ok;
        },
        10s);
    if (!up) throw std::runtime_error("nats-server did not come up");
  }

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

// Every message of JetStream stream `stream`, in stream order.
inline std::vector<NatsMsg> stream_messages(natsConnection* conn,
                                            const std::string& stream) {
  const NatsJs ctx = jetstream(conn);
  jsCtx* js = ctx.get();
  std::vector<NatsMsg> out;
  jsStreamInfo* info = nullptr;
  if (js_GetStreamInfo(&info, js, stream.c_str(), nullptr, nullptr) == NATS_OK) {
    for (std::uint64_t seq = info->State.FirstSeq; seq <= info->State.LastSeq && seq > 0;
         ++seq) {
      natsMsg* m = nullptr;
      if (js_GetMsg(&m, js, stream.c_str(), seq, nullptr, nullptr) == NATS_OK)
        out.emplace_back(m);
    }
    jsStreamInfo_Destroy(info);
  }
  return out;
}

// How many messages JetStream stream `stream` holds (0 when it is missing).
inline std::uint64_t stream_count(natsConnection* conn, const std::string& stream) {
  const NatsJs js = jetstream(conn);
  jsStreamInfo* info = nullptr;
  std::uint64_t n = 0;
  if (js_GetStreamInfo(&info, js.get(), stream.c_str(), nullptr, nullptr) == NATS_OK)
    n = info->State.Msgs;
  jsStreamInfo_Destroy(info);
  return n;
}

// Creates JetStream stream `stream` on subjects "events.>" (file storage) with this
// duplicate window, as an operator would before a forwarder runs.
inline void create_stream(natsConnection* conn, const std::string& stream,
                          std::chrono::milliseconds duplicate_window) {
  const NatsJs js = jetstream(conn);
  const char* subjects[] = {"events.>"};
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = stream.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Duplicates = static_cast<int64_t>(duplicate_window.count()) * 1000000;
  jsStreamInfo* info = nullptr;
  const natsStatus s = js_AddStream(&info, js.get(), &cfg, nullptr, nullptr);
  jsStreamInfo_Destroy(info);
  if (s != NATS_OK) throw std::runtime_error("cannot create the stream");
}

inline std::string header(natsMsg* m, const char* key) {
  const char* v = nullptr;
  return natsMsgHeader_Get(m, key, &v) == NATS_OK && v ? v : "";
}

inline std::string data_of(natsMsg* m) {
  return std::string(natsMsg_GetData(m),
                     static_cast<std::size_t>(natsMsg_GetDataLength(m)));
}

}  // namespace eventlite::test
