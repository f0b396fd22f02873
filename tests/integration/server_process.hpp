#pragma once

// Starting a server program for a test: a free port on 127.0.0.1, and a child process
// that cannot outlive the test (PR_SET_PDEATHSIG) and holds none of the test's
// descriptors (stdin from /dev/null, stdout and stderr to a log file), so a test that
// crashes leaves no server behind and no pipe open for ctest to wait on.

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace eventlite::test {

// A TCP port on 127.0.0.1 that nothing uses right now, below the kernel's ephemeral
// range (32768 and up on Linux). A server is often killed and started again on its
// port; a port of the ephemeral range may meanwhile have become the local end of any
// process's outgoing connection (a sink's, a client's), and the restart would fail to
// bind. Ports are tried at random in [20000, 32000), falling back to the kernel's pick.
inline bool port_is_free(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return free;
}

inline int free_port() {
  static std::mutex mu;
  static std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
  std::uniform_int_distribution<int> pick(20000, 31999);
  for (int i = 0; i < 200; ++i) {
    int port = 0;
    {
      std::lock_guard lock(mu);
      port = pick(rng);
    }
    if (port_is_free(port)) return port;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind failed");
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// Runs `args` (args[0] looked up in PATH) with its output appended to `log`; returns
// its pid. Throws when it cannot be started.
inline pid_t start_server(const std::vector<std::string>& args,
                          const std::filesystem::path& log) {
  std::vector<char*> argv;
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in < 0 || out < 0) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Runs this program again with `args` (after argv[0]) in a child process, by fork and
// exec: a driver's child starts clean, with none of the driver's library threads or
// SQLite connections (libnats's threads do not survive a bare fork). Returns its pid.
inline pid_t spawn_self(std::vector<std::string> args) {
  args.insert(args.begin(), "/proc/self/exe");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  return pid;
}

// Sends `sig` to `pid` and reaps it.
inline void stop_server(pid_t pid, int sig) {
  if (pid <= 0) return;
  ::kill(pid, sig);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace eventlite::test
