// The store's identity (store.hpp: StoreIdentity): one row of eventlite_store, made by
// schema 6 and read, never cached, so a rename by another process shows at once.

#include <SQLiteCpp/Database.h>
#include <fmt/format.h>

#include <string>

#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"
#include "store/schema.hpp"
#include "store/store_impl.hpp"

namespace eventlite {

namespace {
constexpr int kIdentitySchema = 6;  // the version that made eventlite_store
}

std::string store_name_problem(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > 64) return "is longer than 64 characters";
  const auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name.front())) return "does not start with a letter or a digit";
  for (char c : name)
    if (!alnum(c) && c != '_' && c != '-')
      return "holds a character other than A-Z, a-z, 0-9, '_' and '-'";
  return {};
}

StoreIdentity Store::identity() const {
  auto conn = impl_->readers->acquire();
  if (detail::read_schema_version(conn->db->getHandle()) < kIdentitySchema) return {};
  auto& s = conn->statement(
      "SELECT id, coalesce(name, '') FROM eventlite_store WHERE singleton = 1");
  detail::StmtScope scope(s);
  StoreIdentity out;
  if (!s.step("read the store's identity")) return out;
  s.column_text(0, out.id);
  s.column_text(1, out.name);
  return out;
}

void Store::set_name(std::string_view name) {
  if (!name.empty())
    if (const std::string why = store_name_problem(name); !why.empty())
      throw InvalidArgument(fmt::format("store name {:?} {}", name, why));
  Transaction txn = transaction();
  detail::Stmt s(txn.database().getHandle(),
                 "UPDATE eventlite_store SET name = nullif(?1, '') WHERE singleton = 1",
                 false);
  s.bind(1, name);
  s.step("name the store");
  s.reset();
  txn.commit();
  impl_->logger->info("store named: path={} name={}", impl_->path.string(),
                      name.empty() ? "(none)" : std::string(name));
}

}  // namespace eventlite
