#pragma once

// One subscription as the processor holds it: what the application registered, the
// loop's view of its checkpoint and lease, and the counters metrics() reads.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <variant>
#include <vector>

#include "eventlite/processor.hpp"
#include "processor/backoff.hpp"
#include "processor/latency.hpp"
#include "processor/queries.hpp"
#include "processor/sink_session.hpp"

namespace eventlite::detail {

using SysTime = std::chrono::system_clock::time_point;
using SteadyTime = std::chrono::steady_clock::time_point;

// What a subscription delivers to: a handler (one event a call), a batch handler, or a
// sink, whose session with its destination carries all that a sink adds.
using Target = std::variant<Handler, BatchHandler, std::unique_ptr<SinkSession>>;

// The lease of a subscription, as this processor knows it. The loop's thread only.
struct LeaseHold {
  std::int64_t token = 0;
  std::uint64_t epoch = 0;  // moves on whenever the lease is taken or lost
  SysTime check_at{};       // next renewal, or next try to take it
  SysTime expires{};        // when it ends unless renewed
  std::uint64_t generation = 0;  // change generation of the last standby look
  bool standing_by = false;  // another process holds it (as of the last try)
};

// A subscription held back after a unit failed: on a storage error or a sink that
// failed, for a growing real-time pause; after a delivery SQLite rolled back, until
// its retry is due on the injected clock. The loop's thread only.
struct Pause {
  SteadyTime until{};
  SysTime held_until{};
  Backoff storage{std::chrono::milliseconds(500), std::chrono::seconds(30)};
};

struct SubscriptionState {
  // Constant after subscribe().
  std::string name;
  Target target;
  SubscriptionOptions options;
  RetryPolicy retry;
  std::unordered_set<std::string> types;
  std::size_t lanes = 1;  // at most this many lanes per unit

  bool matches(const Event& e) const {
    if (!types.empty() && !types.count(e.type)) return false;
    return options.stream_prefix.empty() ||
           std::string_view(e.stream).starts_with(options.stream_prefix);
  }
  bool holds_streams() const noexcept { return options.on_dead == OnDead::hold; }
  const Handler* handler() const noexcept { return std::get_if<Handler>(&target); }
  const BatchHandler* batch_handler() const noexcept {
    return std::get_if<BatchHandler>(&target);
  }
  // The sink's session; null for a handler's subscription.
  SinkSession* sink() const noexcept {
    const auto* s = std::get_if<std::unique_ptr<SinkSession>>(&target);
    return s ? s->get() : nullptr;
  }

  // The loop's thread only. The tenure, checkpoint, rows and pause are written only
  // where the loop applies what the parts return (apply.cpp).
  LeaseHold lease;
  Seq committed = 0;  // the position in the file, as this processor last saw it
  std::vector<RowWrite> pending_rows;
  // Failed attempts that no row could record (see DeliveryRolledBack), by seq.
  std::map<Seq, std::pair<int, std::string>> unrecorded;
  Pause pause;
  // The dispatcher's view of the work in the file (dispatch.cpp), which a lease taken
  // anew resets.
  bool in_flight = false;
  bool more = true;                    // the last read filled a batch
  std::uint64_t read_generation = 0;   // change generation of the last empty read
  std::uint64_t retry_generation = 0;  // change generation of the last retry check
  std::int64_t owed = 0;               // owed deliveries at the last retry check
  std::optional<SysTime> next_due;

  // Delivered (or owed in pending_rows) up to here. Each setter also publishes the
  // value for metrics(), so the two never disagree.
  Seq position() const noexcept { return position_; }
  void set_position(Seq p) noexcept {
    position_ = p;
    position_view_.store(p, std::memory_order_relaxed);
  }
  bool leased() const noexcept { return leased_; }
  void set_leased(bool v) noexcept {
    leased_ = v;
    leased_view_.store(v, std::memory_order_relaxed);
  }
  bool stopped() const noexcept { return stopped_; }
  void set_stopped(bool v) noexcept {
    stopped_ = v;
    stopped_view_.store(v, std::memory_order_relaxed);
  }

  // Read by metrics() from any thread.
  Seq position_view() const noexcept {
    return position_view_.load(std::memory_order_relaxed);
  }
  bool leased_view() const noexcept {
    return leased_view_.load(std::memory_order_relaxed);
  }
  bool stopped_view() const noexcept {
    return stopped_view_.load(std::memory_order_relaxed);
  }

  // Counters, written by workers, read by metrics() from any thread.
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> retried{0};
  std::atomic<std::uint64_t> dead{0};
  LatencyHistogram latency;

 private:
  Seq position_ = 0;
  bool leased_ = false;
  bool stopped_ = false;
  std::atomic<Seq> position_view_{0};
  std::atomic<bool> leased_view_{false};
  std::atomic<bool> stopped_view_{false};
};

}  // namespace eventlite::detail
