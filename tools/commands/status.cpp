// `eventlite status`: the head, and each subscription's position, lag, deliveries and
// lease.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "eventlite/subscriptions.hpp"
#include "tools/command.hpp"
#include "tools/error.hpp"
#include "tools/open_store.hpp"
#include "tools/options.hpp"
#include "tools/status_output.hpp"

namespace eventlite::cli {
namespace {

constexpr const char* kReadOnly = " Opens DB read-only: never writes to it.";

struct StatusArgs {
  std::string db;
  bool json = false;
};

CLI::App* add_status(CLI::App& app, StatusArgs& args) {
  CLI::App* command = app.add_subcommand(
      "status",
      std::string("Print the SQLite version, the head (the highest seq) and, per "
                  "subscription, its position (every event up to it is done or owed), "
                  "lag (head - position), retrying (deliveries owed), dead (dead "
                  "letters) and lease owner and expiry, as a table with a header.") +
          kReadOnly);
  add_db(command, args.db);
  command->add_flag(
      "--json", args.json,
      "print one JSON object instead: {\"head\",\"subscriptions\":[{\"name\","
      "\"position\",\"lag\",\"retrying\",\"dead\",\"lease\":{\"owner\","
      "\"expires\"}|null}]}");
  return command;
}

int run_status(const StatusArgs& args) {
  Store store = open_for_reading(args.db);
  require_processor_schema(store, args.db, kStatusSchema);
  const StatusReport report = status(store);
  if (args.json)
    print_status_json(std::cout, report);
  else
    print_status_tables(std::cout, report);
  return kExitOk;
}

std::string check_status(const StatusArgs& args) {
  return file_db_problem(args.db);
}

}  // namespace

void setup_status(CLI::App& app, Commands& commands) {
  add_command<StatusArgs>(app, commands, add_status, run_status, check_status);
}

}  // namespace eventlite::cli
