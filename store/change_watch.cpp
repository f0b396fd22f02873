// The change watch: an inotify descriptor on the database's directory, read through
// the io_context the loop already runs, so it needs no thread of its own and costs
// nothing while the file is quiet.
//
// Why Asio and not a thread of its own: the callback must run PRAGMA data_version on
// the loop's read connection, which belongs to the loop thread. A watch thread would
// have to post to the loop anyway (one more hand-off between threads per wake-up, on
// the latency path) and would need its own way to be woken for shutdown. Read through
// a posix::stream_descriptor, the inotify descriptor is one more entry in the epoll
// set the loop already blocks on.
//
// A burst is what one read finds: after each completed read the descriptor is read
// again without blocking until it is empty, and the callback runs once if any event
// named the database or its -wal (the kernel also merges identical events queued
// back to back). While the callback answers unchanged, a timer re-checks (the chase);
// it ends recheck_window after the last write seen. A write restarts the chase from
// first_recheck only when the one before it came longer than max_recheck ago, so that a
// stream of writes re-checks at most once per max_recheck. A generation counter tells a
// stale timer completion (one already queued when the timer was re-armed) from the
// current one. An own_write answer (this process's writer at work) arms one late
// re-check instead, pushed back by each such burst, and never cuts a running chase.
//
// Lifetime: the pending read and timer wait hold the State through a shared_ptr, so
// their completions can run after the ChangeWatch is gone (queued, or aborted by its
// destructor); `closed` makes them return without touching the callback.

#include "store/change_watch.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#ifdef __linux__
#include <sys/inotify.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#endif

namespace eventlite::detail {

namespace asio = boost::asio;

namespace {

// Inotify limits are per user: when they are reached, every processor of the process
// falls back to polling. One warning says so; the rest go to debug.
std::atomic<bool> warned_unavailable{false};

void log_unavailable(const std::shared_ptr<spdlog::logger>& logger,
                     const std::string& reason) noexcept {
  if (!logger) return;
  try {
    if (!warned_unavailable.exchange(true))
      logger->warn("change watch inactive, polling instead: {}", reason);
    else
      logger->debug("change watch inactive, polling instead: {}", reason);
  } catch (...) {
  }
}

std::string errno_text(int error) {
  return std::system_category().message(error);
}

}  // namespace

struct ChangeWatch::State : std::enable_shared_from_this<State> {
  State(asio::io_context& context, Callback callback, ChangeWatchOptions o)
      : io(context), on_change(std::move(callback)), options(std::move(o)) {}

  asio::io_context& io;
  Callback on_change;          // the io thread; reset when closed
  ChangeWatchOptions options;  // constant after construction
  std::atomic<bool> active{false};
  std::atomic<std::uint64_t> callbacks{0};
  std::atomic<std::uint64_t> confirmed{0};
  mutable std::mutex reason_mu;
  std::string reason;   // guarded by reason_mu
  bool closed = false;  // the io thread

  void set_inactive(std::string why) noexcept {
    active = false;
    try {
      std::lock_guard lock(reason_mu);
      reason = std::move(why);
    } catch (...) {
    }
  }

  // Runs the callback; never throws.
  Check call() noexcept {
    ++callbacks;
    Check found = Check::changed;
    try {
      found = on_change();
    } catch (const std::exception& e) {
      if (options.logger) try {
          options.logger->warn("change watch callback failed: {}", e.what());
        } catch (...) {
        }
    } catch (...) {
      if (options.logger) try {
          options.logger->warn("change watch callback failed: unknown exception");
        } catch (...) {
        }
    }
    if (found == Check::changed) ++confirmed;
    return found;
  }

#ifdef __linux__
  std::optional<asio::posix::stream_descriptor> fd;  // the io thread
  std::optional<asio::steady_timer> timer;           // the io thread
  int wd = -1;                                       // constant after start
  std::string db_name;                               // constant after start
  std::string wal_name;                              // constant after start
  std::string journal_name;                          // constant after start
  // Room for many events per read (each is 16 bytes plus its padded name).
  alignas(inotify_event) char buf[16 * 1024];  // the io thread
  // The chase, the io thread only.
  std::chrono::steady_clock::time_point last_write{};
  std::chrono::microseconds delay{};
  std::uint64_t chase = 0;  // generation: a completion of an older arming is ignored
  bool chasing = false;     // a re-check is armed
  bool late_only = false;   // the armed re-check is own_write's one late look

  void start(const std::filesystem::path& database) {
    std::error_code ec;
    std::filesystem::path file = std::filesystem::canonical(database, ec);
    if (ec) {
      set_inactive("cannot resolve " + database.filename().string() + ": " +
                   ec.message());
      return;
    }
    db_name = file.filename().string();
    wal_name = db_name + "-wal";
    journal_name = db_name + "-journal";
    const std::filesystem::path dir = file.parent_path();

    const int raw = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (raw < 0) {
      const int error = errno;
      set_inactive("inotify_init1 failed: " + errno_text(error));
      log_unavailable(options.logger, reason_copy());
      return;
    }
    wd = ::inotify_add_watch(raw, dir.c_str(),
                             IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE |
                                 IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
    if (wd < 0) {
      const int error = errno;
      ::close(raw);
      set_inactive("inotify_add_watch failed on the database's directory: " +
                   errno_text(error));
      log_unavailable(options.logger, reason_copy());
      return;
    }
    try {
      fd.emplace(io, raw);  // owns `raw` from here on
    } catch (const std::exception& e) {
      ::close(raw);
      set_inactive(std::string("cannot add the inotify descriptor to the loop: ") +
                   e.what());
      log_unavailable(options.logger, reason_copy());
      return;
    }
    timer.emplace(io);
    active = true;
    read();
  }

  std::string reason_copy() const {
    std::lock_guard lock(reason_mu);
    return reason;
  }

  void read() noexcept {
    try {
      fd->async_read_some(
          asio::buffer(buf, sizeof buf),
          [self = shared_from_this()](const boost::system::error_code& ec,
                                      std::size_t n) { self->on_read(ec, n); });
    } catch (const std::exception& e) {
      deactivate(std::string("cannot read inotify events: ") + e.what());
    }
  }

  void on_read(const boost::system::error_code& ec, std::size_t n) noexcept {
    if (closed) return;
    if (ec) {
      deactivate("inotify read failed: " + ec.message());
      return;
    }
    bool relevant = scan(n);
    // Drain what else is queued, so that the burst costs one callback.
    for (;;) {
      const ssize_t r = ::read(fd->native_handle(), buf, sizeof buf);
      if (r > 0) {
        relevant = scan(static_cast<std::size_t>(r)) || relevant;
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        const int error = errno;
        deactivate("inotify read failed: " + errno_text(error));
        return;
      }
      break;
    }
    if (relevant) wrote();
    if (!active || closed) return;  // the directory went away, or the watch did
    read();
  }

  // Whether the `n` bytes of events in buf name the database, its -wal or its
  // journal. Marks the watch inactive when the directory itself went away.
  bool scan(std::size_t n) noexcept {
    bool relevant = false;
    std::size_t at = 0;
    while (at + sizeof(inotify_event) <= n) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + at);
      at += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        relevant = true;  // events were lost: any of them may have been ours
        continue;
      }
      if (ev->wd != wd) continue;
      if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
        deactivate("the database's directory was removed, moved or unmounted");
        return true;  // look once more: the loop confirms or fails on its own
      }
      if (ev->len == 0) continue;
      const std::string_view name(ev->name, ::strnlen(ev->name, ev->len));
      if (name == wal_name || name == db_name) {
        if (ev->mask & (IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE))
          relevant = true;
      } else if (name == journal_name && (ev->mask & IN_DELETE)) {
        relevant = true;  // rollback-journal mode: the commit's last step
      }
    }
    return relevant;
  }

  // A write was seen: confirm now, or chase from the first re-check.
  void wrote() noexcept {
    const auto now = std::chrono::steady_clock::now();
    const bool dense = chasing && now - last_write < options.max_recheck;
    last_write = now;
    const Check found = call();
    if (found == Check::changed) {
      ++chase;  // any pending re-check is stale
      chasing = false;
      return;
    }
    if (found == Check::own_write) {
      // A chase already running (another process's commit) goes on at its pace.
      if (chasing && !late_only) return;
      delay = options.max_recheck;
      arm(true);
      return;
    }
    // Writes closer together than max_recheck (the frames of one commit, or a busy
    // writer, often this process's own) keep the running chase at its pace: restarting
    // it from first_recheck each time would re-check every few microseconds for as
    // long as the writes go on.
    if (dense && !late_only) return;
    delay = options.first_recheck;
    arm(false);
  }

  void arm(bool late) noexcept {
    const std::uint64_t generation = ++chase;
    chasing = true;
    late_only = late;
    try {
      timer->expires_after(delay);
      timer->async_wait(
          [self = shared_from_this(), generation](const boost::system::error_code& ec) {
            if (ec || self->closed || generation != self->chase) return;
            self->recheck();
          });
    } catch (const std::exception& e) {
      // Without the timer the loop's fallback poll still finds the commit.
      if (options.logger) try {
          options.logger->warn("change watch cannot re-check: {}", e.what());
        } catch (...) {
        }
      chasing = false;
    }
  }

  void recheck() noexcept {
    chasing = false;
    const bool late = late_only;
    late_only = false;
    const Check found = call();
    if (found == Check::changed) return;
    if (found == Check::own_write) {
      // Nothing of another process can be pending (see Check): the chase is over,
      // bar the late look at the end of the writer's mark, which is this one if late.
      if (late) return;
      delay = options.max_recheck;
      arm(true);
      return;
    }
    // Unchanged. After a late look that is what our own commit leaves; it is also
    // what a commit of another process that began at the very end of our writer's
    // mark looks like while it syncs: chase it as any other.
    if (std::chrono::steady_clock::now() - last_write >= options.recheck_window) return;
    delay = late ? options.first_recheck
                 : std::min(delay + delay / 2 + std::chrono::microseconds(1),
                            options.max_recheck);
    arm(false);
  }

  void deactivate(std::string why) noexcept {
    if (active && options.logger) try {
        options.logger->warn("change watch stopped, polling instead: {}", why);
      } catch (...) {
      }
    set_inactive(std::move(why));
  }

  void close() noexcept {
    closed = true;
    on_change = nullptr;
    boost::system::error_code ignored;
    if (timer) timer->cancel();
    if (fd) fd->close(ignored);
  }
#else
  void start(const std::filesystem::path&) {
    set_inactive("file watching is implemented for Linux only");
  }
  void close() noexcept {
    closed = true;
    on_change = nullptr;
  }
#endif
};

ChangeWatch::ChangeWatch(asio::io_context& io, const std::filesystem::path& database,
                         Callback on_change, ChangeWatchOptions options)
    : state_(std::make_shared<State>(io, std::move(on_change), std::move(options))) {
  const std::string& text = database.native();
  if (text.empty() || text == ":memory:") {
    state_->set_inactive("an in-memory or temporary database has no file to watch");
    return;
  }
  if (text.rfind("file:", 0) == 0) {
    state_->set_inactive("a URI names the database, not a file path");
    return;
  }
  state_->start(database);
}

ChangeWatch::~ChangeWatch() {
  if (state_) state_->close();
}

bool ChangeWatch::active() const noexcept {
  return state_->active;
}

std::string ChangeWatch::inactive_reason() const {
  if (state_->active) return {};
  std::lock_guard lock(state_->reason_mu);
  return state_->reason;
}

std::uint64_t ChangeWatch::callbacks() const noexcept {
  return state_->callbacks;
}

std::uint64_t ChangeWatch::confirmed() const noexcept {
  return state_->confirmed;
}

}  // namespace eventlite::detail
