// Queries: the lease-row protocol (eventlite_leases) and the standbys' rows
// (eventlite_standbys). See queries.hpp.

#include "processor/queries.hpp"

namespace eventlite::detail {

std::optional<LeaseRow> Queries::read_lease(std::string_view name) {
  Stmt& s = get("SELECT owner, expires, token FROM eventlite_leases WHERE name = ?1");
  StmtScope scope(s);
  s.bind(1, name);
  if (!s.step("read lease")) return std::nullopt;
  LeaseRow row;
  s.column_text(0, row.owner);
  s.column_text(1, row.expires);
  row.token = s.column_int(2);
  return row;
}

void Queries::write_lease(std::string_view name, std::string_view owner,
                          std::string_view expires, std::int64_t token) {
  Stmt& s = get(
      "INSERT INTO eventlite_leases(name, owner, expires, token) VALUES (?1, ?2, ?3, ?4) "
      "ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, "
      "expires = excluded.expires, token = excluded.token");
  StmtScope scope(s);
  s.bind(1, name);
  s.bind(2, owner);
  s.bind(3, expires);
  s.bind(4, token);
  s.step("write lease");
}

Queries::LeaseTake Queries::take_lease(std::string_view name, std::string_view owner,
                                       std::int64_t token, bool renew,
                                       std::string_view now, std::string_view expires) {
  LeaseTake take;
  take.before = read_lease(name);
  const auto& row = take.before;
  // Ours only if this instance holds it (owner and token); an owner name alone may
  // be shared by a restarted or a misconfigured second process.
  const bool ours = row && token != 0 && row->owner == owner && row->token == token;
  if (ours && renew) {
    take.token = token;
    take.renewed = true;
  } else if (!row || ours || row->expires <= now) {
    take.token = row ? row->token + 1 : 1;
  } else {
    return take;  // held elsewhere
  }
  write_lease(name, owner, expires, take.token);
  return take;
}

Queries::LeaseTake Queries::steal_lease(std::string_view name, std::string_view owner,
                                        std::string_view expires) {
  LeaseTake take;
  take.before = read_lease(name);
  take.token = take.before ? take.before->token + 1 : 1;
  write_lease(name, owner, expires, take.token);
  return take;
}

std::optional<LeaseRow> Queries::revoke_lease(std::string_view name,
                                              std::string_view expires) {
  auto before = read_lease(name);
  if (!before) return before;
  Stmt& s =
      get("UPDATE eventlite_leases SET token = token + 1, expires = ?2 WHERE name = ?1");
  StmtScope scope(s);
  s.bind(1, name);
  s.bind(2, expires);
  s.step("end lease");
  return before;
}

void Queries::release_lease(std::string_view name, std::string_view owner,
                            std::int64_t token, std::string_view expires) {
  Stmt& s =
      get("UPDATE eventlite_leases SET expires = ?4 WHERE name = ?1 AND owner = ?2 AND "
          "token = ?3");
  StmtScope scope(s);
  s.bind(1, name);
  s.bind(2, owner);
  s.bind(3, token);
  s.bind(4, expires);
  s.step("release lease");
}

void Queries::write_standby(std::string_view name, std::string_view owner,
                            std::string_view since, std::string_view expires) {
  Stmt& s =
      get("INSERT INTO eventlite_standbys(name, owner, since, expires) "
          "VALUES (?1, ?2, ?3, ?4) "
          "ON CONFLICT(name, owner) DO UPDATE SET expires = excluded.expires");
  StmtScope scope(s);
  s.bind(1, name);
  s.bind(2, owner);
  s.bind(3, since);
  s.bind(4, expires);
  s.step("write standby");
}

void Queries::delete_standby(std::string_view name, std::string_view owner) {
  Stmt& s = get("DELETE FROM eventlite_standbys WHERE name = ?1 AND owner = ?2");
  StmtScope scope(s);
  s.bind(1, name);
  s.bind(2, owner);
  s.step("delete standby");
}

}  // namespace eventlite::detail
