#pragma once

// Forwarding to NATS (link eventlite::nats): a Sink (sink.hpp) that publishes each
// event to `<subject_prefix>.<type>`, on core NATS or into a JetStream stream.
//
//   auto sink = eventlite::nats::make_sink({.url = "nats://127.0.0.1:4222",
//                                           .jetstream = true});
//   processor.sink("to-nats", sink, {.max_lanes = 1});
//
// JetStream (the reliable mode): each message carries the event id as `Nats-Msg-Id`
// (the server drops a copy sent again within the stream's duplicate window) and its
// seq as `Eventlite-Seq`. Up to `window` publishes await their acks at once; the
// checkpoint moves only past acknowledged events. On open() the sink reads the
// stream's last message and the processor moves the checkpoint forward to its seq,
// so a forwarder killed between the ack and its checkpoint resends nothing, even
// after the duplicate window has passed. A failure inside a window stops the batch at
// the first event not acknowledged; the next open() reconciles before resending.
//
// Core NATS reaches only the subscribers connected at that moment (at most once),
// as Redis Pub/Sub does.
//
// Errors: no server, a lost connection, a timeout, a stream that is missing are
// retryable (lag grows, nothing is parked); a refused authorization, a payload over
// the server's limit, a type that is not a valid subject token are not (the event is
// parked with the message). Messages name the server by its redacted URL.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "eventlite/sink.hpp"

namespace spdlog {
class logger;
}

namespace eventlite::nats {

enum class Format {
  envelope,     // DESIGN.md's envelope (eventlite::to_envelope)
  cloudevents,  // CloudEvents 1.0 structured JSON (eventlite::to_cloudevent)
};

struct SinkOptions {
  // nats://[user:password@|token@]host[:port], several separated by commas.
  std::string url = "nats://127.0.0.1:4222";
  bool jetstream = false;
  // The subject is subject_prefix + "." + the event's type.
  std::string subject_prefix = "events";
  // JetStream: the stream the subjects belong to.
  std::string stream = "EVENTS";
  // JetStream: create the stream when it is missing (file storage, subjects
  // "<subject_prefix>.>", this duplicate window).
  bool create_stream = false;
  std::chrono::milliseconds duplicate_window{120000};
  // JetStream: asynchronous publishes awaiting their acks at most.
  std::size_t window = 256;
  Format format = Format::envelope;
  std::string source = "eventlite";  // CloudEvents `source`
  // Passed to libnats: a credentials file (JWT and NKey), a token, TLS with a CA file.
  std::string credentials_file = {};
  std::string token = {};
  bool tls = false;
  std::string ca_file = {};
  // Connecting, and waiting for a batch's acks (or its flush on core NATS).
  std::chrono::milliseconds timeout{5000};
  std::shared_ptr<spdlog::logger> logger = {};
};

// Throws InvalidArgument for an empty URL, prefix or stream; connects in open().
std::shared_ptr<Sink> make_sink(SinkOptions options);

// `url` with passwords and tokens replaced by "***", for logs and errors.
std::string redacted(std::string_view url);

}  // namespace eventlite::nats
