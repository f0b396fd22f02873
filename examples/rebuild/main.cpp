// Rebuilding a read model without downtime.
//
// The application keeps account balances in its own table, `balances`, through a
// transactional subscription: each event's change commits with the subscription's
// checkpoint. Version 1 of its handler has a bug: it ignores refunds. The fix is
// deployed while orders keep coming in: version 2 is built into a shadow table,
// `balances_next`, from the whole log, while version 1 keeps serving and receiving
// live events; when the shadow has caught up, one transaction delivers the last
// events to it, swaps the tables and moves the checkpoint, and from then on the live
// handler is version 2. Finally the table is compared with a fold of the log by
// replay: every account is right.
//
// Usage: rebuild_demo DB

#include <SQLiteCpp/SQLiteCpp.h>
#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>

#include "eventlite/eventlite.hpp"

namespace {

using namespace std::chrono_literals;

constexpr int kAccounts = 40;

// The change an event makes to its account's balance; version 1 forgets refunds.
std::int64_t change(const eventlite::Event& e, int version) {
  const std::int64_t amount = e.data_json().at("amount");
  if (e.type == "Deposited") return amount;
  if (e.type == "Withdrawn") return -amount;
  if (e.type == "Refunded") return version >= 2 ? amount : 0;
  return 0;
}

// Writes an event's change into `table` ("balances" or "balances_next").
void apply(const eventlite::Context& ctx, const char* table, int version) {
  SQLite::Statement upsert(
      ctx.transaction().database(),
      std::string(table) == "balances"
          ? "INSERT INTO balances (account, balance) VALUES (?1, ?2) "
            "ON CONFLICT(account) DO UPDATE SET balance = balance + excluded.balance"
          : "INSERT INTO balances_next (account, balance) VALUES (?1, ?2) "
            "ON CONFLICT(account) DO UPDATE SET balance = balance + excluded.balance");
  upsert.bind(1, ctx.event().stream);
  upsert.bind(2, change(ctx.event(), version));
  upsert.exec();
}

// Events from..from+count-1, in one transaction.
void append_some(eventlite::Store& store, int from, int count) {
  static constexpr const char* kTypes[] = {"Deposited", "Deposited", "Withdrawn",
                                           "Refunded"};
  auto t = store.transaction();
  for (int i = from; i < from + count; ++i)
    t.append(fmt::format("account-{}", i % kAccounts),
             eventlite::make_event(kTypes[i % 4], {{"amount", 1 + i % 50}}));
  t.commit();
}

// How many accounts in `balances` differ from a fold of the log with `version`'s
// rules.
int wrong_accounts(const eventlite::Store& store, const std::string& path, int version) {
  std::map<std::string, std::int64_t> expected;
  eventlite::replay(store, [&](const eventlite::Context& c) {
    expected[c.event().stream] += change(c.event(), version);
  });
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db, "SELECT account, balance FROM balances");
  int wrong = 0;
  std::size_t rows = 0;
  while (q.executeStep()) {
    ++rows;
    if (expected[q.getColumn(0).getString()] != q.getColumn(1).getInt64()) ++wrong;
  }
  return wrong + static_cast<int>(expected.size() - std::min(expected.size(), rows));
}

int run(const std::string& path) {
  auto store = eventlite::Store::open(path);
  {
    auto t = store.transaction();
    t.database().exec(
        "CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, balance "
        "INTEGER)");
    t.commit();
  }
  fmt::print("eventlite rebuild demo on {}\n\n", path);
  std::atomic<int> live_version{1};
  eventlite::ProcessorOptions options;
  options.checkpoint_interval = 10ms;
  eventlite::Processor processor(store, options);
  processor.subscribe(
      "balances",
      [&](const eventlite::Context& ctx) { apply(ctx, "balances", live_version); },
      {.transactional = true});
  processor.start();

  append_some(store, 0, 20000);
  if (!processor.wait_idle(30s)) throw std::runtime_error("the processor fell behind");
  fmt::print("1. 20000 events, balances kept live by handler version 1\n");
  fmt::print("   accounts wrong by the fixed rules: {} of {} (refunds were ignored)\n\n",
             wrong_accounts(store, path, 2), kAccounts);

  fmt::print("2. Version 2 is built into balances_next while orders keep coming\n");
  std::atomic<bool> more{true};
  std::atomic<int> appended{0};
  std::thread orders([&] {
    for (int i = 0; more; ++i, ++appended) {
      append_some(store, 20000 + i, 1);
      std::this_thread::sleep_for(1ms);
    }
  });
  eventlite::ShadowBuild build;
  build.create = [](eventlite::Transaction& t) {
    t.database().exec(
        "DROP TABLE IF EXISTS balances_next;"
        "CREATE TABLE balances_next (account TEXT PRIMARY KEY, balance INTEGER)");
  };
  build.handler = [](const eventlite::Context& ctx) { apply(ctx, "balances_next", 2); };
  build.swap = [&](eventlite::Transaction& t) {
    t.database().exec(
        "DROP TABLE balances; ALTER TABLE balances_next RENAME TO balances");
    live_version = 2;  // the next live batch runs after this transaction commits
  };
  eventlite::RebuildReport report;
  try {
    report = eventlite::rebuild_with_shadow(
        store, "balances", build,
        {.batch_size = 1000, .on_progress = [](auto at, auto head) {
           if (at % 5000 < 1000) fmt::print("   shadow at seq {} of {}\n", at, head);
         }});
  } catch (...) {
    live_version = 1;  // the swap did not commit
    more = false;
    orders.join();
    throw;
  }
  more = false;
  orders.join();
  fmt::print(
      "   swapped at seq {}: {} events in {} steps, {} ms, the longest step {} ms;\n"
      "   {} orders appended meanwhile, the old table serving until the swap\n\n",
      report.position_after, report.events, report.steps, report.took.count(),
      report.longest_step.count(), appended.load());

  if (!processor.wait_idle(30s)) throw std::runtime_error("the processor fell behind");
  processor.stop();
  const int wrong = wrong_accounts(store, path, 2);
  fmt::print("3. balances compared with a replay of all {} events: {} accounts wrong\n",
             store.head(), wrong);
  return wrong == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DB\n", argv[0]);
    return 2;
  }
  try {
    return run(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rebuild_demo: %s\n", e.what());
    return 1;
  }
}
