// `eventlite replay`: DB's events as envelope lines on the standard input of a
// command run through the shell.

#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "eventlite/transfer.hpp"
#include "tools/command.hpp"
#include "tools/error.hpp"
#include "tools/fd_stream.hpp"
#include "tools/open_store.hpp"
#include "tools/options.hpp"
#include "tools/progress.hpp"

extern char** environ;

namespace eventlite::cli {

namespace {

struct ReplayArgs {
  std::string db;
  std::string exec;  // the command, for /bin/sh -c
  ReadFilters filters;
};

// CMD run as `/bin/sh -c CMD`, its stdin the read end of a pipe whose write end is
// returned; its stdout and stderr are ours.
struct Child {
  pid_t pid = 0;
  int input = -1;  // the write end
};

Child start(const std::string& cmd) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw CommandError(
        kExitError, fmt::format("replay: cannot make a pipe: {}", std::strerror(errno)));
  // A larger pipe: fewer wake-ups of each side (the default is 64 KiB). Best effort.
  ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[0], STDIN_FILENO);  // clears CLOEXEC
  // CMD starts as from a shell: default dispositions (this process ignores SIGPIPE,
  // and an ignored signal stays ignored across exec) and no signal blocked.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults, none;
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGQUIT, SIGTERM}) sigaddset(&defaults, sig);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  const char* argv[] = {"sh", "-c", cmd.c_str(), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, "/bin/sh", &actions, &attr,
                               const_cast<char* const*>(argv), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[0]);
  if (rc != 0) {
    ::close(fds[1]);
    throw CommandError(kExitError,
                       fmt::format("replay: cannot run /bin/sh: {}", std::strerror(rc)));
  }
  return {pid, fds[1]};
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return kExitError;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return kExitError;
}

CLI::App* add_replay(CLI::App& app, ReplayArgs& args) {
  CLI::App* command = app.add_subcommand(
      "replay",
      "Run CMD through the shell with DB's events (those the filters select) on its "
      "standard input as envelope lines, in seq order, read as they are written "
      "(never all at once). Exits with CMD's status; a CMD that stops reading early "
      "ends the replay cleanly, and it says how far it got. Shows progress on stderr "
      "when it is a terminal. Opens DB read-only: never writes to it.");
  add_db(command, args.db);
  command->add_option("--exec", args.exec, "the command, run as /bin/sh -c CMD")
      ->type_name("CMD")
      ->required()
      ->check(non_empty());
  add_read_filters(command, args.filters);
  return command;
}

int run_replay(const ReplayArgs& args) {
  const Store store = open_for_reading(args.db);
  const std::uint64_t span = seq_span(store, args.filters);
  IgnoreSigpipe quiet;  // CMD that stops reading: EPIPE, not a crash
  // As system(3): Ctrl-C and Ctrl-\\ go to CMD (the same process group); this process
  // waits for it and exits with its status.
  struct IgnoreWhile {
    void (*int_)(int) = ::signal(SIGINT, SIG_IGN);
    void (*quit_)(int) = ::signal(SIGQUIT, SIG_IGN);
    ~IgnoreWhile() {
      ::signal(SIGINT, int_);
      ::signal(SIGQUIT, quit_);
    }
  } interactive;
  const Child child = start(args.exec);
  std::uint64_t sent = 0;
  bool broken = false;
  try {
    FdOutBuf buffer(child.input);
    std::ostream out(&buffer);
    Progress progress("replayed");
    sent = export_envelopes(store, out, read_options(args.filters),
                            progress.by_seq(args.filters.from, span));
    broken = buffer.broken();
  } catch (...) {
    ::close(child.input);
    wait_for(child.pid);
    throw;
  }
  ::close(child.input);  // CMD sees the end of its input
  const int status = wait_for(child.pid);
  if (broken)
    std::cerr << fmt::format(
        "eventlite: replay: the command stopped reading after {} events were sent (it "
        "exited with status {})\n",
        sent, status);
  return status;
}

std::string check_replay(const ReplayArgs& args) {
  if (args.exec.empty()) return "--exec is given";
  if (std::string why = filters_problem(args.filters); !why.empty()) return why;
  return file_db_problem(args.db);
}

}  // namespace

void setup_replay(CLI::App& app, Commands& commands) {
  add_command<ReplayArgs>(app, commands, add_replay, run_replay, check_replay);
}

}  // namespace eventlite::cli
