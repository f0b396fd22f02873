#pragma once

// The SQLite layer: opening and configuring connections as DESIGN.md requires, a thin
// prepared-statement handle for hot paths, transaction guards that never throw from
// their destructors, and the one translation of SQLite failures into StorageError.

#include <SQLiteCpp/Database.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>


namespace eventlite::detail {

// Throws StorageError for `rc` on `db`, naming what was being done. `db` may be null.
[[noreturn]] void throw_storage(sqlite3* db, int rc, std::string_view doing);
[[noreturn]] void rethrow_storage(const SQLite::Exception& e, std::string_view doing);
// Throws StorageError for an extended code and message captured earlier.
[[noreturn]] void throw_storage_code(int extended_code, const char* message,
                                     std::string_view doing);

enum class Role { writer, reader };

struct ConnectionConfig {
  std::string filename;  // a path, or a memdb URI when `memory`
  bool memory = false;
  bool read_only = false;
  bool full_sync = true;  // synchronous=FULL (durability full), else NORMAL
  std::chrono::milliseconds busy_timeout{5000};
};

// Opens a connection and applies the per-connection settings (busy timeout, extended
// codes, defensive, untrusted schema, synchronous, mmap off, journal size limit;
// the writer keeps temporary files in memory; readers never checkpoint on close).
// Does not write to the file.
std::unique_ptr<SQLite::Database> open_connection(const ConnectionConfig& config,
                                                  Role role);

// Sets WAL (files) and checks that SQLite answered it. Writes the file header.
void ensure_wal(SQLite::Database& db, const ConnectionConfig& config);

// A prepared statement for hot paths: text bound without copies (the caller keeps
// the bound values alive until reset()), reset at once after use.
// Thread safety: one thread at a time, with its connection.
class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql, bool persistent = true);
  Stmt(Stmt&&) noexcept;
  Stmt& operator=(Stmt&&) = delete;
  ~Stmt();

  void bind(int index, std::string_view text);
  void bind(int index, std::int64_t value);
  // Returns true on a row, false when done; throws StorageError otherwise.
  bool step(std::string_view doing);
  // Steps a statement that returns no row; returns the result code (SQLITE_DONE or
  // a constraint failure) so the caller can explain constraint failures.
  int step_rc() noexcept;
  // Resets the statement and clears its bindings.
  void reset() noexcept;
  // Resets the statement for another step with the same bindings, for loops that
  // bind only what changes; the bound values must stay alive until reset().
  void rewind() noexcept;

  std::int64_t column_int(int i) const noexcept { return sqlite3_column_int64(stmt_, i); }
  bool column_null(int i) const noexcept {
    return sqlite3_column_type(stmt_, i) == SQLITE_NULL;
  }
  std::string_view column_text(int i) const noexcept {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return p ? std::string_view(p,
                                static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)))
             : std::string_view();
  }
  void column_text(int i, std::string& out) const {
    auto v = column_text(i);
    out.assign(v.data(), v.size());
  }
  sqlite3* db() const noexcept { return db_; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement when the scope ends, so no read transaction outlives its use.
class StmtScope {
 public:
  explicit StmtScope(Stmt& s) noexcept : s_(s) {}
  ~StmtScope() { s_.reset(); }
  StmtScope(const StmtScope&) = delete;
  StmtScope& operator=(const StmtScope&) = delete;

 private:
  Stmt& s_;
};

// Executes `sql` (no parameters) or throws StorageError.
void exec(sqlite3* db, const char* sql, std::string_view doing);

// COMMIT; if it fails, ROLLBACK and throw StorageError. Only a COMMIT that returned
// SQLITE_OK acknowledges anything.
void commit_or_roll_back(sqlite3* db, std::string_view doing);

// BEGIN IMMEDIATE ... COMMIT; rolls back on destruction unless committed. Only a
// COMMIT that returned SQLITE_OK counts: a failed COMMIT is rolled back and thrown.
class WriteTxn {
 public:
  WriteTxn(sqlite3* db, std::string_view doing);
  ~WriteTxn();
  WriteTxn(const WriteTxn&) = delete;
  WriteTxn& operator=(const WriteTxn&) = delete;
  void commit();

 private:
  sqlite3* db_;
  std::string doing_;
  bool open_ = true;
};

// The statements of a savepoint, prepared once per connection: parsing them for
// every append costs a quarter of a small append's CPU.
struct SavepointStatements {
  explicit SavepointStatements(sqlite3* db, bool persistent = true);
  Stmt begin;
  Stmt release;
  Stmt rollback_to;
};

// A savepoint inside an open transaction: rolled back and released on destruction
// unless released. SQLiteCpp's Savepoint skips the RELEASE after a rollback, which
// leaves the savepoint on the stack: this one does both. If the savepoint cannot be
// undone, the whole transaction is rolled back, so a failed append never commits.
class Savepoint {
 public:
  explicit Savepoint(SavepointStatements& st);
  ~Savepoint();
  Savepoint(const Savepoint&) = delete;
  Savepoint& operator=(const Savepoint&) = delete;
  void release();

 private:
  SavepointStatements& st_;
  bool open_ = true;
};

// Rolls back whatever transaction `db` has open. Never throws.
void rollback_quietly(sqlite3* db) noexcept;

// The writer's checkpoints, in place of SQLite's automatic passive ones, which no
// eventlite connection runs (SQLite's WAL-reset bug, before 3.51.3, needs a
// checkpoint that runs while another connection commits). Installs the writer's WAL
// hook: after a commit that leaves kCheckpointFrames frames or more in the log, the
// writer takes the log's write lock (BEGIN IMMEDIATE, waiting at most
// kCheckpointWaitMs), a second connection of its own checkpoints, and the writer lets
// go of the lock (ROLLBACK of its empty transaction). No commit of any connection can
// interleave with that checkpoint. When the lock is not free within the wait, there
// is no checkpoint: the next commit tries again, or another process's writer does.
//
// Lives as long as the writer connection, which it does not own; used by whichever
// thread holds the writer, one at a time.
class WalCheckpointer {
 public:
  static constexpr int kCheckpointFrames = 1000;  // SQLite's automatic default
  static constexpr int kCheckpointWaitMs = 100;

  WalCheckpointer(sqlite3* writer, ConnectionConfig config);
  ~WalCheckpointer();  // takes the hook off the writer
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  enum class Outcome { done, partial, busy, failed };
  // One checkpoint under the writer's write lock, now. `partial` when readers of
  // older snapshots kept frames in the log; `busy` when the write lock was not free.
  // Must be called with the writer outside any transaction.
  Outcome checkpoint() noexcept;

 private:
  static int on_commit(void* self, sqlite3* db, const char* name, int frames);
  sqlite3* writer_;
  ConnectionConfig config_;
  sqlite3* conn_ = nullptr;  // the checkpointing connection, opened when first needed
  bool running_ = false;
};

}  // namespace eventlite::detail
