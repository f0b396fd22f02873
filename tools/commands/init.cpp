// `eventlite init`: creates DB or adds eventlite's tables to it, and names the store.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "tools/command.hpp"
#include "tools/error.hpp"
#include "tools/open_store.hpp"
#include "tools/options.hpp"

namespace eventlite::cli {
namespace {

struct InitArgs {
  std::string db;
  std::optional<std::string> name;  // --name: names (or renames) the store
};

CLI::App* add_init(CLI::App& app, InitArgs& args) {
  CLI::App* command = app.add_subcommand(
      "init",
      "Create DB, or add eventlite's tables to an existing SQLite database (leaving "
      "the application's own tables alone), and migrate it to this version's schema. "
      "Idempotent.");
  add_db(command, args.db, "the SQLite file; created with mode 0600 if missing");
  command
      ->add_option("--name", args.name,
                   "name the store (or rename it): 1 to 64 of A-Z a-z 0-9 _ -, starting "
                   "with a letter or digit; what sinks send says it (CloudEvents "
                   "source eventlite://NAME, {store} in a Redis key)")
      ->type_name("NAME")
      ->check([](const std::string& name) {
        const std::string why = store_name_problem(name);
        return why.empty() ? why : "\"" + name + "\" " + why;
      });
  return command;
}

int run_init(const InitArgs& args) {
  Store store = open_or_create(args.db, args.name);
  const StoreIdentity id = store.identity();
  std::cout << fmt::format("{}: eventlite schema version {}, store {}{}\n", args.db,
                           store.schema_version(), id.id,
                           id.name.empty() ? "" : " (" + id.name + ")");
  return kExitOk;
}

std::string check_init(const InitArgs& args) {
  return file_db_problem(args.db);
}

}  // namespace

void setup_init(CLI::App& app, Commands& commands) {
  add_command<InitArgs>(app, commands, add_init, run_init, check_init);
}

}  // namespace eventlite::cli
