#pragma once

// Forwarding to Redis (link eventlite::redis): a Sink (sink.hpp) that appends each
// event to a Redis Stream or publishes it on a Pub/Sub channel.
//
//   auto sink = eventlite::redis::make_sink({.url = "redis://127.0.0.1:6379"});
//   processor.sink("to-redis", sink, {.max_lanes = 1});
//
// Stream mode (the default) is the reliable one. Each event becomes the entry
// `<seq>-0` (so `XRANGE events 100 200` is seqs 100 to 200) with two fields: `event`,
// holding the envelope (or CloudEvent), and `store`, the store's id. Redis refuses an
// id at or below the stream's last one, so an event sent twice (after a crash between
// Redis's reply and the checkpoint, or after a rewind) is stored once; on open() the
// sink reads the stream's last entry and, when it is this store's event at that seq
// (store id and event id), the processor moves the checkpoint forward to it before
// sending. Keep max_lanes at 1 for one key: lanes in parallel would append out of seq
// order.
//
// One key, one store: entry ids are seqs, so a second store forwarding into the same
// key is refused (DestinationConflict, at open or at the first id Redis refuses),
// never mixed in or taken for the first one's events. Give each store its own key with
// `{store}` in the key ("events:{store}" becomes "events:billing", or the store's id
// when it has no name).
//
// Pub/Sub mode publishes to `events:<type>` for services that `PSUBSCRIBE events:*`.
// Redis Pub/Sub reaches only the subscribers connected at that moment: a subscriber
// that is down or reconnecting misses events for good, and nothing tells the sink.
// Use it where that is acceptable (live dashboards, cache invalidation); use a
// stream where a consumer must see every event.
//
// Errors: a connection refused, lost or timed out, a server loading its data or out
// of memory are retryable (BrokerError::retryable(): the processor retries with its
// backoff, lag grows, nothing is lost). A refused password, a key of the wrong type, a
// payload the server refuses are not: the event is parked as a dead letter with
// Redis's message. Messages name the server by its redacted URL, never the password.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "eventlite/envelope.hpp"
#include "eventlite/inbox.hpp"
#include "eventlite/sink.hpp"
#include "eventlite/store.hpp"

namespace spdlog {
class logger;
}

namespace eventlite::redis {

// `url` (redis://[[user]:password@]host[:port][/db]) with its password replaced by
// "***", for logs and errors: "redis://user:***@host:port/db". Throws InvalidArgument
// for a malformed URL (the message never holds the password).
std::string redacted(std::string_view url);

enum class Mode {
  stream,  // XADD to a Redis Stream: reliable, deduplicated by entry id
  pubsub,  // PUBLISH: only subscribers connected at the time receive it
};

struct SinkOptions {
  // Where to connect: redis://[[user]:password@]host[:port][/db]. rediss:// (TLS) is
  // refused: Debian's hiredis is built without TLS.
  std::string url = "redis://127.0.0.1:6379";
  Mode mode = Mode::stream;
  // Stream mode: the stream's key. "{store}" in it is replaced by the store's name (or
  // id, without one) at open. "{type}" and "{stream}" are replaced by the event's type
  // and stream (one key per type or per stream), in one pass: a name holding
  // "{stream}" or "{type}" is put in as it is. With either of these two, open() cannot
  // tell where the copy stands, and resends are still refused key by key (and checked
  // to be this store's).
  std::string key = "events";
  // Stream mode: trim with XADD MAXLEN ~ N (approximate: Redis trims whole nodes, so
  // a few more entries may remain). nullopt: never trim.
  std::optional<std::size_t> maxlen = std::nullopt;
  // Pub/Sub mode: the channel is channel_prefix + the event's type.
  std::string channel_prefix = "events:";
  PayloadFormat format = PayloadFormat::envelope;
  // CloudEvents `source` attribute; empty: the store's, "eventlite://<name or id>".
  std::string source = {};
  // Connecting, and each round trip (a whole pipelined batch's replies); past it the
  // batch fails as retryable and the connection is dropped.
  std::chrono::milliseconds timeout{5000};
  // Where the sink logs what it cannot return (an entry appended out of seq order);
  // null: the processor's logger (the store's, unless the processor was given one).
  std::shared_ptr<spdlog::logger> logger = {};
};

// The sink; throws InvalidArgument for a malformed URL or key template. It connects
// in open(), not here.
std::shared_ptr<Sink> make_sink(SinkOptions options);

// The entry id an event gets in stream mode: "<seq>-0".
std::string entry_id(Seq seq);

// Bringing another service's events in: a Redis Stream (one the Redis sink writes, or
// any whose entries carry an envelope in their `event` field) read with a consumer
// group and appended to a local store, idempotently by event id, keeping each
// event's id, stream, type, time, data and metadata.
//
// Each step reads a batch (first what this consumer was given and did not
// acknowledge, then entries another consumer left pending longer than claim_idle,
// XAUTOCLAIM, then new ones, XREADGROUP), appends it in one transaction, and only
// after that commit acknowledges it (XACK). Killed in between, the entries come again
// and are found already stored: nothing is lost or doubled. An entry that is not an
// envelope, or whose id is stored with other content, is appended instead to the
// local stream `<rejected_prefix><name>` as a BridgeEntryRejected event naming the
// entry and the reason (and then acknowledged): kept, visible, never retried for
// ever. One bridge per name runs at a time across processes (a Lease in the file);
// others stand by.
struct BridgeOptions {
  std::string url = "redis://127.0.0.1:6379";
  std::string key = "events";       // the stream read
  std::string group = "eventlite";  // created at the stream's start if missing
  // The bridge's name: its lease ("bridge:<name>") and its consumer name in the group.
  std::string name = "redis-bridge";
  std::size_t batch = 512;  // entries per step
  // How long a step waits for new entries (XREADGROUP BLOCK) when none are there.
  std::chrono::milliseconds block{200};
  // Entries pending with another consumer for this long are claimed (XAUTOCLAIM).
  std::chrono::milliseconds claim_idle{30000};
  std::chrono::milliseconds timeout{5000};  // connecting and each round trip
  std::chrono::milliseconds lease_time{15000};
  std::string rejected_prefix = "eventlite-rejected-";
  std::shared_ptr<spdlog::logger> logger = {};
};

// A broker error (Redis cannot be reached or refuses) leaves the entries pending in
// the group, to come again; run() retries it with a growing pause (up to 5 s), so a
// Redis that restarts is picked up again. Thread safety: as InboxBridge.
class Bridge : public InboxBridge {
 public:
  // Throws InvalidArgument for a malformed URL, an empty key or group, or a batch of
  // 0; connects on the first step.
  Bridge(Store& store, BridgeOptions options);
  ~Bridge() override;

 private:
  std::size_t read_batch(std::vector<InboxEntry>& out, bool tenure_starts) override;
  void ack(std::span<const InboxEntry> stored) override;
  void disconnect() noexcept override;

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eventlite::redis
