#pragma once

// The baseline: an application using the sqlite3 C API directly and well, with the
// connection settings eventlite's writer uses, prepared statements, text bound with
// SQLITE_STATIC, BEGIN IMMEDIATE ... COMMIT, ids from new_event_id() and stream
// versions kept in memory. This is the floor eventlite's figures are measured against.

#include <sqlite3.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/workload.hpp"
#include "eventlite/event.hpp"
#include "eventlite/store.hpp"

namespace eventlite::bench {

// A prepared statement, finalized on destruction.
class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  sqlite3_stmt* get() const noexcept { return stmt_; }
  void bind(int index, std::string_view text);  // SQLITE_STATIC: keep `text` alive
  void bind(int index, std::int64_t value);
  // Steps a statement that returns no row, then resets it; throws on failure.
  void run();

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// A raw connection with the settings eventlite sets on its writer connection: WAL,
// synchronous FULL or NORMAL, busy_timeout 5000, extended result codes, defensive,
// trusted_schema off, mmap_size 0, journal_size_limit 64 MiB, cache_size 16 MiB.
class RawDb {
 public:
  // `off` only builds fixtures, untimed.
  enum class Sync { full, normal, off };
  static Sync sync_for(Durability d) noexcept {
    return d == Durability::full ? Sync::full : Sync::normal;
  }

  RawDb(const std::filesystem::path& path, Sync sync);
  ~RawDb();
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  sqlite3* get() const noexcept { return db_; }
  void exec(const char* sql);

 private:
  sqlite3* db_ = nullptr;
};

// Creates eventlite's schema in a new file through Store::open, so that the baseline
// writes the very same tables, indexes and triggers.
void create_schema(const std::filesystem::path& path);

// What the baseline's INSERT checks. `none`, the baseline: a bare insert (the store
// checks JSON in memory before its own bare INSERT). `json`, shown for comparison:
// the insert checks data and metadata with SQLite's json_valid (iif(json_valid(?5),
// ?5, NULL) into a NOT NULL column), what raw SQLite costs for a table that checks its
// JSON (SQLite 3.40 cannot run json_valid in a CHECK under trusted_schema=OFF).
enum class JsonCheck { none, json };

class RawAppender {
 public:
  // Reads each stream's version from the file (setup, untimed).
  RawAppender(RawDb& db, const Workload& workload, JsonCheck check = JsonCheck::none);

  // One transaction: `count` events 0..count-1 to stream `stream`.
  void append_batch(std::size_t stream, std::size_t count);
  // One transaction: event n to stream `stream`.
  void append_one(std::size_t stream, std::size_t n);
  // `count` events spread round-robin over the streams, `per_commit` a transaction.
  void fill(std::size_t count, std::size_t per_commit);

  // The steps, for RawGroupCommit.
  void begin();
  void insert(std::size_t stream, std::size_t n, std::string_view time);
  void commit();
  std::string_view now() { return utc_now(time_); }

 private:
  RawDb& db_;
  const Workload& workload_;
  Statement begin_;
  Statement insert_;
  Statement commit_;
  std::vector<Version> versions_;  // by stream index
  std::array<char, 64> time_{};
};

// A minimal group commit on raw SQLite, the ceiling beside figure 2: appenders hand
// one event at a time to a committer thread and wait for its COMMIT (one futex word
// per batch, woken with one call); the committer inserts a batch in a transaction,
// takes in the batches queued meanwhile, and commits. No validation, no version
// lookups, no failure isolation: the least a group commit of blocking appenders costs
// on this machine.
class RawGroupCommit {
 public:
  explicit RawGroupCommit(RawAppender& appender);
  ~RawGroupCommit();  // stops the committer
  RawGroupCommit(const RawGroupCommit&) = delete;
  RawGroupCommit& operator=(const RawGroupCommit&) = delete;

  // Event n to stream `stream`; returns once committed.
  void append(std::size_t stream, std::size_t n);

 private:
  struct Batch;
  void run();

  RawAppender& appender_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<Batch> open_;  // guarded by mu_
  bool stop_ = false;            // guarded by mu_
  std::thread committer_;
};

// Reads every event in seq order into one reused Event, assigning each column into
// its strings: no allocation per row once their capacity has grown.
class RawReader {
 public:
  explicit RawReader(RawDb& db);
  Checksum read_all();

 private:
  Statement select_;
  Event row_;
};

// What the processor's dispatch loop does, by hand: in one transaction (BEGIN
// IMMEDIATE), read `batch` events past the checkpoint into reused Events (every
// column copied out, as a processor must before handing them to handlers), move the
// checkpoint row of eventlite_subscriptions past them, COMMIT; until the head.
// With `checkpoint_every` > 0, as the processor does instead: each batch is read in
// its own read transaction and the checkpoint is committed (UPDATE in a transaction
// of its own) only when that much time passed since the last one, and at the end.
class RawCheckpointLoop {
 public:
  // Creates the checkpoint row `name` at position 0 (setup, untimed).
  RawCheckpointLoop(RawDb& db, std::string name, std::size_t batch = 256,
                    std::chrono::milliseconds checkpoint_every = {});

  // Dispatches every event past the checkpoint; returns how many it read.
  std::uint64_t drain();
  Seq position() const noexcept { return position_; }

 private:
  RawDb& db_;
  std::string name_;
  std::size_t batch_;
  std::chrono::milliseconds checkpoint_every_;
  Statement begin_;
  Statement select_;
  Statement update_;
  Statement commit_;
  std::vector<Event> rows_;
  Seq position_ = 0;
};

// Builds a file of `events` events with the raw API, in large transactions under
// synchronous=OFF (setup only), checkpointed, with no -wal left.
void build_fixture(const std::filesystem::path& path, const Workload& workload,
                   std::size_t events);

}  // namespace eventlite::bench
