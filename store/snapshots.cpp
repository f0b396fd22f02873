// Aggregate snapshots (include/eventlite/aggregate.hpp): one row per fold and stream
// in eventlite_snapshots, replaced as the stream grows.

#include <fmt/format.h>

#include "eventlite/aggregate.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/transaction.hpp"
#include "store/clock.hpp"
#include "store/sqlite_util.hpp"
#include "store/store_impl.hpp"
#include "store/time_text.hpp"

namespace eventlite::detail {

std::optional<SnapshotRow> read_snapshot(const Store& store, std::string_view name,
                                         std::string_view stream, int schema_version,
                                         Seq to) {
  auto conn = StoreAccess::impl(store)->readers->acquire();
  Stmt& s = conn->statement(
      "SELECT version, seq, state FROM eventlite_snapshots "
      "WHERE name = ?1 AND stream = ?2 AND schema_version = ?3 AND seq <= ?4");
  StmtScope scope(s);
  s.bind(1, name);
  s.bind(2, stream);
  s.bind(3, std::int64_t{schema_version});
  s.bind(4, to);
  if (!s.step("read snapshot")) return std::nullopt;
  return SnapshotRow{s.column_int(0), s.column_int(1), std::string(s.column_text(2))};
}

void check_as_of(std::string_view as_of) {
  if (!as_of.empty() && !valid_time(as_of))
    throw InvalidArgument(fmt::format(
        "load: as_of must be a time like 2026-11-23T10:00:00.000Z, not \"{}\"", as_of));
}

bool write_snapshot(Store& store, std::string_view name, std::string_view stream,
                    int schema_version, Version version, Seq seq,
                    const std::string& state) noexcept {
  const auto& impl = StoreAccess::impl(store);
  if (!impl->writer) return false;  // read-only: loads fold in full
  try {
    const std::string now = now_text();  // bound without a copy: alive until the step
    Transaction txn = store.transaction();
    Stmt s(
        txn.database().getHandle(),
        "INSERT INTO eventlite_snapshots(name, stream, schema_version, version, seq, "
        "state, time) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(name, stream) DO "
        "UPDATE SET schema_version = excluded.schema_version, version = "
        "excluded.version, seq = excluded.seq, state = excluded.state, time = "
        "excluded.time WHERE excluded.version >= version OR excluded.schema_version != "
        "schema_version",
        false);
    s.bind(1, name);
    s.bind(2, stream);
    s.bind(3, std::int64_t{schema_version});
    s.bind(4, version);
    s.bind(5, seq);
    s.bind(6, state);
    s.bind(7, now);
    s.step("write snapshot");
    s.reset();
    txn.commit();
    return true;
  } catch (const InvalidArgument& e) {
    // This thread's open transaction (a load in a transactional handler): no room
    // for a write of its own, which is fine.
    impl->logger->debug("snapshot of {} {} not written: {}", name, stream, e.what());
    return false;
  } catch (const std::exception& e) {
    try {
      impl->logger->warn("snapshot of {} {} not written (loads fold further): {}", name,
                         stream, e.what());
    } catch (...) {
    }
    return false;
  }
}

}  // namespace eventlite::detail
