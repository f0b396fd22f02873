#pragma once

// Bringing another service's events into a store: what every bridge needs besides
// reading its broker. InboxBridge, at the end, is the step and run loop over a
// read-batch / acknowledge pair (redis::Bridge and nats::Bridge fill it in; so can a
// bridge for a broker eventlite does not know); Inbox is what it is built on:
//
//   eventlite::Inbox inbox(store, {.name = "orders-in", .broker = "kafka",
//                                  .source = "orders"});
//   inbox.run([&] {
//     if (inbox.hold() == eventlite::Inbox::Hold::standing_by) return std::size_t{0};
//     std::vector<eventlite::InboxEntry> batch = read_some();  // not acknowledged yet
//     if (batch.empty()) return std::size_t{0};                // run() waits idle_wait
//     if (!inbox.append(batch)) return std::size_t{0};  // lease lost: not ours to ack
//     acknowledge(batch);  // only after the commit: killed before it, they come again
//     return batch.size();
//   });
//
// append() stores a batch in one transaction:
// - each envelope (or CloudEvent, told apart by its "specversion") idempotently by
//   its event id: one that is stored already with the same content is a no-op; the
//   id, stream, type, time, data and metadata are kept;
// - an entry that is neither, or whose id is stored with other content, becomes a
//   BridgeEntryRejected event in the stream `<rejected_prefix><name>`, its data
//   {"broker", "source", "entry", "reason", "bytes", "event"} ("event": the entry's
//   text, its first 4 KiB), with an id derived from the bridge, the entry and its
//   text, so that the same entry rejected again is stored once;
// - where the bridge stands: the last entry's id, in eventlite_bridges
//   (last_entry(), `eventlite status`).
// One inbox per name works at a time across processes: a Lease "bridge:<name>" in
// the file, checked again inside each batch's transaction, so a holder that stalled
// past its lease cannot append after the process that took over.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "eventlite/store.hpp"

namespace spdlog {
class logger;
}

namespace eventlite {

// One entry as the broker gave it.
struct InboxEntry {
  std::string id;                      // the broker's name for it: "1700000000000-0"
  std::optional<std::string> payload;  // its event; nullopt: the entry has none
  std::string why_none = {};           // the reason a rejection gives for no payload
};

struct InboxOptions {
  // The lease is "bridge:<name>"; rejections go to <rejected_prefix><name>.
  std::string name;
  std::string broker;  // "redis", "nats", ...: in rejections, logs, status
  std::string source;  // the stream read: a Redis key, a JetStream stream name
  std::chrono::milliseconds lease_time{15000};
  std::string rejected_prefix = "eventlite-rejected-";
  // run(): the pause after a step that took nothing in while holding the lease (0
  // for a step that blocks on its broker by itself).
  std::chrono::milliseconds idle_wait{100};
  std::shared_ptr<spdlog::logger> logger = {};  // null: spdlog's default logger
};

// Thread safety: one thread at a time, but stop() from any.
class Inbox {
 public:
  // Throws InvalidArgument for an empty name, broker or source, a lease time that is
  // not positive, or a rejected stream name the store would refuse.
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
  // The id of the last entry stored by a bridge of this name, if any. Throws
  // StorageError.
  std::optional<std::string> last_entry();

  // Calls `step` (which returns how many entries it took in) until stop(): after a
  // step that took none, it waits idle_wait, or lease_time / 3 while another process
  // holds the lease. A retryable error (a broker that is down, a file that is busy)
  // is logged and the step retried after a pause growing from 100 ms to 5 s; one no
  // retry can mend (BrokerError not retryable(), InvalidArgument) is logged and
  // thrown. Releases the lease when it returns. After stop() it returns at once,
  // whenever it is called.
  void run(const std::function<std::size_t()>& step);
  void stop() noexcept;
  // Ends the lease now, so another process can take it at once. Never throws.
  void release() noexcept;

  const InboxOptions& options() const noexcept;
  spdlog::logger& logger() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A bridge from one broker: each step holds the inbox's lease, reads a batch from the
// broker, stores it (Inbox::append) and only then acknowledges it. A broker fills in
// the three calls below; a bridge that is killed between the commit and the
// acknowledgement gets the batch again, and the inbox stores it once.
// Thread safety: one thread at a time, but stop() from any.
class InboxBridge {
 public:
  virtual ~InboxBridge();
  InboxBridge(const InboxBridge&) = delete;
  InboxBridge& operator=(const InboxBridge&) = delete;

  // One step; returns the entries it took in (stored, found stored, rejected, or
  // acknowledged with nothing to store). 0 when none came, or when another process
  // holds the lease. Throws what read_batch() and ack() throw (BrokerError: nothing
  // is acknowledged and the entries come again) and StorageError when the file
  // cannot be written.
  std::size_t step();
  // Steps until one takes nothing in; returns the total.
  std::size_t run_until_idle();
  // Steps until stop() (Inbox::run: errors are retried with a growing pause).
  void run();
  void stop() noexcept;
  // Whether this process holds the bridge's lease (as of the last step).
  bool active() const noexcept;

 protected:
  InboxBridge(Store& store, InboxOptions options);
  Inbox& inbox() noexcept { return inbox_; }

  // Reads the next entries into `out` (empty on entry), not acknowledged yet; when a
  // lease tenure starts (`tenure_starts`), those the broker handed out before and no
  // one acknowledged come first. Returns how many entries the broker handed out (some
  // may have nothing to store, and are acknowledged with the rest); 0: none came.
  virtual std::size_t read_batch(std::vector<InboxEntry>& out, bool tenure_starts) = 0;
  // Acknowledges what the last read_batch() handed out, now that it is stored
  // (`stored`: the entries it gave to store).
  virtual void ack(std::span<const InboxEntry> stored) = 0;
  // Drops the connection, so the next read_batch() connects again: after an error,
  // when the lease moved, when a tenure starts. Never throws.
  virtual void disconnect() noexcept = 0;

 private:
  Inbox inbox_;
  std::vector<InboxEntry> entries_;
};

}  // namespace eventlite
