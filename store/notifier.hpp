#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace eventlite::detail {

// Tells in-process readers that something was committed. A generation counter, not a
// flag: a waiter compares the generation it saw before reading, so a commit between
// its read and its wait is never missed.
// Thread safety: safe to share.
class Notifier {
 public:
  void notify() {
    {
      std::lock_guard lock(mu_);
      ++generation_;
    }
    cv_.notify_all();
    std::lock_guard lock(listeners_mu_);
    for (auto& [id, listener] : listeners_) listener();
  }

  // Odd while this process's writer connection holds SQLite's write lock (between a
  // BEGIN IMMEDIATE that succeeded and the end of its transaction; see WriteLockMark),
  // even otherwise. A reader that sees the same odd value before and after a look at
  // the file knows no other process was writing meanwhile.
  std::uint64_t write_epoch() const noexcept {
    return write_epoch_.load(std::memory_order_acquire);
  }
  void write_locked() noexcept { write_epoch_.fetch_add(1, std::memory_order_acq_rel); }
  void write_unlocked() noexcept { write_epoch_.fetch_add(1, std::memory_order_acq_rel); }

  // Calls `listener` after every notify() until remove_listener(); the listener must
  // be quick and must not call back into the notifier.
  std::uint64_t add_listener(std::function<void()> listener) {
    std::lock_guard lock(listeners_mu_);
    listeners_.emplace(++next_listener_, std::move(listener));
    return next_listener_;
  }
  // Returns once no call of the listener is running.
  void remove_listener(std::uint64_t id) {
    std::lock_guard lock(listeners_mu_);
    listeners_.erase(id);
  }
  std::uint64_t generation() const {
    std::lock_guard lock(mu_);
    return generation_;
  }
  // Waits until the generation moves past `seen` or `deadline`; true if it moved.
  bool wait_past(std::uint64_t seen,
                 std::chrono::steady_clock::time_point deadline) const {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return generation_ != seen; });
  }

 private:
  std::atomic<std::uint64_t> write_epoch_{0};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::uint64_t generation_ = 0;  // guarded by mu_
  std::mutex listeners_mu_;
  std::map<std::uint64_t, std::function<void()>> listeners_;  // guarded by listeners_mu_
  std::uint64_t next_listener_ = 0;                            // guarded by listeners_mu_
};

// Marks the writer's write lock as held for its scope: construct it right after BEGIN
// IMMEDIATE succeeded, on the thread that owns the writer; it ends with the
// transaction's scope (a commit just before it ends is fine: the mark then outlives the
// lock by nanoseconds, which the change watch's one late re-check covers).
class WriteLockMark {
 public:
  explicit WriteLockMark(Notifier& n) noexcept : n_(n) { n_.write_locked(); }
  ~WriteLockMark() { n_.write_unlocked(); }
  WriteLockMark(const WriteLockMark&) = delete;
  WriteLockMark& operator=(const WriteLockMark&) = delete;

 private:
  Notifier& n_;
};

}  // namespace eventlite::detail
