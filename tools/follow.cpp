#include "tools/follow.hpp"

#include <errno.h>
#include <poll.h>
#include <signal.h>
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

// How long a wait for the next commit lasts before the loop looks at the signals and
// the reader: how late Ctrl-C may end it.
constexpr std::chrono::milliseconds kLook{100};

}  // namespace

int follow(const Store& store, ReadOptions options) {
  // SIGINT and SIGTERM arrive as reads on a signalfd, in the same poll() as the
  // watch: the loop ends between two events, never inside a write.
  const sigset_t stop = block_stop_signals();
  const UniqueFd signals(::signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK));
  if (signals.get() < 0) {  // then SIGINT and SIGTERM must work as usual
    pthread_sigmask(SIG_UNBLOCK, &stop, nullptr);
  }
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
  for (;;) {
    // Everything up to the head read now; the next round starts after it, whatever
    // the filters kept.
    const Seq current = store.head();
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
    // The next commit, this process's or another's (the store's file watch), wakes
    // the wait; between waits of at most kLook, a stop signal or a reader that went
    // away ends the loop.
    store.wait_for_append(seen_head, kLook);
    std::array<pollfd, 2> fds = {pollfd{signals.get(), POLLIN, 0},
                                 pollfd{STDOUT_FILENO, 0, 0}};  // POLLERR: no reader
    const int ready = ::poll(fds.data(), fds.size(), 0);
    if (ready < 0 && errno != EINTR) return 1;
    if (fds[0].revents & POLLIN) return 0;  // SIGINT or SIGTERM
    if (fds[1].revents & (POLLERR | POLLHUP)) return 0;
  }
}

}  // namespace eventlite::cli
