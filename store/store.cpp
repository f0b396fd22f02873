#include "eventlite/store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include "eventlite/errors.hpp"
#include "eventlite/transaction.hpp"
#include "eventlite/upcast.hpp"
#include "store/stamp.hpp"
#include "store/clock.hpp"
#include "store/schema.hpp"
#include "store/store_impl.hpp"

namespace eventlite {
namespace {

std::shared_ptr<spdlog::logger> default_logger() {
  // Our own logger, never registered: spdlog's registry and levels are the
  // application's.
  auto logger = std::make_shared<spdlog::logger>(
      "eventlite", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_level(spdlog::level::warn);
  return logger;
}

std::string memory_uri() {
  static std::atomic<std::uint64_t> counter{0};
  // memdb: one in-memory database that this store's connections share, private to it.
  return fmt::format("file:/eventlite-memory-{}-{}?vfs=memdb", ::getpid(), ++counter);
}

void validate_options(const StoreOptions& o) {
  if (o.busy_timeout.count() < 0)
    throw InvalidArgument("busy_timeout must not be negative");
  if (o.max_event_bytes == 0) throw InvalidArgument("max_event_bytes must be positive");
  if (o.max_readers == 0) throw InvalidArgument("max_readers must be at least 1");
}

// Creates `path` with `mode` so that SQLite (whose default is 0644) finds it with
// our permissions; its -wal and -shm files take the same mode.
void create_file(const std::filesystem::path& path, std::filesystem::perms mode) {
  int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC,
                  static_cast<mode_t>(mode));
  if (fd >= 0) {
    ::close(fd);
    return;
  }
  if (errno == EEXIST) return;  // another thread or process created it just now
  throw StorageError(
      SQLITE_CANTOPEN, SQLITE_CANTOPEN,
      fmt::format("cannot create \"{}\": {}", path.string(), std::strerror(errno)));
}

// WAL hook for connections that append_in() wrote through: wakes this process's
// readers after their commits, and does what the connection's automatic checkpoint
// did before the hook replaced it (every N frames, passive; none when the
// application set wal_autocheckpoint=0, which it should: the store's writer
// checkpoints safely, see WalCheckpointer in store/sqlite_util.hpp).
//
// Entries are keyed by the connection's address, which a later connection may reuse
// once the application closes this one: each installation passes a token of its own
// as the hook's argument, and an entry counts only while SQLite hands that token
// back (sqlite3_wal_hook returns the argument it replaces).
struct ForeignHook {
  std::weak_ptr<detail::Notifier> notifier;
  int auto_checkpoint = 0;  // the connection's wal_autocheckpoint before the hook
  void* token = nullptr;    // the argument this entry's hook was installed with
};
std::mutex g_hooks_mu;
std::map<sqlite3*, ForeignHook> g_hooks;  // guarded by g_hooks_mu

int on_foreign_commit(void*, sqlite3* db, const char* name, int frames) {
  std::shared_ptr<detail::Notifier> notifier;
  int auto_checkpoint = 0;
  {
    std::lock_guard lock(g_hooks_mu);
    auto it = g_hooks.find(db);
    if (it != g_hooks.end()) {
      notifier = it->second.notifier.lock();
      auto_checkpoint = it->second.auto_checkpoint;
    }
  }
  if (notifier) notifier->notify();
  if (auto_checkpoint > 0 && frames >= auto_checkpoint) sqlite3_wal_checkpoint(db, name);
  return SQLITE_OK;
}

// The first SQLite release without the WAL-reset bug (wal.c, fixed in 3.51.3).
constexpr int kWalResetFixed = 3051003;

void install_commit_hook(sqlite3* db, const std::shared_ptr<detail::Notifier>& notifier,
                         spdlog::logger& logger) {
  // The connection's setting, before the hook is (again) ours: 0 once it is. Read
  // outside g_hooks_mu: SQLite runs on_foreign_commit, which takes it, under the
  // connection's own mutex.
  int auto_checkpoint = 0;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA wal_autocheckpoint", -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW)
    auto_checkpoint = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);

  // Tokens far above any wal_autocheckpoint value, which SQLite's own hook takes as
  // its argument.
  static std::atomic<std::uintptr_t> next_token{std::uintptr_t{1} << 40};
  void* const token = reinterpret_cast<void*>(next_token.fetch_add(1));
  void* const replaced = sqlite3_wal_hook(db, on_foreign_commit, token);
  std::lock_guard lock(g_hooks_mu);
  auto [it, added] = g_hooks.try_emplace(db);
  ForeignHook& hook = it->second;
  if (added || hook.token != replaced) {  // not ours until now: a new connection
    hook.auto_checkpoint = auto_checkpoint;
    // The one place eventlite sees a connection it cannot keep clear of the bug.
    if (auto_checkpoint > 0 && sqlite3_libversion_number() < kWalResetFixed)
      logger.warn(
          "append_in: the application's connection checkpoints passively (every {} "
          "frames), which SQLite {} can corrupt the file with (its WAL-reset bug, fixed "
          "in 3.51.3); set PRAGMA wal_autocheckpoint=0 on it: the store's writer "
          "checkpoints without that risk",
          auto_checkpoint, sqlite3_libversion());
  }
  hook.token = token;
  hook.notifier = notifier;
}

}  // namespace

detail::GroupCommit& Store::Impl::require_writer(const char* what) const {
  if (!writer)
    throw InvalidArgument(fmt::format("{}: the store is open read-only", what));
  return *writer;
}

Store::Store(std::shared_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

Store Store::open(const std::filesystem::path& path, StoreOptions options) {
  validate_options(options);
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  impl->logger = options.logger ? options.logger : default_logger();
  const bool memory = path == ":memory:";
  if (memory && options.read_only)
    throw InvalidArgument("a read-only store of a new in-memory database makes no sense");

  auto& config = impl->config;
  config.filename = memory ? memory_uri() : path.string();
  // SQLite reads a name starting with "file:" as a URI (another file, its options
  // honoured); the path names a file, so say it so that SQLite agrees.
  if (!memory && config.filename.rfind("file:", 0) == 0) config.filename.insert(0, "./");
  config.memory = memory;
  config.read_only = options.read_only;
  config.full_sync = options.durability == Durability::full;
  config.busy_timeout = options.busy_timeout;

  if (!memory) {
    std::error_code ec;
    auto status = std::filesystem::status(path, ec);
    if (ec && ec != std::errc::no_such_file_or_directory)
      throw StorageError(
          SQLITE_CANTOPEN, SQLITE_CANTOPEN,
          fmt::format("cannot open \"{}\": {}", path.string(), ec.message()));
    if (std::filesystem::is_directory(status))
      throw StorageError(
          SQLITE_CANTOPEN, SQLITE_CANTOPEN,
          fmt::format("cannot open \"{}\": it is a directory", path.string()));
    if (!std::filesystem::exists(status)) {
      if (options.read_only || !options.create_if_missing)
        throw StorageError(
            SQLITE_CANTOPEN, SQLITE_CANTOPEN,
            fmt::format("cannot open \"{}\": no such file", path.string()));
      create_file(path, options.file_mode);
    }
  }

  try {
    impl->readers = std::make_shared<detail::ReaderPool>(config, options.max_readers);
    std::unique_ptr<SQLite::Database> writer;
    std::optional<detail::ReaderPool::Lease> reader;
    sqlite3* db = nullptr;
    if (options.read_only) {
      reader.emplace(impl->readers->acquire());
      db = (*reader)->db->getHandle();
    } else {
      writer = detail::open_connection(config, detail::Role::writer);
      db = writer->getHandle();
      // Until the file is accepted, closing must not checkpoint: a refused file is
      // left as it was, its -wal included.
      sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
      if (sqlite3_db_readonly(db, "main") == 1)
        throw StorageError(SQLITE_READONLY, SQLITE_READONLY,
                           fmt::format("cannot open \"{}\" for writing: the file is "
                                       "read-only (open it with read_only to inspect it)",
                                       path.string()));
    }

    // Read before writing anything, so a refused file is left as it was.
    const int found = detail::read_schema_version(db);
    const int supported = detail::latest_schema_version();
    if (found > supported) throw SchemaTooNew(found, supported);
    if (found == 0 && (options.read_only || !options.create_if_missing))
      throw NotAnEventliteDatabase(
          path.string(), "it has no eventlite tables (run `eventlite init` on it)");

    if (writer) {
      detail::ensure_wal(*writer, config);
      if (found < supported) {
        detail::migrate(db);
        impl->logger->info("migrated schema: path={} from={} to={}", path.string(), found,
                           supported);
      }
      sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
      impl->writer =
          std::make_unique<detail::GroupCommit>(std::move(writer), impl->notifier);
      if (!memory) impl->checkpointer = std::make_unique<detail::WalCheckpointer>(db, config);
    } else {
      detail::ensure_wal(*(*reader)->db, config);
    }
  } catch (const StorageError& e) {
    if (e.sqlite_code() == SQLITE_NOTADB)
      throw NotAnEventliteDatabase(path.string(), "the file is not a SQLite database");
    throw;
  }
  impl->options = std::move(options);
  impl->logger->info("opened store: path={} durability={} read_only={}", path.string(),
                     impl->options.durability == Durability::full ? "full" : "normal",
                     impl->options.read_only);
  return Store(std::move(impl));
}

std::vector<Seq> Store::append(std::string_view stream, std::span<const NewEvent> events,
                               Expected expected) {
  auto& writer = impl_->require_writer("append");
  std::vector<NewEvent> stamped;
  events = detail::stamp_missing(impl_->options.upcasters.get(), events, stamped);
  detail::validate(stream, events, impl_->limits());
  return writer.append(stream, events, expected);
}

Seq Store::append(std::string_view stream, const NewEvent& event, Expected expected) {
  return append(stream, std::span<const NewEvent>(&event, 1), expected).front();
}

std::future<std::vector<Seq>> Store::append_async(std::string stream,
                                                  std::vector<NewEvent> events,
                                                  Expected expected) {
  try {
    auto& writer = impl_->require_writer("append_async");
    std::vector<NewEvent> stamped;
    if (detail::stamp_missing(impl_->options.upcasters.get(), events, stamped).data() ==
        stamped.data())
      events = std::move(stamped);
    detail::validate(stream, events, impl_->limits());
    return writer.append_async(std::move(stream), std::move(events), expected);
  } catch (...) {
    std::promise<std::vector<Seq>> failed;
    failed.set_exception(std::current_exception());
    return failed.get_future();
  }
}

Transaction Store::transaction() {
  auto& writer = impl_->require_writer("transaction");
  auto access = writer.acquire_exclusive();
  try {
    detail::exec(access.database.getHandle(), "BEGIN IMMEDIATE", "begin transaction");
  } catch (...) {
    writer.release_exclusive();
    throw;
  }
  impl_->notifier->write_locked();  // Transaction::commit and rollback end the mark
  return Transaction(std::make_unique<detail::TransactionState>(
      detail::TransactionState{impl_, access, true}));
}

std::vector<Seq> Store::append_in(sqlite3* db, std::string_view stream,
                                  std::span<const NewEvent> events, Expected expected) {
  impl_->require_writer("append_in");
  if (db == nullptr) throw InvalidArgument("append_in: null connection");
  // A write transaction, as BEGIN IMMEDIATE opens: a deferred one that has not
  // written yet could fail with SQLITE_BUSY at its first write, whatever the timeout.
  if (sqlite3_txn_state(db, "main") != SQLITE_TXN_WRITE)
    throw InvalidArgument(
        "append_in: the connection has no open write transaction (BEGIN IMMEDIATE "
        "first)");
  {
    const char* file = sqlite3_db_filename(db, "main");
    std::error_code ec;
    bool same =
        file != nullptr &&
        (impl_->config.memory
             ? impl_->config.filename.find(std::string(file) + "?") != std::string::npos
             : std::filesystem::equivalent(file, impl_->path, ec));
    if (!same)
      throw InvalidArgument(
          fmt::format("append_in: the connection is not on this store's database \"{}\"",
                      impl_->path.string()));
  }
  std::vector<NewEvent> stamped;
  events = detail::stamp_missing(impl_->options.upcasters.get(), events, stamped);
  detail::validate(stream, events, impl_->limits());
  thread_local detail::UuidV7 ids;
  detail::AppendStatements statements(db, false);
  install_commit_hook(db, impl_->notifier, *impl_->logger);
  return detail::append_atomically(statements, ids, stream, events, expected,
                                   detail::now_text());
}

std::vector<Seq> Store::append_in(SQLite::Database& db, std::string_view stream,
                                  std::span<const NewEvent> events, Expected expected) {
  return append_in(db.getHandle(), stream, events, expected);
}

EventRange Store::read_all(ReadOptions options) const {
  auto state = detail::plan_read_all(std::move(options));
  state->pool = impl_->readers;
  if (impl_->options.upcasters && !impl_->options.upcasters->empty())
    state->upcasters = impl_->options.upcasters;
  return EventRange(std::move(state));
}

EventRange Store::read_stream(std::string_view stream, Version from,
                              std::uint64_t limit) const {
  auto state = detail::plan_read_stream(stream, from, limit);
  state->pool = impl_->readers;
  if (impl_->options.upcasters && !impl_->options.upcasters->empty())
    state->upcasters = impl_->options.upcasters;
  return EventRange(std::move(state));
}

namespace {

std::int64_t query_int(detail::ReaderPool& pool, const std::string& sql,
                       std::string_view bound = {}, bool bind = false) {
  auto conn = pool.acquire();
  auto& s = conn->statement(sql);
  detail::StmtScope scope(s);
  if (bind) s.bind(1, bound);
  if (!s.step("read") || s.column_null(0)) return 0;
  return s.column_int(0);
}

}  // namespace

Seq Store::head() const {
  return query_int(*impl_->readers, "SELECT max(seq) FROM eventlite_events");
}

Version Store::stream_version(std::string_view stream) const {
  return query_int(*impl_->readers,
                   "SELECT version FROM eventlite_events WHERE stream = ? "
                   "ORDER BY version DESC LIMIT 1",
                   stream, true);
}

std::vector<StreamInfo> Store::streams(std::string_view prefix) const {
  auto conn = impl_->readers->acquire();
  auto& s = conn->statement(
      "SELECT stream, max(version), max(seq) FROM eventlite_events "
      "WHERE substr(stream, 1, length(?1)) = ?1 GROUP BY stream ORDER BY stream");
  detail::StmtScope scope(s);
  s.bind(1, prefix);
  std::vector<StreamInfo> out;
  while (s.step("read streams"))
    out.push_back({std::string(s.column_text(0)), s.column_int(1), s.column_int(2)});
  return out;
}

std::vector<std::string> Store::verify() const {
  std::vector<std::string> problems;
  auto conn = impl_->readers->acquire();
  auto each_row = [&](const std::string& sql, auto&& on_row) {
    try {
      auto& s = conn->statement(sql);
      detail::StmtScope scope(s);
      while (s.step("verify")) on_row(s);
    } catch (const StorageError& e) {
      problems.push_back(e.what());
    }
  };
  each_row("PRAGMA integrity_check(20)", [&](detail::Stmt& s) {
    if (s.column_text(0) != "ok")
      problems.push_back(fmt::format("integrity: {}", s.column_text(0)));
  });
  each_row(
      "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM "
      "eventlite_events",
      [&](detail::Stmt& s) {
        auto count = s.column_int(0), min = s.column_int(1), max = s.column_int(2);
        if (count > 0 && (min != 1 || max != count))
          problems.push_back(fmt::format(
              "seq is not gap-free: {} events with seq from {} to {}", count, min, max));
      });
  each_row(
      "SELECT stream, count(*), min(version), max(version) FROM eventlite_events "
      "GROUP BY stream HAVING min(version) != 1 OR max(version) != count(*) LIMIT 20",
      [&](detail::Stmt& s) {
        problems.push_back(fmt::format(
            "stream \"{}\": versions are not contiguous: {} events with versions {} to "
            "{}",
            s.column_text(0), s.column_int(1), s.column_int(2), s.column_int(3)));
      });
  each_row(
      "SELECT seq FROM eventlite_events WHERE NOT json_valid(data) OR NOT "
      "json_valid(metadata) "
      "OR json_type(metadata) != 'object' LIMIT 20",
      [&](detail::Stmt& s) {
        problems.push_back(
            fmt::format("seq {}: data or metadata is not valid JSON", s.column_int(0)));
      });
  each_row("SELECT max(version) FROM eventlite_schema", [&](detail::Stmt& s) {
    if (s.column_int(0) != detail::latest_schema_version())
      problems.push_back(fmt::format("schema version {} (this library writes {})",
                                     s.column_int(0), detail::latest_schema_version()));
  });
  return problems;
}

const std::filesystem::path& Store::path() const noexcept {
  return impl_->path;
}
const StoreOptions& Store::options() const noexcept {
  return impl_->options;
}

int Store::schema_version() const {
  auto conn = impl_->readers->acquire();
  return detail::read_schema_version(conn->db->getHandle());
}

int supported_schema_version() noexcept {
  return detail::latest_schema_version();
}

}  // namespace eventlite
