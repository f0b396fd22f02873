#pragma once

// Appending inside a transaction that the caller has open: validation, idempotency by
// id, the expected-version check and the inserts. Used by the group commit, by
// Transaction and by Store::append_in on the application's own connection.

#include <sqlite3.h>

#include <array>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eventlite/event.hpp"
#include "store/sqlite_util.hpp"
#include "store/uuid.hpp"

namespace eventlite::detail {

// Rows of one multi-row INSERT: a statement per row costs SQLite about a third of a
// small event's insert (cursors opened and closed, the statement started and halted).
inline constexpr std::size_t kInsertRows = 32;

// A row to insert: an event, its stream and version, where its seq goes, and its
// index in its call (for errors).
struct InsertRow {
  std::string_view stream;
  Version version;
  const NewEvent* event;
  Seq* seq;
  std::size_t index;
};

// The statements an append runs, prepared once per connection, and its scratch.
// Thread safety: one thread at a time, with its connection.
struct AppendStatements {
  explicit AppendStatements(sqlite3* db, bool persistent = true);
  // The kInsertRows-row INSERT, prepared on first use.
  Stmt& insert_rows();

  sqlite3* db;
  bool persistent;
  Stmt stream_version;
  Stmt find_id;
  Stmt insert;  // one row
  SavepointStatements savepoint;
  std::array<std::string, kInsertRows> generated_ids;  // of the rows being inserted
  std::vector<InsertRow> rows;                         // of the call being appended

 private:
  std::optional<Stmt> insert_rows_;
};

struct AppendLimits {
  std::size_t max_event_bytes;
};

// Every check of the events' content, done in memory before any SQL (store/validate.cpp):
// names, sizes, UTF-8, no NUL byte in a name or id, data valid JSON, metadata a JSON
// object, a given time in the store's form, JSON nested at most 2000 deep (the INSERT
// checks nothing more). Throws InvalidEvent naming the event and the field.
// Thread safety: safe to call from any thread (each keeps its own parser).
void validate(std::string_view stream, std::span<const NewEvent> events,
              const AppendLimits& limits);

// Appends `events` to `stream` on `st`'s connection, inside the caller's open
// transaction, each stamped with its own time if it gives one, `time` otherwise.
// Returns the seqs. On a throw, some of this call's
// rows may be written: the caller rolls back to its savepoint (or the transaction).
std::vector<Seq> append_events(AppendStatements& st, UuidV7& ids, std::string_view stream,
                               std::span<const NewEvent> events, Expected expected,
                               const std::string& time);

// append_events() inside a savepoint, so that a throw leaves nothing of this call in
// the transaction. A single event needs none: its one INSERT is atomic, and every
// check that can fail comes before it.
std::vector<Seq> append_atomically(AppendStatements& st, UuidV7& ids,
                                   std::string_view stream,
                                   std::span<const NewEvent> events, Expected expected,
                                   const std::string& time);

// One appender's request in a group commit, and its outcome: seqs, or error.
struct GroupAppend {
  std::string_view stream;
  std::span<const NewEvent> events;
  Expected expected = Expected::any();
  std::vector<Seq> seqs;
  std::exception_ptr error;
};

// Appends every request of `group`, in order, inside the caller's open transaction,
// each all or nothing: a request that fails (version conflict, IdConflict, an id
// twice) gets its error and leaves nothing; the others are written, exactly as if
// each ran append_atomically() in turn. Returns whether any request was written.
// Throws if SQLite ended the transaction (the caller fails every request).
bool append_group(AppendStatements& st, UuidV7& ids, std::span<GroupAppend* const> group,
                  const std::string& time);

}  // namespace eventlite::detail
