#pragma once

// A SQLite VFS for power-loss tests: a shim over the default VFS that keeps, for
// every durable file (database, -wal, rollback journals), what was written since that
// file's last xSync, and the directory entries created or removed since the
// directory's last sync. When the power fails (after a chosen number of calls, or at
// cut()), the shim goes dead: every further write, sync, truncate and delete is
// ignored, so closing the connections afterwards checkpoints and cleans up nothing.
// restore() then leaves the files as the power cut would: each file as at its last
// sync (drop), or with a random subset of its unsynced writes kept at 512-byte sector
// granularity (tear).
//
// The model of the disk:
// - A file's content is durable up to its last xSync; writes and truncations since
//   are undone at the cut, newest first, from pre-images taken before each one. Under
//   tear each 512-byte sector that a write touched keeps or loses that write at
//   random, in write order, so a sector may end up with an older unsynced version;
//   bytes outside a write's range are never damaged (SQLite's unix VFS declares
//   "powersafe overwrite", and this keeps to it).
// - Directory entries: a file created through the shim and a file deleted through it
//   are changes to the directory, durable only once the directory is synced. The
//   unix VFS syncs the directory in two places, and the shim does the same: at the
//   first xSync of a journal or -wal that was opened with SQLITE_OPEN_CREATE (the unix
//   VFS's UNIXFILE_DIRSYNC), and at xDelete with syncDir set. So a -wal created by a
//   new connection vanishes at the cut until its first sync, and a -wal that the last
//   connection deleted on close (without syncDir, as SQLite does) comes back with its
//   synced content, as on a real file system. A deleted file is renamed aside (its
//   name plus ".powerloss-N") rather than unlinked, so that it can come back. Files
//   that the shim finds rather than creates are taken as durable, content and entry,
//   unless the options say they were created just before. Under tear each changed
//   entry is, at random, as synced or as last written.
// - The -shm is not durable storage: it is shared memory that SQLite rebuilds from
//   the -wal when the first connection opens the database. restore() fills it with
//   garbage, so a test fails if recovery ever trusted it.
// - xSync never reaches the disk: durability is what the shim models, and thousands
//   of real fsyncs would make every trial slow.
//
// Thread safety: safe to share; SQLite may call the shim from any thread.

#include <cstdint>
#include <memory>

namespace eventlite::test {

// What restore() does with the writes that were not synced when the power failed.
enum class CutMode {
  drop,  // lost: every file and directory entry is as at its last sync
  tear,  // each 512-byte sector of each unsynced write kept or lost at random
  keep,  // kept, as after a process crash: the control that loses nothing
};

// What xSync does on the simulated disk. Only `durable` is a working disk; the others
// are broken ones, for the controls that show the checks catch what they cause.
enum class Syncs {
  durable,  // a sync makes the file's writes (and, where due, its entry) durable
  lost,     // no sync makes anything durable, as under synchronous=OFF
  lost_on_databases,  // syncs of main database files make nothing durable
};

// When the power fails by itself: right after the n-th call of the kind (that call
// takes effect, the next does not). n = 0: only when cut() is called.
struct CutPoint {
  enum class On {
    call,      // any write, sync, truncate or delete of a durable file
    db_write,  // a write to a main database file (checkpoints write it)
    db_sync,   // a sync of a main database file (a checkpoint's end)
  };
  On on = On::call;
  std::uint64_t n = 0;
};

struct PowerLossOptions {
  CutPoint cut_at = {};
  Syncs syncs = Syncs::durable;
  // Whether a file that is there when the shim first opens it, and that the shim did
  // not create, is durable, entry and content. false: it was created since the
  // directory's last sync, outside SQLite (Store::open creates a new database file
  // itself), and is in the directory only once the directory is synced.
  bool found_files_are_durable = true;
};

// What the shim saw and what the cut threw away.
struct PowerLossStats {
  std::uint64_t calls = 0;            // writes, syncs, truncates, deletes before the cut
  std::uint64_t db_writes = 0;        // of them, writes to main database files
  std::uint64_t db_syncs = 0;         // of them, syncs of main database files
  std::uint64_t unsynced_writes = 0;  // writes not synced at the cut
  std::uint64_t unsynced_db_writes = 0;  // of them, to a main database (mid-checkpoint)
  std::uint64_t dropped_bytes = 0;       // unsynced bytes that the cut lost
  std::uint64_t kept_bytes = 0;          // unsynced bytes that a tear kept
  std::uint64_t entries_reverted = 0;    // directory entries put back as last synced
  std::uint64_t shm_scrambled = 0;       // -shm files filled with garbage
};

class PowerLossVfs {
 public:
  // Registers the shim, over the current default VFS, as SQLite's default. Only one
  // may be installed at a time.
  explicit PowerLossVfs(PowerLossOptions options = {});
  // Unregisters the shim (if restore() has not): the previous default is back.
  ~PowerLossVfs();
  PowerLossVfs(const PowerLossVfs&) = delete;
  PowerLossVfs& operator=(const PowerLossVfs&) = delete;

  // Whether the power has failed.
  bool dead() const;
  // Fails the power now, if it has not failed already.
  void cut();
  // What the shim has seen so far.
  PowerLossStats stats() const;
  // Fails the power if it has not, and leaves the files as the cut does under `mode`
  // (tear draws from `seed`); then unregisters the shim. Every connection opened
  // through the shim must be closed first (throws std::logic_error otherwise).
  PowerLossStats restore(CutMode mode, std::uint64_t seed);

  struct Node;
  struct File;
  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace eventlite::test
