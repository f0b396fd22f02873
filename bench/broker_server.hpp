#pragma once

// What the broker figures (13-16) share: a broker server started on 127.0.0.1 on a
// free port, its output discarded, killed when the benchmark ends; a timed drain.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "eventlite/processor.hpp"

namespace eventlite::bench {

// Starts `processor` (its one subscription a sink), waits until the sink's position
// reaches `last` (5 minutes at most, else throws), stops it; returns the seconds taken.
double drain_sink(Processor& processor, Seq last);

// A TCP port on 127.0.0.1 that nothing listens on right now.
int free_tcp_port();

// Thread safety: one thread at a time.
class BrokerServer {
 public:
  // Runs `args` (args[0] found in PATH; "{port}" in any argument is replaced by the
  // port) and waits until `ready(port)` holds, 10 s at most; throws otherwise.
  BrokerServer(std::vector<std::string> args, const std::function<bool(int port)>& ready);
  ~BrokerServer();
  BrokerServer(const BrokerServer&) = delete;
  BrokerServer& operator=(const BrokerServer&) = delete;
  int port() const noexcept { return port_; }

 private:
  int port_;
  pid_t pid_ = 0;
};

}  // namespace eventlite::bench
