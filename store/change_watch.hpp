#pragma once

// Wakes the processor's loop when another process commits to the database file,
// instead of waiting for the next change check.
//
// SQLite commits in WAL mode by write()-ing frames to the -wal file and then
// publishing the commit in the wal-index (-shm, written through mmap, which inotify
// does not see). An inotify watch on the file's directory sees the write()s: the
// creation of a -wal file, its frames, its truncation after a checkpoint, and writes
// to the main file (rollback-journal mode, checkpoints, a file renamed into place).
// The directory is watched rather than the files, because the -wal file may not exist
// yet, and is deleted and created again when the last connection closes.
//
// So a wake-up is a hint, never the proof: it can come before the commit is visible
// (the frames are written, and under synchronous=FULL synced, before the -shm
// publishes them), and checkpoints write without changing the data. The loop confirms
// with PRAGMA data_version on its read connection. When the confirmation finds nothing,
// the watch asks again after a short, growing delay (a "chase", first_recheck growing
// by half each time up to max_recheck, for recheck_window after the last write seen),
// so that a commit still being published is noticed within microseconds of becoming
// visible. When nothing is written, the watch costs nothing: no timer, no thread; the
// inotify descriptor sits in the io_context's epoll set.
//
// Expected use by the processor's loop (everything on the loop thread):
//
//   // Open the loop's read connection first; pass the name SQLite itself uses
//   // (sqlite3_db_filename(handle, "main"): "" for :memory: and temp databases).
//   watch = std::make_unique<detail::ChangeWatch>(io, path, [this] {
//     // Confirm, and step only on a real change. Never throws (the watch would
//     // log and stop chasing).
//     const auto epoch = notifier.write_epoch();
//     if (reads->data_version() != data_version) {
//       safe_step();  // check_changes() inside records the new data_version
//       return Check::changed;
//     }
//     // This process's writer held the write lock throughout: the writes were its
//     // own, and its commit wakes the loop through the notifier.
//     if (epoch % 2 == 1 && notifier.write_epoch() == epoch) return Check::own_write;
//     return Check::unchanged;
//   }, detail::ChangeWatchOptions{.logger = logger});
//   // The change-check timer becomes the fallback: poll_interval while the watch
//   // is active, change_check_interval otherwise (inactive: ":memory:", not Linux,
//   // inotify limits reached; it can also turn inactive later, e.g. when the
//   // directory is removed, so read active() each time the timer is armed).
//   timer->expires_after(watch->active() ? options.poll_interval
//                                        : options.change_check_interval);
//   ...
//   // stop(): destroy the watch after the loop thread was joined (or on it).
//
// The process's own commits fire the watch too, mostly while its writer still holds
// SQLite's write lock (the frames are written, the fsync runs). No other process can
// be writing then, and the notifier wakes the loop once the commit is done, so the
// callback answers own_write and the watch does not chase: one late re-check, after
// max_recheck, covers the nanoseconds between the COMMIT's return and the end of the
// writer's mark. Without this, a process appending steadily kept a chase running
// beside its own commits, a wake-up of the loop every max_recheck.
//
// Linux only (inotify); elsewhere the watch is always inactive.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace spdlog {
class logger;
}  // namespace spdlog

namespace eventlite::detail {

struct ChangeWatchOptions {
  // The first re-check after a confirmation that found nothing. A commit under
  // synchronous=NORMAL becomes visible microseconds after its last write; under FULL,
  // after the fsync of the -wal (0.1-10 ms by disk).
  std::chrono::microseconds first_recheck{50};
  // Each further re-check waits half again as long as the one before, up to this.
  // Writes closer together than this do not restart the chase: a busy writer costs
  // at most one re-check per max_recheck.
  std::chrono::microseconds max_recheck{1000};
  // Re-checks stop this long after the last write seen; a commit published later
  // still is found by the loop's fallback poll. Each re-check costs one call of the
  // callback (a PRAGMA data_version: a few microseconds).
  std::chrono::milliseconds recheck_window{100};
  // Where to log (a warning when inotify is unavailable); null: nowhere.
  std::shared_ptr<spdlog::logger> logger = {};
};

// A watch on one database file's directory that calls back on the io_context's thread
// when the file or its -wal may have changed, until destroyed.
// Thread safety: one thread at a time, the one running `io` (or any thread while `io`
// is not running); the callback runs on a thread running `io`.
class ChangeWatch {
 public:
  // What the callback found.
  enum class Check {
    changed,    // data_version moved: the re-checks end
    unchanged,  // nothing yet: re-check shortly (the chase)
    // Nothing, and this process's writer held the write lock throughout the look: no
    // other process can be half-way through a commit, every earlier one is visible,
    // and the writer's own commit wakes the loop by itself. The chase ends (a running
    // one at its next look) and one re-check follows after max_recheck.
    own_write,
  };
  // Called after writes to the database or its -wal were seen, once per burst (all
  // pending inotify events are read first), and again while re-checking. It should
  // not throw; an exception is logged and taken as changed.
  using Callback = std::function<Check()>;

  // Watches the directory of `database` (a file path as SQLite opened it; relative
  // paths are taken from the current directory, symbolic links resolved). Inactive,
  // and says why in inactive_reason(), for ":memory:", an empty path (a temp
  // database), a "file:" URI, on other systems than Linux, or when inotify is
  // unavailable (its limits reached: logged once per process at warn). Never throws
  // for any of these; throws only std::bad_alloc.
  ChangeWatch(boost::asio::io_context& io, const std::filesystem::path& database,
              Callback on_change, ChangeWatchOptions options = {});
  // Stops watching; no callback runs after it returns. Call it on `io`'s thread or
  // while `io` is not running. Never throws.
  ~ChangeWatch();
  ChangeWatch(const ChangeWatch&) = delete;
  ChangeWatch& operator=(const ChangeWatch&) = delete;

  // Whether wake-ups come from the watch. It can turn false later (the directory was
  // removed or moved, the inotify queue failed); then the loop's timer must take over.
  bool active() const noexcept;
  // Why the watch is inactive; empty while it is active.
  std::string inactive_reason() const;

  // How many times the callback ran, and how many of those returned true.
  std::uint64_t callbacks() const noexcept;
  std::uint64_t confirmed() const noexcept;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the pending inotify read and timer
};

}  // namespace eventlite::detail
