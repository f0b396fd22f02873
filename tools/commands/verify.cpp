// `eventlite verify`: SQLite's integrity check and eventlite's own.

#include <fmt/core.h>
#include <sqlite3.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "tools/command.hpp"
#include "tools/error.hpp"
#include "tools/open_store.hpp"
#include "tools/options.hpp"
#include "tools/output.hpp"

namespace eventlite::cli {
namespace {

constexpr const char* kReadOnly = " Opens DB read-only: never writes to it.";

// The first SQLite release without the WAL-reset bug (wal.c, fixed in 3.51.3).
constexpr int kWalResetFixed = 3051003;

struct VerifyArgs {
  std::string db;
};

CLI::App* add_verify(CLI::App& app, VerifyArgs& args) {
  CLI::App* command = app.add_subcommand(
      "verify",
      std::string("Check DB: SQLite's integrity check, gap-free seqs, contiguous stream "
                  "versions, valid JSON. Prints the SQLite version, then ok, or each "
                  "problem and exit status 1. On SQLite before 3.51.3, also warns on "
                  "stderr that an application's own connection writing the file is "
                  "exposed to SQLite's WAL-reset bug unless it sets "
                  "wal_autocheckpoint=0.") +
          kReadOnly);
  add_db(command, args.db);
  return command;
}

int run_verify(const VerifyArgs& args) {
  Store store = open_for_reading(args.db);
  std::cout << "SQLite " << sqlite3_libversion() << '\n';
  if (sqlite3_libversion_number() < kWalResetFixed) {
    std::cout.flush();
    std::cerr << fmt::format(
        "eventlite: warning: SQLite {} has the WAL-reset bug fixed in 3.51.3: "
        "eventlite's own connections never checkpoint while another commits, but an "
        "application's connection that writes this file does by default; set "
        "wal_autocheckpoint=0 on it\n",
        sqlite3_libversion());
  }
  std::vector<std::string> problems = store.verify();
  if (problems.empty()) {
    std::cout << "ok\n";
    return kExitOk;
  }
  for (const std::string& problem : problems) std::cout << one_line(problem) << '\n';
  std::cout.flush();
  throw CommandError(kExitError,
                     fmt::format("{}: {} problem{} found", args.db, problems.size(),
                                 problems.size() == 1 ? "" : "s"));
}

std::string check_verify(const VerifyArgs& args) {
  return file_db_problem(args.db);
}

}  // namespace

void setup_verify(CLI::App& app, Commands& commands) {
  add_command<VerifyArgs>(app, commands, add_verify, run_verify, check_verify);
}

}  // namespace eventlite::cli
