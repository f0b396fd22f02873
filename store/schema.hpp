#pragma once

// Migrations of eventlite's own tables. The version lives in eventlite_schema, never in
// PRAGMA user_version, which belongs to the application. Forward only, each migration
// in one BEGIN IMMEDIATE transaction that re-reads the version first, so two
// processes opening a new file at once migrate it once.

#include <sqlite3.h>

#include <vector>

namespace eventlite::detail {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

// All migrations in version order, compiled from schema/NNN_name.sql.
const std::vector<Migration>& migrations();
int latest_schema_version();

// The file's eventlite schema version, 0 if it has no eventlite tables. Reads only.
// Throws StorageError (SQLITE_NOTADB if the file is not a SQLite database).
int read_schema_version(sqlite3* db);

// Applies every migration newer than the file's version. Throws SchemaTooNew, having
// written nothing, if the file is newer than this library.
void migrate(sqlite3* db);

}  // namespace eventlite::detail
