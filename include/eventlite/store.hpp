#pragma once

// An event store in one SQLite file (or in memory). Appends are atomic per call,
// checked against an expected stream version, idempotent by event id, and share
// commits with concurrent appenders (group commit).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eventlite/event.hpp"
#include "eventlite/read.hpp"

struct sqlite3;
namespace SQLite {
class Database;
}
namespace spdlog {
class logger;
}

namespace eventlite {

class Transaction;
class Upcasters;
namespace detail {
struct StoreAccess;
}

enum class Durability {
  // fsync on every commit; concurrent appends share commits. Survives power loss.
  full,
  // WAL without fsync per commit: survives a process crash, may lose the last
  // commits on power loss. Several times faster for single appends.
  normal,
};

// How Store::open() opens a store; open() validates it (InvalidArgument).
// Thread safety: a value.
struct StoreOptions {
  Durability durability = Durability::full;
  // Wait this long on another connection's lock, then throw StorageError (busy).
  std::chrono::milliseconds busy_timeout{5000};
  // Open for reading only: appends and transactions throw InvalidArgument, nothing
  // in the file is ever written. The file must exist and be set up.
  bool read_only = false;
  // Create a missing file and add eventlite's tables to a database without them.
  // false: a missing file throws StorageError and a database that `eventlite init`
  // has not set up throws NotAnEventliteDatabase, both leaving the file untouched.
  bool create_if_missing = true;
  // Permissions of a file this call creates, less the process's umask (SQLite's own
  // default is 0644). Its -wal and -shm files take the same.
  std::filesystem::perms file_mode =
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;
  // Cap on an event's data plus metadata, in bytes; larger events are InvalidEvent.
  std::size_t max_event_bytes = 1 << 20;
  // Reader connections kept open for reads (files only); more readers wait.
  std::size_t max_readers = 4;
  // Where the store logs; null: a stderr logger at warn and up.
  std::shared_ptr<spdlog::logger> logger = {};
  // Applied to every event read as an Event and delivered by a processor
  // (upcast.hpp); null: events as stored.
  std::shared_ptr<const Upcasters> upcasters = {};
};

// Who a store is. `id` is a UUID made once, when the file was created or first
// migrated (schema 6), and never changed: a copy of the file, or a backup restored,
// is the same store. `name` is optional, given by people (`eventlite init DB --name
// billing`). Whatever a sink sends carries the id, so that a sink tells its own
// entries at a shared destination from another store's.
// Thread safety: a value.
struct StoreIdentity {
  std::string id = {};    // empty only for a read-only file of schema 5 or older
  std::string name = {};  // empty: none given
  // Where a store is named in a URI, a key or a subject: the name, or else the id.
  const std::string& label() const noexcept { return name.empty() ? id : name; }
  bool operator==(const StoreIdentity&) const = default;
};

// Why `name` cannot name a store ("" when it can): 1 to 64 characters of A-Z, a-z,
// 0-9, '_' and '-', starting with a letter or digit, since a name becomes part of
// broker keys, NATS subjects and the CloudEvents source URI.
std::string store_name_problem(std::string_view name);

// A stream's summary, as `eventlite streams` prints it.
// Thread safety: a value.
struct StreamInfo {
  std::string stream = {};
  Version version = 0;
  Seq last_seq = 0;
  bool operator==(const StreamInfo&) const = default;
};

// Thread safety: safe to share; any member may be called from any thread.
class Store {
 public:
  // Opens or creates `path` (or ":memory:", a fresh private in-memory database that
  // several threads may share) and migrates it, each migration in one transaction.
  // `path` is always a file's path, never an SQLite URI, even if it starts with
  // "file:"; "./:memory:" is a file. Throws SchemaTooNew, leaving the file untouched, if
  // its schema is newer than this library; NotAnEventliteDatabase if it is not a SQLite
  // file; StorageError if it cannot be opened, is read-only when writing was asked, or is
  // locked too long.
  static Store open(const std::filesystem::path& path, StoreOptions options = {});

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();  // Waits for appends in flight. Never throws.

  // Appends `events` to `stream` atomically and returns their seqs, in order. Events
  // whose id is already stored with the same content are not written again: their
  // stored seqs are returned. Throws, and writes nothing of this call:
  // VersionConflict if `expected` does not hold (checked only when something new is
  // written), InvalidEvent for a bad event (empty stream or type, a name or id over
  // 1024 bytes or holding a NUL byte, malformed JSON, metadata not an object, one new
  // id twice in the batch, data and metadata over max_event_bytes), IdConflict for an
  // id stored with other content, InvalidArgument for an empty batch or a read-only
  // store, StorageError if SQLite fails. Other appenders sharing the commit are not
  // affected by this call's failure. Must not be called on a thread that holds
  // an open Transaction of this store (InvalidArgument): use Transaction::append.
  std::vector<Seq> append(std::string_view stream, std::span<const NewEvent> events,
                          Expected expected = Expected::any());
  Seq append(std::string_view stream, const NewEvent& event,
             Expected expected = Expected::any());

  // As append(), without blocking: the future holds the seqs or the exception.
  std::future<std::vector<Seq>> append_async(std::string stream,
                                             std::vector<NewEvent> events,
                                             Expected expected = Expected::any());

  // Begins a write transaction (BEGIN IMMEDIATE) on the store's connection, in which
  // the application runs its own SQL and appends events: both commit or roll back
  // together. Other appends (append_async included) wait until it ends. Throws
  // StorageError if the database stays locked past the busy timeout, InvalidArgument
  // if this thread already holds a Transaction of this store or it is read-only.
  Transaction transaction();

  // Appends on a connection the application holds, inside the transaction the
  // application has open on it (BEGIN IMMEDIATE), on this store's file. The events
  // commit or roll back with that transaction. Throws InvalidArgument if no
  // transaction is open, otherwise as append(); a failure leaves the application's
  // transaction open with none of this call's events in it. Readers of this store in
  // this process are woken when that connection commits: the call installs a WAL
  // hook on the connection (replacing any the application set) that goes on doing
  // what the connection's wal_autocheckpoint setting did. On SQLite before 3.51.3,
  // set wal_autocheckpoint=0 on it: its passive checkpoints are exposed to SQLite's
  // WAL-reset bug, and the store's writer checkpoints without that risk. Its commits
  // are as durable as that connection's own `synchronous` setting, whatever this
  // store's durability: under Durability::full, give it synchronous=FULL too.
  std::vector<Seq> append_in(sqlite3* db, std::string_view stream,
                             std::span<const NewEvent> events,
                             Expected expected = Expected::any());
  std::vector<Seq> append_in(SQLite::Database& db, std::string_view stream,
                             std::span<const NewEvent> events,
                             Expected expected = Expected::any());

  // Events in seq order, lazily, filtered as `options` says.
  EventRange read_all(ReadOptions options = {}) const;
  // One stream's events from version `from` (inclusive), lazily; `limit` 0: all.
  EventRange read_stream(std::string_view stream, Version from = 1,
                         std::uint64_t limit = 0) const;

  // The highest seq stored; 0 when empty.
  Seq head() const;
  // The stream's version; 0 when it has no events.
  Version stream_version(std::string_view stream) const;
  // Every stream whose name starts with `prefix`, by name.
  std::vector<StreamInfo> streams(std::string_view prefix = {}) const;

  // Blocks until the head passes `after` or `timeout` elapses; returns the head.
  // Appends by this store, its transactions and append_in() wake it at once; so do
  // other processes' commits to the file where it can be watched (Linux, a file
  // path: the processor's file watch), else the timeout ends the wait.
  Seq wait_for_append(Seq after, std::chrono::milliseconds timeout) const;

  // Checks integrity, gap-free seqs, contiguous stream versions and valid JSON.
  // Returns one line per problem; empty when all is well.
  std::vector<std::string> verify() const;

  const std::filesystem::path& path() const noexcept;
  const StoreOptions& options() const noexcept;
  // The store's identity, as the file holds it now. Throws StorageError.
  StoreIdentity identity() const;
  // Names the store, or removes its name when `name` is empty, in one write
  // transaction. Throws InvalidArgument for a name store_name_problem() refuses or a
  // read-only store, StorageError if SQLite fails. A renamed store sends under its new
  // name from the next sink open (CloudEvents source, `{store}` in a key).
  void set_name(std::string_view name);

  // The eventlite schema version of the file.
  int schema_version() const;

 private:
  struct Impl;
  friend struct detail::StoreAccess;
  explicit Store(std::shared_ptr<Impl> impl) noexcept;
  std::shared_ptr<Impl> impl_;
};

// The schema version this library writes and understands.
int supported_schema_version() noexcept;

}  // namespace eventlite
