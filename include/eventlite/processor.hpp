#pragma once

// The background processor: delivers every event of a store to the handlers
// subscribed to it, at least once and in seq order within a stream, with retries,
// dead letters, leases between processes and periodic tasks.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eventlite/clock.hpp"
#include "eventlite/event.hpp"
#include "eventlite/handlers.hpp"
#include "eventlite/sink.hpp"

namespace spdlog {
class logger;
}

namespace eventlite {

class Store;

// How often a failing delivery is tried, and how long to wait between tries: the n-th
// retry waits min(cap, base * factor^(n-1)), spread by +/- jitter.
// Thread safety: a value.
struct RetryPolicy {
  // Attempts in all, the first included; 1: never retried.
  int max_attempts = 5;
  std::chrono::milliseconds base{500};
  double factor = 2.0;
  std::chrono::milliseconds cap{60'000};
  // Each wait is multiplied by a random factor in [1 - jitter, 1 + jitter], so that
  // failures of many events do not retry in lockstep. 0: exact waits.
  double jitter = 0.2;
};

// What happens when a delivery's attempts run out.
enum class OnDead {
  // Park it as a dead letter; the rest of its stream and the subscription go on.
  park,
  // Park it and stop the subscription: its position stays at the dead letter and no
  // new batch is delivered until the letter is retried or discarded (API or
  // `eventlite dead`). Events of other streams that were already being delivered in
  // the same batch may finish; they are delivered again when the subscription goes on.
  stop,
  // Park it and hold the rest of its stream behind it (per-stream order survives a
  // poison event) while every other stream goes on, until the letter is retried or
  // discarded; `eventlite status` and the eventlite_held_streams view show the held
  // streams.
  hold,
};

// Where a subscription that has no checkpoint yet starts.
enum class StartAt {
  beginning,  // every event in the log
  head,       // only events appended after it is first subscribed
};

// Thread safety: a value.
struct SubscriptionOptions {
  // Deliver only events of these types; empty: every type (or, for a HandlerMap, the
  // types it names).
  std::vector<std::string> types = {};
  // Deliver only events of streams whose name starts with this.
  std::string stream_prefix = {};
  // The processor's default retry policy when not set.
  std::optional<RetryPolicy> retry = {};
  OnDead on_dead = OnDead::park;
  // true: each batch of deliveries runs in one write transaction that also advances
  // the checkpoint, so the handler's writes through Context::transaction() happen
  // exactly once. The transaction holds the store's writer: appends elsewhere wait
  // for the batch, so keep such handlers short.
  bool transactional = false;
  StartAt start_at = StartAt::beginning;
  // Lanes a batch is split into (by stream; a stream's events stay in one lane, in
  // seq order), run in parallel on the worker pool. 1: the whole subscription in seq
  // order, which a sink into one broker stream needs; other subscriptions are not
  // slowed by it. 0: the processor's worker_threads (for a sink: 1).
  std::size_t max_lanes = 0;
};

// Called for every delivery of every subscription (on worker threads, or on the
// caller's thread under run_until_idle), for the application's own metrics and logs.
// Must be safe to call from several threads and must not throw (a throw is logged
// and ignored). Must not call stop(), run_until_idle() or wait_idle().
// Thread safety: a value; its functions are called concurrently.
struct Observer {
  std::function<void(const Context&)> on_start = {};
  std::function<void(const Context&, std::chrono::microseconds took)> on_delivered = {};
  // The attempt number is ctx.attempt().
  std::function<void(const Context&, std::string_view error)> on_failed = {};
  std::function<void(const Context&, std::string_view error)> on_dead = {};
  std::function<void(const Context&, double fraction, std::string_view message)>
      on_progress = {};
};

// How a Processor runs; the constructor validates it (InvalidArgument).
// Thread safety: a value.
struct ProcessorOptions {
  // How often another process's commits are looked for (PRAGMA data_version, a few
  // microseconds each); this process's appends wake the processor at once.
  std::chrono::milliseconds change_check_interval{2};
  // A full look for work even when nothing seemed to change (the fallback).
  std::chrono::milliseconds poll_interval{1000};
  // Wake on another process's commit through a watch on the file's directory
  // (inotify, Linux), data_version confirming; the change check above is then only
  // the fallback while nothing is due. false, or where the watch cannot run (an
  // in-memory store, no inotify): poll every change_check_interval.
  bool watch_file = true;
  // Events read per batch; also the most a transactional batch holds the writer for.
  std::size_t batch_size = 512;
  // Threads running handlers; events of different streams run in parallel.
  std::size_t worker_threads = 4;
  // A subscription's lease lasts this long and is renewed every third of it; after
  // its owner dies another process takes over within this time.
  std::chrono::milliseconds lease_time{15'000};
  // Checkpoints of work that went well are committed at most this often (failures
  // and stops commit at once). A crash redelivers at most this much work.
  std::chrono::milliseconds checkpoint_interval{200};
  RetryPolicy retry = {};
  // Time for retries, leases and periodic tasks; null: the system clock.
  std::shared_ptr<const Clock> clock = {};
  // Names this processor in leases and `eventlite status`; empty: "host:pid:id".
  // A lease is this processor's only while it holds the token it took, so two
  // processes given the same name still never dispatch one subscription together;
  // but a restart after a crash then waits out the old lease like any other process.
  std::string owner = {};
  Observer observer = {};
  // Where the processor logs; null: the store's logger.
  std::shared_ptr<spdlog::logger> logger = {};
};

// Counters since this processor was created, and the checkpoint as it stands.
// Thread safety: a value.
struct SubscriptionMetrics {
  std::string name = {};
  std::uint64_t delivered = 0;  // deliveries that returned
  std::uint64_t failed = 0;     // deliveries that threw
  std::uint64_t retried = 0;    // deliveries that were not first attempts
  std::uint64_t dead = 0;       // events parked as dead letters
  Seq position = 0;             // handled (or parked) up to here
  Seq lag = 0;                  // head - position
  bool leased = false;          // this processor dispatches it now
  bool stopped = false;         // stopped at a dead letter (OnDead::stop)
  // Age of the oldest event not yet delivered (0 when none): lag in time.
  std::chrono::milliseconds lag_time{0};
  // Handler run time of returned deliveries: median, 99th percentile and maximum
  // (from a log-scale histogram: within a factor of two).
  std::chrono::microseconds latency_p50{0};
  std::chrono::microseconds latency_p99{0};
  std::chrono::microseconds latency_max{0};
  // Sinks: while the sink fails and retries (the broker is down, a timeout), since
  // when and its last error (the broker's URL redacted); empty once it forwards again.
  // (`delivered` counts the events the broker acknowledged: forwarded.)
  std::optional<std::chrono::system_clock::time_point> failing_since = std::nullopt;
  std::string last_error = {};
  // Sinks: the last failure was a DestinationConflict (errors.hpp): the destination
  // holds another store's entries. Retrying will not mend it; a person must.
  bool destination_conflict = false;
  // Sinks: how long one publish() call took (a batch, one round trip to the broker
  // when pipelined), median and 99th percentile, within a factor of two.
  std::chrono::microseconds round_trip_p50{0};
  std::chrono::microseconds round_trip_p99{0};
};

// Delivers a store's events to subscribed handlers. Either start() it (a loop thread
// and a worker pool run until stop()) or drive it with run_until_idle().
//
// Storage errors (the database locked past the busy timeout, disk full, I/O) never
// lose an event: a checkpoint that cannot be committed is kept in memory and tried
// again, a batch whose transaction failed is delivered again after a growing pause,
// and the failures are logged. A crash before a checkpoint commits delivers that
// work again (at least once); transactional handlers see it once.
// Thread safety: safe to share; any member may be called from any thread, except
// stop(), run_until_idle() and wait_idle() from inside a handler, an observer or a
// periodic task of the same processor.
class Processor {
 public:
  // Keeps `store` open for as long as the processor lives; commits checkpoints and
  // leases through it. Throws InvalidArgument for bad options or a read-only store.
  explicit Processor(Store& store, ProcessorOptions options = {});
  Processor(Processor&&) noexcept;
  Processor& operator=(Processor&&) noexcept;
  ~Processor();  // stop(). Never throws.

  // Adds a subscription named `name`: its checkpoint is kept in the file under that
  // name, so a restarted process goes on where it stopped. May be called while
  // running; a new subscription catches up from its start. Throws InvalidArgument
  // for an empty name, a name starting with "every:", "bridge:" or
  // "rebuild:" (eventlite's own leases), or a name already subscribed.
  void subscribe(std::string name, Handler handler, SubscriptionOptions options = {});
  void subscribe(std::string name, const HandlerMap& handlers,
                 SubscriptionOptions options = {});
  // As subscribe(), with a handler that takes a lane's events at once (handlers.hpp).
  void subscribe_batch(std::string name, BatchHandler handler,
                       SubscriptionOptions options = {});
  // As subscribe(), forwarding the events to `sink` (sink.hpp). Throws
  // InvalidArgument as subscribe() does, or for a transactional sink.
  void sink(std::string name, std::shared_ptr<Sink> sink,
            SubscriptionOptions options = {});

  // Runs `task` about once per `interval` across every process that registers the
  // same name on this file (a lease in eventlite_leases, "every:NAME", decides which
  // one runs it): at most once per interval, and not again for that interval if the
  // process dies while running it. A throw is logged; the task runs again next
  // interval. Throws InvalidArgument for an empty name or one over 1000 bytes, an interval
  // under 1 ms, an empty task, or a name already registered.
  void every(std::string name, std::chrono::milliseconds interval,
             std::function<void()> task);

  // Starts the loop thread and the worker pool. Throws InvalidArgument if started or
  // while run_until_idle runs, StorageError if the store cannot be opened for reading.
  void start();
  // Stops taking new work, waits for deliveries in flight, commits checkpoints and
  // releases the leases so another process can take over at once. Idempotent.
  void stop() noexcept;

  // On the calling thread: delivers until nothing is left to do now (every leased
  // subscription at the head, no retry due at the clock's now), commits, and returns
  // the number of deliveries made. Handlers run on the calling thread, one at a time.
  // The leases taken stay held until the next call, stop() or the destructor, so
  // another process's processor waits for them. Throws InvalidArgument while started
  // and StorageError if SQLite fails to read. For tests and scripts.
  std::size_t run_until_idle();

  // While started: waits until every leased subscription is at the head, has its
  // checkpoint committed and owes no retries (retries due later are waited for);
  // false on timeout. Throws InvalidArgument if not started.
  bool wait_idle(std::chrono::milliseconds timeout);

  // One entry per subscription, in the order subscribed. Throws StorageError if the
  // head cannot be read. Dead letters are retried and discarded with the functions
  // of subscriptions.hpp; a running processor picks retried ones up at once.
  std::vector<SubscriptionMetrics> metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eventlite
