#pragma once

// The `eventlite` tool run by an integration test: a child process with its stdout and
// stderr in files, waited for with a deadline or stopped by a signal.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_support.hpp"

extern char** environ;

namespace eventlite::test {

// The eventlite tool, run with `args`; its stdout and stderr go to files in `dir`.
// Killed with SIGKILL on destruction unless waited for.
class Tool {
 public:
  Tool(const std::vector<std::string>& args, const std::filesystem::path& dir)
      : out_(dir / "tool.out"), err_(dir / "tool.err") {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<std::string> words = {EVENTLITE_CLI_PATH};
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    const int rc =
        posix_spawn(&pid_, EVENTLITE_CLI_PATH, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot run " EVENTLITE_CLI_PATH);
  }
  ~Tool() {
    if (pid_ > 0) signal(SIGKILL);
  }
  Tool(const Tool&) = delete;
  Tool& operator=(const Tool&) = delete;

  void send(int sig) const { ::kill(pid_, sig); }
  // Sends `sig` and reaps the process; returns its exit status (-1: killed).
  int signal(int sig) {
    send(sig);
    return wait();
  }
  // Waits for the exit (bounded); returns the status, -1 when killed by a signal.
  int wait(std::chrono::milliseconds timeout = 60s) {
    int status = 0;
    const bool exited = wait_until(
        [&] {
          const pid_t r = ::waitpid(pid_, &status, WNOHANG);
          return r == pid_;
        },
        timeout);
    if (!exited) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      pid_ = 0;
      throw std::runtime_error("the tool did not exit in time");
    }
    pid_ = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string out() const { return read_bytes(out_); }
  std::string err() const { return read_bytes(err_); }

 private:
  std::filesystem::path out_, err_;
  pid_t pid_ = 0;
};

}  // namespace eventlite::test
