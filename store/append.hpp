#pragma once

// Appending inside a transaction that the caller has open: validation, idempotency by
// id, the expected-version check and the inserts. Used by the group commit, by
// Transaction and by Store::append_in on the application's own connection.

#include <sqlite3.h>

#include <array>
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

 private:
  std::optional<Stmt> insert_rows_;
};

struct AppendLimits {
  std::size_t max_event_bytes;
};

// Every check of the events' content, done in memory before any SQL: names, sizes,
// UTF-8, data valid JSON, metadata a JSON object, JSON nested at most 2000 deep (the
// INSERT checks nothing more). Throws InvalidEvent naming the event and the field.
// Thread safety: safe to call from any thread (each keeps its own parser).
void validate(std::string_view stream, std::span<const NewEvent> events,
              const AppendLimits& limits);

// Appends `events` to `stream` on `st`'s connection, inside the caller's open
// transaction, all stamped `time`. Returns the seqs. On a throw, some of this call's
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

}  // namespace eventlite::detail
