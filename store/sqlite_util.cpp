#include "store/sqlite_util.hpp"

#include <fmt/format.h>

#include <cstdint>

#include "eventlite/errors.hpp"

namespace eventlite::detail {
namespace {

// Cap the WAL file kept after a checkpoint; it is truncated back to this size.
constexpr std::int64_t kJournalSizeLimit = 64 * 1024 * 1024;
// Page cache per writer connection, in KiB (negative: KiB for SQLite).
constexpr int kWriterCacheKiB = 16 * 1024;
constexpr int kReaderCacheKiB = 8 * 1024;

const char* hint(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY: return "another connection holds the lock past the busy timeout";
    case SQLITE_FULL: return "the disk or the database is full";
    case SQLITE_READONLY: return "the database is read-only";
    case SQLITE_CORRUPT: return "the database file is corrupt";
    case SQLITE_NOTADB: return "the file is not a SQLite database";
    case SQLITE_CANTOPEN: return "the file cannot be opened";
    case SQLITE_IOERR: return "an I/O error occurred";
    default: return nullptr;
  }
}

std::string storage_message(std::string_view doing, int rc, const char* msg) {
  const char* h = hint(rc);
  std::string m = msg ? msg : sqlite3_errstr(rc);
  if (h && m.find(h) == std::string::npos)
    return fmt::format("{}: {} ({}; code {})", doing, m, h, rc);
  return fmt::format("{}: {} (code {})", doing, m, rc);
}

}  // namespace

void throw_storage(sqlite3* db, int rc, std::string_view doing) {
  int ext = db ? sqlite3_extended_errcode(db) : rc;
  if ((ext & 0xff) != (rc & 0xff)) ext = rc;
  throw StorageError(rc & 0xff, ext,
                     storage_message(doing, ext, db ? sqlite3_errmsg(db) : nullptr));
}

void throw_storage_code(int extended_code, const char* message, std::string_view doing) {
  throw StorageError(extended_code & 0xff, extended_code,
                     storage_message(doing, extended_code, message));
}

void rethrow_storage(const SQLite::Exception& e, std::string_view doing) {
  int rc = e.getErrorCode();
  int ext = e.getExtendedErrorCode();
  if (rc == -1) rc = ext = SQLITE_ERROR;  // SQLiteCpp's own checks
  throw StorageError(rc & 0xff, ext, storage_message(doing, ext, e.what()));
}


std::unique_ptr<SQLite::Database> open_connection(const ConnectionConfig& config,
                                                  Role role) {
  int flags = SQLITE_OPEN_NOMUTEX;  // each connection is used by one thread at a time
  flags |= config.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (config.memory) flags |= SQLITE_OPEN_URI | SQLITE_OPEN_CREATE;
  std::unique_ptr<SQLite::Database> db;
  try {
    db = std::make_unique<SQLite::Database>(config.filename, flags);
  } catch (const SQLite::Exception& e) {
    rethrow_storage(e, fmt::format("cannot open \"{}\"", config.filename));
  }
  sqlite3* h = db->getHandle();
  sqlite3_extended_result_codes(h, 1);
  sqlite3_busy_timeout(h, static_cast<int>(config.busy_timeout.count()));
  sqlite3_db_config(h, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(h, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  if (role == Role::reader || config.read_only)
    sqlite3_db_config(h, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  // Readers never write, whatever SQL reaches them.
  if (role == Role::reader) exec(h, "PRAGMA query_only=1", "configure connection");

  std::string pragmas = fmt::format(
      "PRAGMA synchronous={};PRAGMA mmap_size=0;PRAGMA journal_size_limit={};"
      "PRAGMA cache_size=-{};",
      config.full_sync ? "FULL" : "NORMAL", kJournalSizeLimit,
      role == Role::writer ? kWriterCacheKiB : kReaderCacheKiB);
  // memdb keeps its rollback journal in memory; elsewhere it would be a real file.
  if (config.memory) pragmas += "PRAGMA journal_mode=MEMORY;";
  // The statement journal of a multi-row INSERT over many streams (a group commit)
  // passes SQLite's 64 KiB spill size: keep it in memory, not in a temporary file.
  if (role == Role::writer) pragmas += "PRAGMA temp_store=MEMORY;";
  // No automatic passive checkpoints: see WalCheckpointer.
  pragmas += "PRAGMA wal_autocheckpoint=0;";
  exec(h, pragmas.c_str(), "configure connection");
  return db;
}

void ensure_wal(SQLite::Database& db, const ConnectionConfig& config) {
  if (config.memory) return;
  sqlite3* h = db.getHandle();
  Stmt s(h, config.read_only ? "PRAGMA journal_mode" : "PRAGMA journal_mode=WAL", false);
  // Changing the journal mode holds a read lock while it waits for the write lock,
  // so SQLite returns BUSY at once rather than deadlock with a writer that wants to
  // commit: retry, releasing the lock in between, until the busy timeout.
  const auto deadline = std::chrono::steady_clock::now() + config.busy_timeout;
  std::string mode;
  for (;;) {
    int rc = s.step_rc();
    if (rc == SQLITE_ROW) {
      mode = std::string(s.column_text(0));
      s.reset();
      break;
    }
    int ext = sqlite3_extended_errcode(h);
    std::string msg = sqlite3_errmsg(h);
    s.reset();
    if ((rc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline)
      throw_storage_code(ext, msg.c_str(), "set journal mode");
    sqlite3_sleep(1);
  }
  if (mode != "wal" && !config.read_only)
    throw StorageError(SQLITE_ERROR, SQLITE_ERROR,
                       fmt::format("cannot put \"{}\" in WAL mode: journal_mode answered "
                                   "\"{}\" (is it on a network filesystem?)",
                                   config.filename, mode));
}

Stmt::Stmt(sqlite3* db, std::string_view sql, bool persistent) : db_(db) {
  int rc =
      sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                         persistent ? SQLITE_PREPARE_PERSISTENT : 0, &stmt_, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
    throw_storage(db, rc, "prepare statement");
  }
}

Stmt::Stmt(Stmt&& o) noexcept : db_(o.db_), stmt_(o.stmt_) {
  o.stmt_ = nullptr;
}

Stmt::~Stmt() {
  sqlite3_finalize(stmt_);
}

void Stmt::bind(int index, std::string_view text) {
  // A null pointer would bind NULL, not the empty string.
  const char* p = text.data() ? text.data() : "";
  int rc =
      sqlite3_bind_text(stmt_, index, p, static_cast<int>(text.size()), SQLITE_STATIC);
  if (rc != SQLITE_OK) throw_storage(db_, rc, "bind parameter");
}

void Stmt::bind(int index, std::int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) throw_storage(db_, rc, "bind parameter");
}

bool Stmt::step(std::string_view doing) {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  int ext = sqlite3_extended_errcode(db_);
  std::string msg = sqlite3_errmsg(db_);
  sqlite3_reset(stmt_);
  throw_storage_code(ext, msg.c_str(), doing);
}

int Stmt::step_rc() noexcept {
  return sqlite3_step(stmt_);
}

void Stmt::reset() noexcept {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void Stmt::rewind() noexcept {
  sqlite3_reset(stmt_);
}

void exec(sqlite3* db, const char* sql, std::string_view doing) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) throw_storage(db, rc, doing);
}

void rollback_quietly(sqlite3* db) noexcept {
  if (!sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
}

WriteTxn::WriteTxn(sqlite3* db, std::string_view doing) : db_(db), doing_(doing) {
  exec(db, "BEGIN IMMEDIATE", doing_);
}

WriteTxn::~WriteTxn() {
  if (open_) rollback_quietly(db_);
}

void commit_or_roll_back(sqlite3* db, std::string_view doing) {
  int rc = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) return;
  // A COMMIT that failed with BUSY leaves the transaction open: end it here, so a
  // failed commit never lingers and the next BEGIN works.
  int ext = sqlite3_extended_errcode(db);
  std::string msg = sqlite3_errmsg(db);
  rollback_quietly(db);
  throw StorageError(rc & 0xff, ext,
                     storage_message(std::string(doing) + ": commit", ext, msg.c_str()));
}

void WriteTxn::commit() {
  open_ = false;
  commit_or_roll_back(db_, doing_);
}

SavepointStatements::SavepointStatements(sqlite3* db, bool persistent)
    : begin(db, "SAVEPOINT eventlite_append", persistent),
      release(db, "RELEASE eventlite_append", persistent),
      rollback_to(db, "ROLLBACK TO eventlite_append", persistent) {}

Savepoint::Savepoint(SavepointStatements& st) : st_(st) {
  st_.begin.step("begin savepoint");
  st_.begin.reset();
}

Savepoint::~Savepoint() {
  if (!open_) return;
  int rc = st_.rollback_to.step_rc();
  st_.rollback_to.reset();
  if (rc == SQLITE_DONE) {
    rc = st_.release.step_rc();
    st_.release.reset();
  }
  if (rc != SQLITE_DONE) rollback_quietly(st_.begin.db());
}

void Savepoint::release() {
  open_ = false;
  st_.release.step("release savepoint");
  st_.release.reset();
}

WalCheckpointer::WalCheckpointer(sqlite3* writer, ConnectionConfig config)
    : writer_(writer), config_(std::move(config)) {
  sqlite3_wal_hook(writer_, on_commit, this);
}

WalCheckpointer::~WalCheckpointer() {
  sqlite3_wal_hook(writer_, nullptr, nullptr);
  sqlite3_close_v2(conn_);
}

int WalCheckpointer::on_commit(void* self, sqlite3*, const char*, int frames) {
  auto* c = static_cast<WalCheckpointer*>(self);
  if (frames >= kCheckpointFrames && !c->running_) c->checkpoint();
  return SQLITE_OK;  // a checkpoint that did not happen is not the commit's failure
}

WalCheckpointer::Outcome WalCheckpointer::checkpoint() noexcept {
  if (running_ || !sqlite3_get_autocommit(writer_)) return Outcome::failed;
  running_ = true;
  struct Done {
    bool& running;
    ~Done() { running = false; }
  } done{running_};

  if (!conn_) {
    // Its close never checkpoints (that would be outside the lock), it never writes
    // pages of its own, and it never waits: the writer has done the waiting. Until a
    // connection has read the file it does not know the log, and a checkpoint on it
    // does nothing: hence the first read.
    const int rc = sqlite3_open_v2(config_.filename.c_str(), &conn_,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK ||
        sqlite3_db_config(conn_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr) !=
            SQLITE_OK ||
        sqlite3_exec(conn_, "PRAGMA wal_autocheckpoint=0", nullptr, nullptr, nullptr) !=
            SQLITE_OK ||
        sqlite3_exec(conn_, "SELECT 1 FROM sqlite_schema LIMIT 1", nullptr, nullptr,
                     nullptr) != SQLITE_OK) {
      sqlite3_close_v2(conn_);
      conn_ = nullptr;
      return Outcome::failed;
    }
  }

  sqlite3_busy_timeout(writer_, kCheckpointWaitMs);
  const int begun = sqlite3_exec(writer_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  sqlite3_busy_timeout(writer_, static_cast<int>(config_.busy_timeout.count()));
  if (begun != SQLITE_OK) {
    rollback_quietly(writer_);
    return (begun & 0xff) == SQLITE_BUSY ? Outcome::busy : Outcome::failed;
  }
  // The write lock is this process's: a passive checkpoint cannot meet a commit.
  int log = 0, backfilled = 0;
  const int rc =
      sqlite3_wal_checkpoint_v2(conn_, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &backfilled);
  rollback_quietly(writer_);
  if (rc != SQLITE_OK) return (rc & 0xff) == SQLITE_BUSY ? Outcome::busy : Outcome::failed;
  if (log < 0) return Outcome::failed;  // the connection is not in WAL mode
  return backfilled < log ? Outcome::partial : Outcome::done;
}

}  // namespace eventlite::detail
