#pragma once

// Bringing another service's events into a store: what every bridge needs besides
// reading its broker (redis::Bridge and nats::Bridge are built on it; so can be one
// for a broker eventlite does not know).
//
//   eventlite::Inbox inbox(store, {.name = "orders-in", .origin = "topic orders"});
//   inbox.run([&] {
//     if (inbox.hold() == eventlite::Inbox::Hold::standing_by) return std::size_t{0};
//     std::vector<eventlite::InboxEntry> batch = read_some();  // not acknowledged yet
//     if (batch.empty() || !inbox.append(batch)) return std::size_t{0};
//     acknowledge(batch);  // only after the commit: killed before it, they come again
//     return batch.size();
//   });
//
// append() stores a batch in one transaction, each envelope idempotently by its event
// id (one that is stored already with the same content is a no-op), keeping the id,
// stream, type, time, data and metadata. An entry that is not an envelope, or whose
// id is stored with other content, becomes a BridgeEntryRejected event in the stream
// `<rejected_prefix><name>` (data: origin, entry, reason, and the entry's text), in
// the same transaction: kept and visible, never retried for ever. One inbox per name
// works at a time across processes: a Lease "bridge:<name>" in the file, checked again
// inside each batch's transaction, so a holder that stalled past its lease cannot
// append after the process that took over.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "eventlite/store.hpp"

namespace spdlog {
class logger;
}

namespace eventlite {

// One entry as the broker gave it.
struct InboxEntry {
  std::string id;                      // the broker's name for it, for rejections
  std::optional<std::string> payload;  // the envelope; nullopt: the entry has none
};

struct InboxOptions {
  // The lease is "bridge:<name>"; rejections go to <rejected_prefix><name>.
  std::string name;
  // Where the entries come from, as rejections and log lines name it:
  // "redis stream events", "jetstream stream EVENTS".
  std::string origin;
  // Log lines start with it: "redis bridge orders-in: ...".
  std::string kind = "bridge";
  // The reason a rejection gives for an entry without a payload.
  std::string no_payload = "the entry has no event in it";
  std::chrono::milliseconds lease_time{15000};
  std::string rejected_prefix = "eventlite-rejected-";
  std::shared_ptr<spdlog::logger> logger = {};  // null: spdlog's default logger
};

// Thread safety: one thread at a time, but stop() from any.
class Inbox {
 public:
  // Throws InvalidArgument for an empty name or a lease time that is not positive.
  Inbox(Store& store, InboxOptions options);
  ~Inbox();
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  enum class Hold {
    standing_by,  // another process holds the lease
    holding,      // this one held it already
    taken,        // this one has just taken it: a tenure starts (read what was left)
  };
  // Takes or renews the lease (renewing at most every lease_time / 3). Throws
  // StorageError when the file cannot be written.
  Hold hold();
  bool held() const noexcept;

  // Stores `entries` in one transaction, as above. Returns false, storing nothing,
  // when the file no longer shows this process's lease (then held() is false and the
  // entries must not be acknowledged: they are the new holder's). Throws StorageError
  // when the file cannot be written (nothing stored).
  bool append(std::span<const InboxEntry> entries);

  // Calls `step` (which returns how many entries it took in) until stop(). When
  // this process stands by it waits lease_time / 3 between steps; an exception is
  // logged and the step retried after a pause growing from 100 ms to 5 s (a broker
  // that restarts is picked up again). Releases the lease when stopped.
  void run(const std::function<std::size_t()>& step);
  void stop() noexcept;
  // Waits `d`, or less if stop() is called; returns whether it was.
  bool pause(std::chrono::milliseconds d);
  // Ends the lease now, so another process can take it at once. Never throws.
  void release() noexcept;

  const InboxOptions& options() const noexcept;
  spdlog::logger& logger() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eventlite
