#include "tools/follow.hpp"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <ostream>
#include <string>

#include "eventlite/envelope.hpp"
#include "tools/fd_stream.hpp"
#include "tools/options.hpp"

namespace eventlite::cli {

namespace {

// Watches the directory holding `path`: the -wal file's writes, its creation, the
// main file's writes. -1 when it cannot (then the once-a-second look is all).
int watch_directory(const std::filesystem::path& path) {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return -1;
  // Where the file really is: the -wal of a symlinked DB lives beside its target.
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::weakly_canonical(path, ec).parent_path();
  if (ec) dir = std::filesystem::absolute(path).parent_path();
  if (::inotify_add_watch(fd, dir.c_str(), IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void drain(int fd) {
  std::array<char, 4096> buffer;
  while (::read(fd, buffer.data(), buffer.size()) > 0) {
  }
}

}  // namespace

int follow(const Store& store, ReadOptions options) {
  // SIGINT and SIGTERM arrive as reads on a signalfd, in the same poll() as the
  // watch: the loop ends between two events, never inside a write.
  const sigset_t stop = block_stop_signals();
  const UniqueFd signals(::signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK));
  if (signals.get() < 0) {  // then SIGINT and SIGTERM must work as usual
    pthread_sigmask(SIG_UNBLOCK, &stop, nullptr);
  }
  const UniqueFd watch(watch_directory(store.path()));
  IgnoreSigpipe quiet;  // a reader that went away: EPIPE ends the loop
  FdOutBuf buffer(STDOUT_FILENO);
  std::ostream out(&buffer);

  const std::uint64_t limit = options.limit;  // 0: none
  const Seq to = options.to;
  std::uint64_t printed = 0;
  Seq next = std::max<Seq>(1, options.from);
  Seq seen_head = -1;
  Version next_version = 1;  // with --stream: where the next round starts in it
  const auto wanted = [&](const std::string& type) {
    return options.types.empty() ||
           std::find(options.types.begin(), options.types.end(), type) !=
               options.types.end();
  };
  std::string line;
  // A write seen by the watch can come before its commit is visible (SQLite
  // publishes it in the -shm, which inotify does not see): after a wake-up that
  // found nothing new, look again soon, 1 ms then growing to 64 ms, for a while.
  int chase_ms = 0;
  for (;;) {
    // Everything up to the head read now; the next round starts after it, whatever
    // the filters kept.
    const Seq current = store.head();
    const bool moved = current != seen_head;
    seen_head = current;
    const Seq head = std::min(current, to);
    if (head >= next) {
      const auto print = [&](const Event& e) {
        line.clear();
        append_envelope(e, line);
        line += '\n';
        if (!out.write(line.data(), static_cast<std::streamsize>(line.size()))) return false;
        ++printed;
        return limit == 0 || printed < limit;
      };
      if (!options.stream.empty()) {
        // One stream: go on from the version after the last one seen, so that each
        // round costs the new events, not the whole stream again.
        for (const Event& e : store.read_stream(options.stream, next_version)) {
          if (e.seq > head) break;
          next_version = e.version + 1;
          if (e.seq < next || !wanted(e.type)) continue;
          if (!print(e)) break;
        }
      } else {
        ReadOptions round = options;
        round.from = next;
        round.to = head;
        round.limit = limit == 0 ? 0 : limit - printed;
        for (const Event& e : store.read_all(round))
          if (!print(e)) break;
      }
      next = head + 1;
      out.flush();
    }
    if (buffer.broken()) return 0;              // the reader went away
    if (limit != 0 && printed >= limit) return 0;
    if (next > to) return 0;
    if (moved) chase_ms = 1;  // more of a burst may still be on its way
    const int timeout = chase_ms > 0 ? chase_ms : 1000;
    std::array<pollfd, 3> fds = {pollfd{signals.get(), POLLIN, 0},
                                 pollfd{watch.get(), POLLIN, 0},
                                 pollfd{STDOUT_FILENO, 0, 0}};  // POLLERR: no reader
    const int ready = ::poll(fds.data(), fds.size(), timeout);
    if (ready < 0 && errno != EINTR) return 1;
    if (fds[0].revents & POLLIN) return 0;  // SIGINT or SIGTERM
    if (fds[2].revents & (POLLERR | POLLHUP)) return 0;
    if (fds[1].revents & POLLIN) {
      drain(watch.get());
      chase_ms = 1;  // a write: look now, and again soon if it is not visible yet
    } else if (chase_ms > 0) {
      chase_ms = chase_ms >= 64 ? 0 : chase_ms * 2;  // the chase ends after ~127 ms
    }
  }
}

}  // namespace eventlite::cli
