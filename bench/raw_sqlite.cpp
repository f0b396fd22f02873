#include "bench/raw_sqlite.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace eventlite::bench {
namespace {

[[noreturn]] void fail(sqlite3* db, std::string_view doing) {
  throw std::runtime_error("raw SQLite: " + std::string(doing) + ": " +
                           (db ? sqlite3_errmsg(db) : "out of memory"));
}

void assign(std::string& out, sqlite3_stmt* s, int column) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, column));
  if (p)
    out.assign(p, static_cast<std::size_t>(sqlite3_column_bytes(s, column)));
  else
    out.clear();
}

}  // namespace

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db) {
  if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                         SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK)
    fail(db, "prepare " + std::string(sql));
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

void Statement::bind(int index, std::string_view text) {
  if (sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                        SQLITE_STATIC) != SQLITE_OK)
    fail(db_, "bind");
}

void Statement::bind(int index, std::int64_t value) {
  if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) fail(db_, "bind");
}

void Statement::run() {
  const int rc = sqlite3_step(stmt_);
  sqlite3_reset(stmt_);
  if (rc != SQLITE_DONE) fail(db_, sqlite3_sql(stmt_));
}

RawDb::RawDb(const std::filesystem::path& path, Sync sync) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("raw SQLite: open " + path.string() + ": " + message);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, 5000);
  sqlite3_db_config(db_, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(db_, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  exec(sync == Sync::full     ? "PRAGMA synchronous=FULL"
       : sync == Sync::normal ? "PRAGMA synchronous=NORMAL"
                              : "PRAGMA synchronous=OFF");
  exec(
      "PRAGMA mmap_size=0; PRAGMA journal_size_limit=67108864; PRAGMA cache_size=-16384");
  Statement wal(db_, "PRAGMA journal_mode=WAL");
  const bool row = sqlite3_step(wal.get()) == SQLITE_ROW;
  const auto* mode =
      row ? reinterpret_cast<const char*>(sqlite3_column_text(wal.get(), 0)) : "";
  if (std::string_view(mode ? mode : "") != "wal")
    throw std::runtime_error("raw SQLite: " + path.string() + " is not in WAL mode");
}

RawDb::~RawDb() {
  sqlite3_close(db_);
}

void RawDb::exec(const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(db_, sql);
}

void create_schema(const std::filesystem::path& path) {
  (void)Store::open(path, {.durability = Durability::full});
}

RawAppender::RawAppender(RawDb& db, const Workload& workload, JsonCheck check)
    : db_(db),
      workload_(workload),
      begin_(db.get(), "BEGIN IMMEDIATE"),
      insert_(db.get(),
              check == JsonCheck::json
                  ? "INSERT INTO eventlite_events (id, stream, version, type, data, "
                    "metadata, time) VALUES (?1, ?2, ?3, ?4, iif(json_valid(?5), ?5, "
                    "NULL), iif(?6 = '{}' OR json_valid(?6), ?6, NULL), ?7)"
                  : "INSERT INTO eventlite_events (id, stream, version, type, data, "
                    "metadata, time) VALUES (?, ?, ?, ?, ?, ?, ?)"),
      commit_(db.get(), "COMMIT"),
      versions_(Workload::kStreams, 0) {
  Statement version(db.get(),
                    "SELECT version FROM eventlite_events WHERE stream = ? "
                    "ORDER BY version DESC LIMIT 1");
  for (std::size_t s = 0; s < Workload::kStreams; ++s) {
    version.bind(1, workload.stream(s));
    if (sqlite3_step(version.get()) == SQLITE_ROW)
      versions_[s] = sqlite3_column_int64(version.get(), 0);
    sqlite3_reset(version.get());
  }
}

void RawAppender::begin() {
  begin_.run();
}

void RawAppender::commit() {
  commit_.run();
}

void RawAppender::insert(std::size_t stream, std::size_t n, std::string_view time) {
  const std::string id = new_event_id();
  insert_.bind(1, id);
  insert_.bind(2, workload_.stream(stream));
  insert_.bind(3, ++versions_[stream % Workload::kStreams]);
  insert_.bind(4, workload_.type(n));
  insert_.bind(5, workload_.data(n));
  insert_.bind(6, workload_.metadata());
  insert_.bind(7, time);
  insert_.run();
}

void RawAppender::append_batch(std::size_t stream, std::size_t count) {
  begin();
  try {
    const std::string_view time = utc_now(time_);
    for (std::size_t n = 0; n < count; ++n) insert(stream, n, time);
    commit();
  } catch (...) {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void RawAppender::append_one(std::size_t stream, std::size_t n) {
  begin();
  try {
    insert(stream, n, utc_now(time_));
    commit();
  } catch (...) {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void RawAppender::fill(std::size_t count, std::size_t per_commit) {
  for (std::size_t done = 0; done < count;) {
    const std::size_t end = std::min(count, done + per_commit);
    begin();
    const std::string_view time = utc_now(time_);
    for (; done < end; ++done) insert(done, done, time);
    commit();
  }
}

struct RawGroupCommit::Batch {
  std::vector<std::pair<std::size_t, std::size_t>> events;  // (stream, n)
  std::atomic<std::uint32_t> done{0};
};

RawGroupCommit::RawGroupCommit(RawAppender& appender)
    : appender_(appender), committer_([this] { run(); }) {}

RawGroupCommit::~RawGroupCommit() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  committer_.join();
}

void RawGroupCommit::append(std::size_t stream, std::size_t n) {
  std::shared_ptr<Batch> batch;
  {
    std::lock_guard lock(mu_);
    if (!open_) {
      open_ = std::make_shared<Batch>();
      cv_.notify_one();
    }
    open_->events.emplace_back(stream, n);
    batch = open_;
  }
  while (batch->done.load(std::memory_order_acquire) == 0)
    ::syscall(SYS_futex, &batch->done, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
}

void RawGroupCommit::run() {
  std::vector<std::shared_ptr<Batch>> taken;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || open_; });
      if (!open_) return;
      taken.assign(1, std::move(open_));
    }
    appender_.begin();
    const std::string_view time = appender_.now();
    for (std::size_t k = 0; k < taken.size(); ++k) {
      for (const auto& [stream, n] : taken[k]->events) appender_.insert(stream, n, time);
      std::lock_guard lock(mu_);
      if (open_) taken.push_back(std::move(open_));
    }
    appender_.commit();
    for (const auto& batch : taken) {
      batch->done.store(1, std::memory_order_release);
      ::syscall(SYS_futex, &batch->done, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr,
                0);
    }
  }
}

RawReader::RawReader(RawDb& db)
    : select_(db.get(),
              "SELECT seq, id, stream, version, type, data, metadata, time "
              "FROM eventlite_events ORDER BY seq") {}

Checksum RawReader::read_all() {
  Checksum sum;
  sqlite3_stmt* s = select_.get();
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    row_.seq = sqlite3_column_int64(s, 0);
    assign(row_.id, s, 1);
    assign(row_.stream, s, 2);
    row_.version = sqlite3_column_int64(s, 3);
    assign(row_.type, s, 4);
    assign(row_.data, s, 5);
    assign(row_.metadata, s, 6);
    assign(row_.time, s, 7);
    sum.add(row_);
  }
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) throw std::runtime_error("raw SQLite: read failed");
  return sum;
}

RawCheckpointLoop::RawCheckpointLoop(RawDb& db, std::string name, std::size_t batch,
                                     std::chrono::milliseconds checkpoint_every)
    : db_(db),
      name_(std::move(name)),
      batch_(batch),
      checkpoint_every_(checkpoint_every),
      begin_(db.get(), "BEGIN IMMEDIATE"),
      select_(db.get(),
              "SELECT seq, id, stream, version, type, data, metadata, time "
              "FROM eventlite_events WHERE seq > ? ORDER BY seq LIMIT ?"),
      update_(db.get(), "UPDATE eventlite_subscriptions SET position = ? WHERE name = ?"),
      commit_(db.get(), "COMMIT"),
      rows_(batch) {
  std::array<char, 64> time{};
  const std::string_view now = utc_now(time);
  Statement insert(
      db.get(),
      "INSERT INTO eventlite_subscriptions (name, position, created, updated) "
      "VALUES (?, 0, ?, ?)");
  insert.bind(1, name_);
  insert.bind(2, now);
  insert.bind(3, now);
  insert.run();
}

std::uint64_t RawCheckpointLoop::drain() {
  const bool batched = checkpoint_every_.count() > 0;
  auto last_checkpoint = std::chrono::steady_clock::now();
  Seq committed = position_;
  std::uint64_t read = 0;
  sqlite3_stmt* s = select_.get();
  for (;;) {
    // A read-only batch runs in autocommit: SQLite's implicit read transaction.
    if (!batched) begin_.run();
    std::size_t n = 0;
    try {
      select_.bind(1, position_);
      select_.bind(2, static_cast<std::int64_t>(batch_));
      int rc;
      while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        Event& row = rows_[n++];
        row.seq = sqlite3_column_int64(s, 0);
        assign(row.id, s, 1);
        assign(row.stream, s, 2);
        row.version = sqlite3_column_int64(s, 3);
        assign(row.type, s, 4);
        assign(row.data, s, 5);
        assign(row.metadata, s, 6);
        assign(row.time, s, 7);
      }
      sqlite3_reset(s);
      if (rc != SQLITE_DONE) fail(db_.get(), "read events");
      const auto now = std::chrono::steady_clock::now();
      const bool checkpoint =
          n > 0 && (!batched || n < batch_ || now - last_checkpoint >= checkpoint_every_);
      if (checkpoint) {
        if (batched) begin_.run();
        update_.bind(1, rows_[n - 1].seq);
        update_.bind(2, name_);
        update_.run();
        if (batched) {
          commit_.run();
          last_checkpoint = now;
        }
        committed = rows_[n - 1].seq;
      }
      if (!batched) commit_.run();
    } catch (...) {
      if (!sqlite3_get_autocommit(db_.get()))
        sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
    if (n > 0) position_ = rows_[n - 1].seq;
    read += n;
    if (n < batch_) {
      // A backlog that is a multiple of the batch ends on an empty read: commit the
      // checkpoint that the last full batch left pending.
      if (position_ != committed) {
        begin_.run();
        update_.bind(1, position_);
        update_.bind(2, name_);
        update_.run();
        commit_.run();
      }
      return read;
    }
  }
}

void build_fixture(const std::filesystem::path& path, const Workload& workload,
                   std::size_t events) {
  create_schema(path);
  RawDb db(path, RawDb::Sync::off);
  RawAppender appender(db, workload);
  appender.fill(events, 50000);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

}  // namespace eventlite::bench
