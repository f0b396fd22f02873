#include "power_loss_vfs.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace eventlite::test {

namespace {

// The unit a tear keeps or loses: a disk sector. Smaller than the 4096 bytes the unix
// VFS reports, so tears also split SQLite's pages.
constexpr sqlite3_int64 kSector = 512;

// The kinds of file that hold durable data. Temporary files (no name, statement and
// sub-journals, temp databases) are passed through untouched.
constexpr int kDurableTypes = SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_MAIN_JOURNAL |
                              SQLITE_OPEN_WAL | SQLITE_OPEN_SUPER_JOURNAL;

std::string parent_of(const std::string& name) {
  return std::filesystem::path(name).parent_path().string();
}

void pwrite_all(int fd, const std::string& bytes, sqlite3_int64 offset,
                const std::string& path) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done,
                               static_cast<off_t>(offset) + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "pwrite " + path);
    }
    done += static_cast<std::size_t>(n);
  }
}

void truncate_fd(int fd, sqlite3_int64 size, const std::string& path) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0)
    throw std::system_error(errno, std::generic_category(), "ftruncate " + path);
}

void rename_file(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    throw std::system_error(errno, std::generic_category(), "rename " + from);
}

}  // namespace

// One file's bytes on the simulated disk, whatever name it has now.
struct PowerLossVfs::Node {
  struct Op {
    bool truncate = false;
    sqlite3_int64 offset = 0;       // write: where it starts; truncate: the size asked
    sqlite3_int64 size_before = 0;  // the file's size before the call
    sqlite3_int64 size_after = 0;   // the file's size after the call
    std::string before;             // the bytes the call overwrote or cut off, at offset
    std::string data;               // write: the bytes written
  };

  int id = 0;
  std::string name;  // the name it was created or found under; never changes
  std::string path;  // where it is now: `name`, or its stash once deleted
  bool main_db = false;
  std::vector<Op> unsynced;  // since the last sync, oldest first

  std::string stash() const { return name + ".powerloss-" + std::to_string(id); }
};

// What SQLite allocates for a file of the shim: this header, then the file of the VFS
// underneath (szOsFile says how much). SQLite allocates it without constructing it:
// every member is set in xOpen.
struct PowerLossVfs::File {
  sqlite3_file base;  // first: SQLite sees a File as a sqlite3_file
  State* state;
  Node* node;             // null: not durable storage, passed through
  bool dir_sync_pending;  // the unix VFS syncs the directory at this file's first sync

  sqlite3_file* real() noexcept { return reinterpret_cast<sqlite3_file*>(this + 1); }
};

struct PowerLossVfs::State {
  sqlite3_vfs vfs{};            // the shim, as registered; pAppData points here
  sqlite3_vfs* real = nullptr;  // the default VFS underneath; constant
  sqlite3_io_methods methods{};
  CutPoint cut_at;                      // constant
  Syncs syncs = Syncs::durable;         // constant
  bool found_files_are_durable = true;  // constant
  bool registered = false;              // guarded by mu

  mutable std::mutex mu;
  bool dead = false;                         // guarded by mu
  PowerLossStats stats;                      // guarded by mu
  std::vector<std::unique_ptr<Node>> nodes;  // guarded by mu
  std::map<std::string, Node*> current;      // name -> file now; guarded by mu
  std::map<std::string, Node*> durable;      // as of the last directory sync
  std::set<std::string> main_dbs;            // guarded by mu
  int open_files = 0;                        // guarded by mu

  Node* new_node(const std::string& name, bool main_db) {
    auto node = std::make_unique<Node>();
    node->id = static_cast<int>(nodes.size());
    node->name = name;
    node->path = name;
    node->main_db = main_db;
    nodes.push_back(std::move(node));
    return nodes.back().get();
  }

  void die() {
    if (dead) return;
    dead = true;
    for (const auto& node : nodes) {
      for (const auto& op : node->unsynced) {
        if (op.truncate) continue;
        ++stats.unsynced_writes;
        if (node->main_db) ++stats.unsynced_db_writes;
      }
    }
  }

  // Counts a call that took effect; the power fails right after the chosen one.
  void after_call(CutPoint::On kind) {
    ++stats.calls;
    if (kind == CutPoint::On::db_write) ++stats.db_writes;
    if (kind == CutPoint::On::db_sync) ++stats.db_syncs;
    if (cut_at.n == 0) return;
    const bool reached =
        (cut_at.on == CutPoint::On::call && stats.calls == cut_at.n) ||
        (cut_at.on == CutPoint::On::db_write && kind == CutPoint::On::db_write &&
         stats.db_writes == cut_at.n) ||
        (cut_at.on == CutPoint::On::db_sync && kind == CutPoint::On::db_sync &&
         stats.db_syncs == cut_at.n);
    if (reached) die();
  }

  // The directory holding `dir` is synced: its entries as they are now are durable.
  void sync_directory(const std::string& dir) {
    std::set<std::string> names;
    for (const auto& [name, node] : current) names.insert(name);
    for (const auto& [name, node] : durable) names.insert(name);
    for (const auto& name : names) {
      if (parent_of(name) != dir) continue;
      auto it = current.find(name);
      if (it != current.end()) {
        durable[name] = it->second;
      } else {
        durable.erase(name);
      }
    }
  }

  void unregister() {
    if (!registered) return;
    sqlite3_vfs_register(real, 1);
    sqlite3_vfs_unregister(&vfs);
    registered = false;
  }
};

namespace {

using File = PowerLossVfs::File;
using State = PowerLossVfs::State;
using Node = PowerLossVfs::Node;

File* as_file(sqlite3_file* f) {
  return reinterpret_cast<File*>(f);
}
State& state_of(sqlite3_vfs* vfs) {
  return *static_cast<State*>(vfs->pAppData);
}

// --- the file's methods --------------------------------------------------------------

int shim_close(sqlite3_file* f) {
  File* file = as_file(f);
  std::lock_guard lock(file->state->mu);
  const int rc = file->real()->pMethods->xClose(file->real());
  --file->state->open_files;
  return rc;
}

int shim_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 offset) {
  sqlite3_file* real = as_file(f)->real();
  return real->pMethods->xRead(real, buf, n, offset);
}

int shim_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 offset) {
  File* file = as_file(f);
  sqlite3_file* real = file->real();
  if (file->node == nullptr) return real->pMethods->xWrite(real, buf, n, offset);
  State& s = *file->state;
  std::lock_guard lock(s.mu);
  if (s.dead) return SQLITE_OK;  // nothing reaches the disk any more

  Node::Op op;
  op.offset = offset;
  int rc = real->pMethods->xFileSize(real, &op.size_before);
  if (rc != SQLITE_OK) return rc;
  if (offset < op.size_before) {
    op.before.resize(
        static_cast<std::size_t>(std::min<sqlite3_int64>(n, op.size_before - offset)));
    rc = real->pMethods->xRead(real, op.before.data(), static_cast<int>(op.before.size()),
                               offset);
    if (rc != SQLITE_OK) return rc;
  }
  op.data.assign(static_cast<const char*>(buf), static_cast<std::size_t>(n));
  op.size_after = std::max<sqlite3_int64>(op.size_before, offset + n);
  // Recorded before the write: a write that fails half-way is undone all the same.
  file->node->unsynced.push_back(std::move(op));
  rc = real->pMethods->xWrite(real, buf, n, offset);
  if (rc != SQLITE_OK) return rc;
  s.after_call(file->node->main_db ? CutPoint::On::db_write : CutPoint::On::call);
  return SQLITE_OK;
}

int shim_truncate(sqlite3_file* f, sqlite3_int64 size) {
  File* file = as_file(f);
  sqlite3_file* real = file->real();
  if (file->node == nullptr) return real->pMethods->xTruncate(real, size);
  State& s = *file->state;
  std::lock_guard lock(s.mu);
  if (s.dead) return SQLITE_OK;

  Node::Op op;
  op.truncate = true;
  op.offset = size;
  int rc = real->pMethods->xFileSize(real, &op.size_before);
  if (rc != SQLITE_OK) return rc;
  if (size < op.size_before) {
    op.before.resize(static_cast<std::size_t>(op.size_before - size));
    rc = real->pMethods->xRead(real, op.before.data(), static_cast<int>(op.before.size()),
                               size);
    if (rc != SQLITE_OK) return rc;
  }
  op.size_after = size;
  file->node->unsynced.push_back(std::move(op));
  rc = real->pMethods->xTruncate(real, size);
  if (rc != SQLITE_OK) return rc;
  // The unix VFS may round the size up to its chunk size: keep the size it left.
  real->pMethods->xFileSize(real, &file->node->unsynced.back().size_after);
  s.after_call(CutPoint::On::call);
  return SQLITE_OK;
}

int shim_sync(sqlite3_file* f, int /*flags*/) {
  File* file = as_file(f);
  // Not passed down: durability is what the shim models (see the header).
  if (file->node == nullptr) return SQLITE_OK;
  State& s = *file->state;
  std::lock_guard lock(s.mu);
  if (s.dead) return SQLITE_OK;
  if (s.syncs == Syncs::durable ||
      (s.syncs == Syncs::lost_on_databases && !file->node->main_db)) {
    file->node->unsynced.clear();
    if (file->dir_sync_pending) s.sync_directory(parent_of(file->node->name));
  }
  file->dir_sync_pending = false;
  s.after_call(file->node->main_db ? CutPoint::On::db_sync : CutPoint::On::call);
  return SQLITE_OK;
}

int shim_file_size(sqlite3_file* f, sqlite3_int64* size) {
  sqlite3_file* real = as_file(f)->real();
  return real->pMethods->xFileSize(real, size);
}

int shim_lock(sqlite3_file* f, int level) {
  sqlite3_file* real = as_file(f)->real();
  return real->pMethods->xLock(real, level);
}

int shim_unlock(sqlite3_file* f, int level) {
  sqlite3_file* real = as_file(f)->real();
  return real->pMethods->xUnlock(real, level);
}

int shim_check_reserved_lock(sqlite3_file* f, int* out) {
  sqlite3_file* real = as_file(f)->real();
  return real->pMethods->xCheckReservedLock(real, out);
}

int shim_file_control(sqlite3_file* f, int op, void* arg) {
  // A size hint may grow the file behind xWrite's back (with a chunk size set): the
  // shim would not know those bytes. It is only a hint, so it is dropped.
  if (op == SQLITE_FCNTL_SIZE_HINT) return SQLITE_OK;
  sqlite3_file* real = as_file(f)->real();
  return real->pMethods->xFileControl(real, op, arg);
}

int shim_sector_size(sqlite3_file* f) {
  sqlite3_file* real = as_file(f)->real();
  return real->pMethods->xSectorSize(real);
}

int shim_device_characteristics(sqlite3_file* f) {
  sqlite3_file* real = as_file(f)->real();
  return real->pMethods->xDeviceCharacteristics(real);
}

int shim_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** p) {
  sqlite3_file* real = as_file(f)->real();
  return real->pMethods->xShmMap(real, region, size, extend, p);
}

int shim_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  sqlite3_file* real = as_file(f)->real();
  return real->pMethods->xShmLock(real, offset, n, flags);
}

void shim_shm_barrier(sqlite3_file* f) {
  sqlite3_file* real = as_file(f)->real();
  real->pMethods->xShmBarrier(real);
}

int shim_shm_unmap(sqlite3_file* f, int delete_flag) {
  File* file = as_file(f);
  {
    std::lock_guard lock(file->state->mu);
    if (file->state->dead) delete_flag = 0;  // a dead machine deletes nothing
  }
  return file->real()->pMethods->xShmUnmap(file->real(), delete_flag);
}

// --- the VFS's methods ---------------------------------------------------------------

int shim_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags,
              int* out_flags) {
  State& s = state_of(vfs);
  File* file = as_file(f);
  file->base.pMethods = nullptr;
  file->state = &s;
  file->node = nullptr;
  file->dir_sync_pending = false;
  const bool tracked = name != nullptr && (flags & kDurableTypes) != 0;

  std::lock_guard lock(s.mu);
  const bool existed = tracked && ::access(name, F_OK) == 0;
  // After the cut nothing new appears on the disk.
  if (tracked && s.dead && !existed) return SQLITE_CANTOPEN;
  const int rc = s.real->xOpen(s.real, name, file->real(), flags, out_flags);
  if (rc != SQLITE_OK) {
    // SQLite closes a file whose xOpen failed only if pMethods is set; ours is not.
    if (file->real()->pMethods != nullptr) file->real()->pMethods->xClose(file->real());
    return rc;
  }
  file->base.pMethods = &s.methods;
  ++s.open_files;
  if (!tracked) return SQLITE_OK;

  const std::string key = name;
  const bool main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
  auto it = s.current.find(key);
  Node* node = it != s.current.end() ? it->second : nullptr;
  if (node == nullptr) {
    node = s.new_node(key, main_db);
    s.current[key] = node;
    // A file that was there before the shim saw it is durable, entry and content
    // (unless the options say otherwise); one created now is in the directory only
    // once the directory is synced.
    if (existed && s.found_files_are_durable) s.durable[key] = node;
  }
  if (main_db) s.main_dbs.insert(key);
  file->node = node;
  // The unix VFS's UNIXFILE_DIRSYNC: journals and -wal opened with CREATE sync their
  // directory at their first sync.
  file->dir_sync_pending = !main_db && (flags & SQLITE_OPEN_CREATE) != 0;
  return SQLITE_OK;
}

int shim_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  State& s = state_of(vfs);
  std::lock_guard lock(s.mu);
  if (s.dead) return SQLITE_OK;
  const std::string key = name;
  Node* node = nullptr;
  auto it = s.current.find(key);
  if (it != s.current.end()) {
    node = it->second;
    s.current.erase(it);
  } else {
    if (::access(name, F_OK) != 0) return SQLITE_IOERR_DELETE_NOENT;
    // A file the shim never opened: as it is on disk, it was durable (unless the
    // options say otherwise).
    node = s.new_node(key, false);
    if (s.found_files_are_durable) s.durable[key] = node;
  }
  // Aside rather than unlinked: the cut may bring it back.
  if (::rename(name, node->stash().c_str()) != 0) return SQLITE_IOERR_DELETE;
  node->path = node->stash();
  if (sync_dir != 0 && s.syncs != Syncs::lost) s.sync_directory(parent_of(key));
  s.after_call(CutPoint::On::call);
  return SQLITE_OK;
}

int shim_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  sqlite3_vfs* real = state_of(vfs).real;
  return real->xAccess(real, name, flags, out);
}

int shim_full_pathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  sqlite3_vfs* real = state_of(vfs).real;
  return real->xFullPathname(real, name, n, out);
}

void* shim_dl_open(sqlite3_vfs* vfs, const char* name) {
  sqlite3_vfs* real = state_of(vfs).real;
  return real->xDlOpen(real, name);
}

void shim_dl_error(sqlite3_vfs* vfs, int n, char* out) {
  sqlite3_vfs* real = state_of(vfs).real;
  real->xDlError(real, n, out);
}

void (*shim_dl_sym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  sqlite3_vfs* real = state_of(vfs).real;
  return real->xDlSym(real, handle, symbol);
}

void shim_dl_close(sqlite3_vfs* vfs, void* handle) {
  sqlite3_vfs* real = state_of(vfs).real;
  real->xDlClose(real, handle);
}

int shim_randomness(sqlite3_vfs* vfs, int n, char* out) {
  sqlite3_vfs* real = state_of(vfs).real;
  return real->xRandomness(real, n, out);
}

int shim_sleep(sqlite3_vfs* vfs, int microseconds) {
  sqlite3_vfs* real = state_of(vfs).real;
  return real->xSleep(real, microseconds);
}

int shim_current_time(sqlite3_vfs* vfs, double* out) {
  sqlite3_vfs* real = state_of(vfs).real;
  return real->xCurrentTime(real, out);
}

int shim_get_last_error(sqlite3_vfs* vfs, int n, char* out) {
  sqlite3_vfs* real = state_of(vfs).real;
  return real->xGetLastError != nullptr ? real->xGetLastError(real, n, out) : 0;
}

int shim_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  sqlite3_vfs* real = state_of(vfs).real;
  return real->xCurrentTimeInt64(real, out);
}

}  // namespace

PowerLossVfs::PowerLossVfs(PowerLossOptions options) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.real = sqlite3_vfs_find(nullptr);
  if (s.real == nullptr)
    throw std::logic_error("PowerLossVfs: SQLite has no default VFS");
  if (std::string_view(s.real->zName) == "eventlite-power-loss")
    throw std::logic_error("PowerLossVfs: one is installed already");
  s.cut_at = options.cut_at;
  s.syncs = options.syncs;
  s.found_files_are_durable = options.found_files_are_durable;

  // Version 2: no xFetch, so SQLite never reads through a memory map (every read
  // goes through xRead, and every write through xWrite in any case).
  s.methods.iVersion = 2;
  s.methods.xClose = shim_close;
  s.methods.xRead = shim_read;
  s.methods.xWrite = shim_write;
  s.methods.xTruncate = shim_truncate;
  s.methods.xSync = shim_sync;
  s.methods.xFileSize = shim_file_size;
  s.methods.xLock = shim_lock;
  s.methods.xUnlock = shim_unlock;
  s.methods.xCheckReservedLock = shim_check_reserved_lock;
  s.methods.xFileControl = shim_file_control;
  s.methods.xSectorSize = shim_sector_size;
  s.methods.xDeviceCharacteristics = shim_device_characteristics;
  s.methods.xShmMap = shim_shm_map;
  s.methods.xShmLock = shim_shm_lock;
  s.methods.xShmBarrier = shim_shm_barrier;
  s.methods.xShmUnmap = shim_shm_unmap;

  // Version 2: the system-call hooks of version 3 are the unix VFS's own business.
  s.vfs.iVersion = 2;
  s.vfs.szOsFile = static_cast<int>(sizeof(File)) + s.real->szOsFile;
  s.vfs.mxPathname = s.real->mxPathname;
  s.vfs.zName = "eventlite-power-loss";
  s.vfs.pAppData = &s;
  s.vfs.xOpen = shim_open;
  s.vfs.xDelete = shim_delete;
  s.vfs.xAccess = shim_access;
  s.vfs.xFullPathname = shim_full_pathname;
  s.vfs.xDlOpen = shim_dl_open;
  s.vfs.xDlError = shim_dl_error;
  s.vfs.xDlSym = shim_dl_sym;
  s.vfs.xDlClose = shim_dl_close;
  s.vfs.xRandomness = shim_randomness;
  s.vfs.xSleep = shim_sleep;
  s.vfs.xCurrentTime = shim_current_time;
  s.vfs.xGetLastError = shim_get_last_error;
  s.vfs.xCurrentTimeInt64 = shim_current_time_int64;

  if (sqlite3_vfs_register(&s.vfs, 1) != SQLITE_OK)
    throw std::runtime_error("PowerLossVfs: sqlite3_vfs_register failed");
  s.registered = true;
}

PowerLossVfs::~PowerLossVfs() {
  std::lock_guard lock(state_->mu);
  state_->unregister();
}

bool PowerLossVfs::dead() const {
  std::lock_guard lock(state_->mu);
  return state_->dead;
}

void PowerLossVfs::cut() {
  std::lock_guard lock(state_->mu);
  state_->die();
}

PowerLossStats PowerLossVfs::stats() const {
  std::lock_guard lock(state_->mu);
  return state_->stats;
}

PowerLossStats PowerLossVfs::restore(CutMode mode, std::uint64_t seed) {
  State& s = *state_;
  std::lock_guard lock(s.mu);
  s.die();
  if (s.open_files != 0)
    throw std::logic_error("PowerLossVfs::restore: " + std::to_string(s.open_files) +
                           " files are still open through the shim");
  std::mt19937_64 rng(seed);
  auto coin = [&rng] { return (rng() & 1) != 0; };

  // Contents: every file back to its last sync, newest call first; a tear then
  // replays the unsynced calls in order, each sector of a write kept or lost.
  for (const auto& node : s.nodes) {
    if (mode == CutMode::keep) {
      for (const auto& op : node->unsynced) s.stats.kept_bytes += op.data.size();
      continue;
    }
    if (node->unsynced.empty()) continue;
    const int fd = ::open(node->path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0)
      throw std::system_error(errno, std::generic_category(), "open " + node->path);
    try {
      for (auto op = node->unsynced.rbegin(); op != node->unsynced.rend(); ++op) {
        if (!op->before.empty()) pwrite_all(fd, op->before, op->offset, node->path);
        truncate_fd(fd, op->size_before, node->path);
      }
      for (const auto& op : node->unsynced) {
        if (op.truncate) {
          if (mode == CutMode::tear && coin()) truncate_fd(fd, op.size_after, node->path);
          continue;
        }
        const sqlite3_int64 end = op.offset + static_cast<sqlite3_int64>(op.data.size());
        for (sqlite3_int64 at = op.offset; at < end;) {
          const sqlite3_int64 next = std::min(end, (at / kSector + 1) * kSector);
          const auto length = static_cast<std::size_t>(next - at);
          if (mode == CutMode::tear && coin()) {
            pwrite_all(fd,
                       op.data.substr(static_cast<std::size_t>(at - op.offset), length),
                       at, node->path);
            s.stats.kept_bytes += length;
          } else {
            s.stats.dropped_bytes += length;
          }
          at = next;
        }
      }
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
  }

  // Directory entries: every file aside first, so that no rename below lands on
  // another; then each name gets the file it has on the disk after the cut.
  std::set<std::string> names;
  for (const auto& [name, node] : s.current) names.insert(name);
  for (const auto& [name, node] : s.durable) names.insert(name);
  for (const auto& node : s.nodes) {
    if (node->path == node->stash()) continue;
    rename_file(node->path, node->stash());
    node->path = node->stash();
  }
  std::set<Node*> placed;
  for (const auto& name : names) {
    auto c = s.current.find(name);
    auto d = s.durable.find(name);
    Node* now = c != s.current.end() ? c->second : nullptr;
    Node* synced = d != s.durable.end() ? d->second : nullptr;
    Node* chosen = synced;
    if (mode == CutMode::keep || (mode == CutMode::tear && now != synced && coin()))
      chosen = now;
    if (chosen != now) ++s.stats.entries_reverted;
    if (chosen == nullptr) continue;
    rename_file(chosen->path, name);
    chosen->path = name;
    placed.insert(chosen);
  }
  for (const auto& node : s.nodes) {
    if (placed.count(node.get()) == 0) ::unlink(node->path.c_str());
  }

  // The -shm: whatever a power cut leaves in it must not matter. Garbage over it.
  for (const auto& db : s.main_dbs) {
    const std::string shm = db + "-shm";
    struct stat st {};
    if (::stat(shm.c_str(), &st) != 0 || st.st_size == 0) continue;
    const int fd = ::open(shm.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + shm);
    try {
      pwrite_all(fd, std::string(static_cast<std::size_t>(st.st_size), '\xA5'), 0, shm);
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
    ++s.stats.shm_scrambled;
  }

  PowerLossStats stats = s.stats;
  s.nodes.clear();
  s.current.clear();
  s.durable.clear();
  s.unregister();
  return stats;
}

}  // namespace eventlite::test
