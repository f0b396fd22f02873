#include "store/schema.hpp"

#include "eventlite/errors.hpp"
#include "store/sqlite_util.hpp"

namespace eventlite::detail {

int latest_schema_version() {
  return migrations().back().version;
}

int read_schema_version(sqlite3* db) {
  Stmt has(db,
           "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = "
           "'eventlite_schema'",
           false);
  StmtScope has_scope(has);
  if (!has.step("read schema") || has.column_int(0) == 0) return 0;
  Stmt version(db, "SELECT max(version) FROM eventlite_schema", false);
  StmtScope version_scope(version);
  if (!version.step("read schema version") || version.column_null(0)) return 0;
  return static_cast<int>(version.column_int(0));
}

void migrate(sqlite3* db) {
  const int supported = latest_schema_version();
  for (const Migration& m : migrations()) {
    WriteTxn txn(db, "migrate schema");
    int current = read_schema_version(db);
    if (current > supported) throw SchemaTooNew(current, supported);
    if (current >= m.version) continue;
    exec(db, m.sql, std::string("migrate schema to ") + m.name);
    Stmt set(db,
             current == 0 ? "INSERT INTO eventlite_schema(version) VALUES (?)"
                          : "UPDATE eventlite_schema SET version = ?",
             false);
    set.bind(1, std::int64_t{m.version});
    set.step("record schema version");
    set.reset();
    txn.commit();
  }
}

}  // namespace eventlite::detail
