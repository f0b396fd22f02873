#include "bench/broker_server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

#include "bench/harness.hpp"

extern char** environ;

namespace eventlite::bench {

int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = fd >= 0 &&
                  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok) throw std::runtime_error("no free port on 127.0.0.1");
  return ntohs(addr.sin_port);
}

BrokerServer::BrokerServer(std::vector<std::string> args,
                           const std::function<bool(int port)>& ready)
    : port_(free_tcp_port()) {
  for (std::string& a : args)
    if (const auto at = a.find("{port}"); at != std::string::npos)
      a.replace(at, 6, std::to_string(port_));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  const int rc = posix_spawnp(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    throw std::runtime_error("cannot start " + args[0] + " (./run setup installs it)");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!ready(port_)) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      throw std::runtime_error(args[0] + " did not come up");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

BrokerServer::~BrokerServer() {
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
}

double drain_sink(Processor& processor, Seq last) {
  const Stopwatch watch;
  processor.start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (processor.metrics().at(0).position < last) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("the sink did not finish");
    processor.wait_idle(std::chrono::milliseconds(100));
  }
  const double seconds = watch.seconds();
  processor.stop();
  return seconds;
}

}  // namespace eventlite::bench
