#pragma once

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
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::uint64_t generation_ = 0;  // guarded by mu_
  std::mutex listeners_mu_;
  std::map<std::uint64_t, std::function<void()>> listeners_;  // guarded by listeners_mu_
  std::uint64_t next_listener_ = 0;                            // guarded by listeners_mu_
};

}  // namespace eventlite::detail
