#pragma once

// A sink subscription's session with its destination (include/eventlite/sink.hpp).
// Everything a sink adds to a subscription lives here and nowhere else: whether the
// sink is open and under which lease tenure, where open() found the outside copy,
// the backoff between failed units, and the health the checkpoints write and
// metrics() report. The dispatcher calls it at the same few points for every sink;
// it holds no sink state of its own.
//
// Ownership: open() and publish() run on a worker, for the unit in flight (a
// subscription has at most one, which owns the session until it completes); close(),
// failed() and recovered() run on the loop's thread between units. The health is
// also read by metrics() from any thread, under mu_.

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "eventlite/processor.hpp"
#include "eventlite/sink.hpp"
#include "processor/latency.hpp"
#include "processor/queries.hpp"

namespace spdlog {
class logger;
}

namespace eventlite::detail {

using SysTime = std::chrono::system_clock::time_point;

// Thread safety: see the file's comment.
class SinkSession {
 public:
  explicit SinkSession(std::shared_ptr<Sink> sink) noexcept : sink_(std::move(sink)) {}

  // Where open() left a unit.
  struct Opened {
    // The outside copy holds this store's events up to here: a batch skips them.
    std::optional<Seq> reconciled;
    // open() failed in a way no retry mends (a refused password): the unit's events
    // are parked with it.
    std::exception_ptr permanent;
  };

  // Opens the sink unless it is open (then returns {}): reconciles with the outside
  // copy, which must not stand past `head`, and, with lanes in parallel, is not
  // trusted. Throws what a retry can mend (the broker is down, a DestinationConflict).
  Opened open(const Store& store, spdlog::logger& logger, const std::string& name,
              std::uint64_t epoch, Seq head, bool parallel_lanes);
  bool is_open() const noexcept { return open_; }

  // Forwards a batch (Sink::publish) and records its round trip.
  BatchResult publish(const BatchContext& batch);

  // Closes the sink if it is open and `all`, or the lease tenure it was opened under
  // is over (`leased` false, or another `lease_epoch`). Never throws.
  void close(bool all, bool leased, std::uint64_t lease_epoch, spdlog::logger& logger,
             const std::string& name) noexcept;

  // A unit failed (`error`: the broker is down, timed out, or holds another store's
  // entries): closes the sink, records the health, and returns how long to wait
  // before the next try (the retry policy's backoff, never a dead letter).
  std::chrono::milliseconds failed(const std::exception_ptr& error, SysTime now,
                                   const RetryPolicy& retry, std::mt19937_64& rng,
                                   spdlog::logger& logger,
                                   const std::string& name) noexcept;
  // A unit went through: the backoff starts over; `forwarded` (it sent something):
  // the health is clear again.
  void recovered(bool forwarded) noexcept;

  struct Health {
    std::optional<SysTime> failing_since;
    std::string last_error;
    bool conflict = false;  // the last error was a DestinationConflict
  };
  Health health() const;
  // The health as its row is written, with the subscription's counters.
  SinkHealthRow row(std::uint64_t forwarded, std::uint64_t failed) const;
  std::chrono::microseconds round_trip(double q) const noexcept {
    return round_trip_.quantile(q);
  }
  // The health changed since its row (eventlite_sink_health) was written. The loop's
  // thread only.
  bool health_dirty = false;

 private:
  std::shared_ptr<Sink> sink_;  // constant after construction
  bool open_ = false;           // the loop's thread, or the unit in flight
  std::uint64_t epoch_ = 0;     // the lease epoch it was opened under; likewise
  int failures_ = 0;            // failed units in a row; the loop's thread
  LatencyHistogram round_trip_;  // one publish() call each, written by workers
  mutable std::mutex mu_;
  Health health_;  // guarded by mu_
};

}  // namespace eventlite::detail
