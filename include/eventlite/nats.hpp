#pragma once

// Forwarding to NATS (link eventlite::nats): a Sink (sink.hpp) that publishes each
// event to `<subject_prefix>.<type>`, on core NATS or into a JetStream stream; and a
// Bridge that brings a JetStream stream's events into a local store.
//
//   auto sink = eventlite::nats::make_sink({.url = "nats://127.0.0.1:4222",
//                                           .jetstream = true});
//   processor.sink("to-nats", sink, {.max_lanes = 1});
//
// JetStream (the reliable mode): each message carries the event id as `Nats-Msg-Id`
// (the server drops a copy sent again within the stream's duplicate window), its seq
// as `Eventlite-Seq` and the store's id as `Eventlite-Store`. Up to `window` publishes
// await their acks at once; the checkpoint moves only past acknowledged events. Many
// stores may forward into one stream, on the same subjects: on open() the sink reads
// the stream back from its end to this store's newest message (skipping other
// stores'; one round trip per message) and the processor moves the checkpoint forward
// to its seq, so a forwarder killed between the ack and its checkpoint resends
// nothing, even after the duplicate window has passed. A failure inside a window stops
// the batch at the first event not acknowledged; the next open() reconciles before
// resending.
//
// Core NATS reaches only the subscribers connected at that moment (at most once),
// as Redis Pub/Sub does.
//
// Errors: no server, a lost connection, a timeout, a stream that is missing are
// retryable (lag grows, nothing is parked); a refused authorization, a payload over
// the server's limit, a type that is not a valid subject token (empty, or holding
// '.', '*', '>', white space or another control character), an id holding a line
// break (JetStream: it cannot be the Nats-Msg-Id header) are not (the event is parked
// with the message; what is stored is never changed). Messages name the server by its
// redacted URL.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "eventlite/envelope.hpp"
#include "eventlite/inbox.hpp"
#include "eventlite/sink.hpp"
#include "eventlite/store.hpp"

namespace spdlog {
class logger;
}

namespace eventlite::nats {

struct SinkOptions {
  // nats://[user:password@|token@]host[:port], several separated by commas.
  std::string url = "nats://127.0.0.1:4222";
  bool jetstream = false;
  // The subject is subject_prefix + "." + the event's type. The prefix may be
  // several tokens ("app.events"), without wildcards or empty ones.
  std::string subject_prefix = "events";
  // JetStream: the stream the subjects belong to (a JetStream name: no '.', '*',
  // '>', '/', '\' or white space).
  std::string stream = "EVENTS";
  // JetStream: create the stream when it is missing (file storage, subjects
  // "<subject_prefix>.>", this duplicate window).
  bool create_stream = false;
  std::chrono::milliseconds duplicate_window{120000};
  // JetStream: asynchronous publishes awaiting their acks at most.
  std::size_t window = 256;
  // JetStream: open() reads at most this many messages back, newest first, looking
  // for this store's newest (one round trip each, skipping other stores'; a stream
  // with none of this store's messages is read whole, up to this). Past it, where the
  // copy stands is unknown: the sink sends from the checkpoint (at least once; the
  // stream's duplicate window drops the copies it still remembers).
  std::size_t reconcile_limit = 100000;
  PayloadFormat format = PayloadFormat::envelope;
  // CloudEvents `source`; empty: the store's, "eventlite://<name or id>".
  std::string source = {};
  // Passed to libnats: a credentials file (JWT and NKey), a token, TLS with a CA file.
  std::string credentials_file = {};
  std::string token = {};
  bool tls = false;
  std::string ca_file = {};
  // Connecting, and waiting for a batch's acks (or its flush on core NATS).
  std::chrono::milliseconds timeout{5000};
  std::shared_ptr<spdlog::logger> logger = {};
};

// Throws InvalidArgument, naming the option, for a malformed URL (see Bridge), a
// prefix that is not a subject, or a stream name JetStream cannot take; connects in
// open().
std::shared_ptr<Sink> make_sink(SinkOptions options);

// `url` with passwords and tokens replaced by "***", for logs and errors.
std::string redacted(std::string_view url);

// Bringing another service's events in: a JetStream stream (one the NATS sink writes,
// or any whose messages are envelopes) read through a durable pull consumer and
// appended to a local store (inbox.hpp: idempotently by event id, keeping each
// event's id, stream, type, time, data and metadata; what is not an envelope kept as
// a BridgeEntryRejected event; one bridge per name across processes).
//
// Each step fetches a batch, appends it in one transaction (with the last message's
// stream seq, where the bridge stands: eventlite_bridges), and only after that commit
// acknowledges each message. The consumer (explicit acks, at most `batch` awaiting
// them) is the bridge's own: whatever goes wrong between fetch and ack (a kill, an
// error, a lost lease, a redelivery) leaves messages handed out and never
// acknowledged, and the next connection creates the consumer again from past its
// ack floor and the file's position, so those come again first, in the stream's
// order, and the ones already stored are found so. A consumer that is missing is
// created from the file's position. Give each bridge its own durable: one with other
// settings (not explicit acks, another filter) is refused, not changed.
struct BridgeOptions {
  std::string url = "nats://127.0.0.1:4222";
  std::string stream = "EVENTS";   // the JetStream stream read
  std::string durable = "eventlite";  // the durable consumer, created if missing
  // Only messages on these subjects (NATS wildcards allowed); empty: all the stream's.
  std::string filter_subject = {};
  // The bridge's name: its lease ("bridge:<name>") and its rejected stream.
  std::string name = "nats-bridge";
  std::size_t batch = 512;                // messages per step
  std::chrono::milliseconds block{200};   // how long a fetch waits when none are there
  // A message handed out and not acknowledged for this long is sent again (the
  // consumer's AckWait).
  std::chrono::milliseconds ack_wait{30000};
  std::chrono::milliseconds lease_time{15000};
  std::string rejected_prefix = "eventlite-rejected-";
  // As for the sink.
  std::string credentials_file = {};
  std::string token = {};
  bool tls = false;
  std::string ca_file = {};
  std::chrono::milliseconds timeout{5000};
  std::shared_ptr<spdlog::logger> logger = {};
};

// A broker error (the server cannot be reached, the stream is missing, the consumer
// refused) acknowledges nothing: the messages come again; run() retries it with a
// growing pause (up to 5 s). Thread safety: as InboxBridge.
class Bridge : public InboxBridge {
 public:
  // Throws InvalidArgument for a malformed URL (not [nats|tls|ws|wss://][user:pass@|
  // token@]host[:port], comma-separated), a stream or durable name that JetStream
  // cannot take (empty, or holding '.', '*', '>', '/', '\', white space or another
  // control character), a filter_subject that is not a subject, or a batch of 0;
  // connects on the first step.
  Bridge(Store& store, BridgeOptions options);
  ~Bridge() override;

 private:
  std::size_t read_batch(std::vector<InboxEntry>& out, bool tenure_starts) override;
  void ack(std::span<const InboxEntry> stored) override;
  void disconnect() noexcept override;

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eventlite::nats
