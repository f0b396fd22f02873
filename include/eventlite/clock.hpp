#pragma once

// Where the processor takes its time from: retry schedules, leases and periodic tasks.
// Tests inject a ManualClock and advance it instead of sleeping.

#include <atomic>
#include <chrono>

namespace eventlite {

// Thread safety: implementations must be safe to share.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point now() const = 0;
};

// The system's wall clock (leases and due times are compared across processes).
class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::now();
  }
};

// A clock that moves only when told to. Starts at `start`.
// Thread safety: safe to share.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::chrono::system_clock::time_point start =
                           std::chrono::system_clock::now()) noexcept
      : ms_(to_ms(start)) {}
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms_.load()));
  }
  void advance(std::chrono::milliseconds d) noexcept { ms_ += d.count(); }
  void set(std::chrono::system_clock::time_point t) noexcept { ms_ = to_ms(t); }

 private:
  static long long to_ms(std::chrono::system_clock::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch())
        .count();
  }
  std::atomic<long long> ms_;
};

}  // namespace eventlite
