// `eventlite read`: events as envelope lines, and with --follow those appended later.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "eventlite/envelope.hpp"
#include "tools/command.hpp"
#include "tools/error.hpp"
#include "tools/follow.hpp"
#include "tools/open_store.hpp"
#include "tools/options.hpp"

namespace eventlite::cli {
namespace {

constexpr const char* kReadOnly = " Opens DB read-only: never writes to it.";

struct ReadArgs {
  std::string db;
  ReadFilters filters;
  std::uint64_t limit = 0;  // 0: no limit
  bool follow = false;
};

CLI::App* add_read(CLI::App& app, ReadArgs& args) {
  CLI::App* command = app.add_subcommand(
      "read",
      std::string("Print events in ascending seq order, one JSON envelope a line: "
                  "{\"seq\",\"id\",\"stream\",\"version\",\"type\",\"time\",\"data\","
                  "\"metadata\"}.") +
          kReadOnly);
  add_db(command, args.db);
  add_read_filters(command, args.filters);
  command->add_flag("--follow", args.follow,
                    "then print each new event as it is appended, by this or any other "
                    "process, until SIGINT or SIGTERM, or until stdout's reader goes "
                    "away");
  command->add_option("--limit", args.limit, "print at most N events")
      ->type_name("N")
      ->transform(decimal(1, std::numeric_limits<std::uint64_t>::max()));
  return command;
}

int run_read(const ReadArgs& args) {
  Store store = open_for_reading(args.db);
  ReadOptions options = read_options(args.filters);
  options.limit = args.limit;
  if (args.follow) return follow(store, std::move(options));
  for (const Event& event : store.read_all(std::move(options))) {
    std::cout << to_envelope(event) << '\n';
  }
  return kExitOk;
}

std::string check_read(const ReadArgs& args) {
  if (std::string why = filters_problem(args.filters); !why.empty()) return why;
  return file_db_problem(args.db);
}

}  // namespace

void setup_read(CLI::App& app, Commands& commands) {
  add_command<ReadArgs>(app, commands, add_read, run_read, check_read);
}

}  // namespace eventlite::cli
