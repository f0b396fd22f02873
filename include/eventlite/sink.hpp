#pragma once

// A sink forwards a subscription's events to something outside the file: a Redis
// stream, a NATS subject, another service. The processor runs it like any other
// subscription (checkpoint, lease, retries, dead letters, rewind, status, metrics)
// and adds what forwarding needs: a connection opened before the first batch and
// after every failure, batches to pipeline, and a reconciliation with the outside
// copy, so that what the broker already holds is never sent twice.

#include <functional>
#include <optional>
#include <string>

#include "eventlite/event.hpp"
#include "eventlite/handlers.hpp"
#include "eventlite/store.hpp"

namespace spdlog {
class logger;
}

namespace eventlite {

// What the processor tells a sink when it opens it. A sink may keep it until its
// close(): the processor closes its sinks before it, or the store it reads, goes
// away, and `event_id` reads that store.
// Thread safety: immutable.
struct SinkContext {
  // Whose events these are. Whatever the sink sends carries store.id, so that its
  // open() can tell this store's entries at the destination from another's.
  StoreIdentity store = {};
  // The id of this store's event at `seq`, nullopt when there is none. A sink trusts
  // an entry at the destination as this store's event at seq only when its store id
  // and event id match.
  std::function<std::optional<std::string>(Seq seq)> event_id = {};
  // The processor's logger, for what the sink cannot return; never null from the
  // processor. A sink's own `logger` option, when set, takes precedence.
  spdlog::logger* logger = nullptr;
};

// Implemented by the Redis and NATS sinks (eventlite::redis, eventlite::nats), and by
// applications for their own destinations.
//
// The processor calls open(), then publish() for each batch, from one worker thread
// at a time (unless the subscription's max_lanes is above 1: then publish() may run
// on several threads at once, for batches of different streams), and close() on
// stop, after a failure and when the lease is lost. After close() the next batch
// opens it again.
//
// A publish() that fails with an error a retry can help (BrokerError with
// retryable(), or any error that is not is_permanent()) fails the whole batch:
// nothing of it counts, the sink is closed, and the batch is sent again after the
// subscription's backoff (never parked: a broker that is down for an hour makes lag,
// not dead letters), from where open() says the outside copy stands. An error that no
// retry can mend (is_permanent(): authentication, a payload the broker refuses) parks
// the failing event as a dead letter with the broker's message, as a handler's would.
class Sink {
 public:
  virtual ~Sink() = default;

  // Connects. Returns the seq of the last event of this store (context.store) that the
  // outside copy already holds, when the sink can tell (this store's last entry of a
  // Redis stream, its last message in a JetStream stream), checked against
  // context.event_id: the processor moves the checkpoint forward to it and sends
  // nothing up to it again. 0: none of this store's events are there. nullopt: it
  // cannot tell (Pub/Sub), and what was sent before a crash may be sent again (at
  // least once). Another store's entry is never taken for this one's. Throws
  // DestinationConflict when the destination cannot hold two stores and holds
  // another's (the processor retries after its backoff and parks nothing), another
  // BrokerError when it cannot connect.
  virtual std::optional<Seq> open(const SinkContext& context) = 0;

  // Forwards the batch's events in order; returns once the outside acknowledged them
  // (BatchResult::ok()), or where the first one failed. Events of a batch that were
  // acknowledged before a failure may be sent again after the next open() unless
  // open() tells where the outside copy stands.
  virtual BatchResult publish(const BatchContext& batch) = 0;

  // Disconnects. Never throws.
  virtual void close() noexcept = 0;
};

}  // namespace eventlite
