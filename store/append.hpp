#pragma once

// Appending inside a transaction that the caller has open: validation, idempotency by
// id, the expected-version check and the inserts. Used by the group commit, by
// Transaction and by Store::append_in on the application's own connection.

#include <sqlite3.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eventlite/event.hpp"
#include "store/sqlite_util.hpp"
#include "store/uuid.hpp"

namespace eventlite::detail {

// The statements an append runs, prepared once per connection.
struct AppendStatements {
  explicit AppendStatements(sqlite3* db, bool persistent = true);
  Stmt stream_version;
  Stmt find_id;
  Stmt insert;
  SavepointStatements savepoint;
};

struct AppendLimits {
  std::size_t max_event_bytes;
};

// Cheap checks done before any SQL: empty stream or type, sizes, metadata shape, the
// form of a given time.
// Throws InvalidEvent.
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

}  // namespace eventlite::detail
