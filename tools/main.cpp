// The `eventlite` command-line tool: the command line (CLI11) and the mapping of
// failures to one line on stderr and an exit status. The commands are in commands.cpp.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "eventlite/errors.hpp"
#include "tools/commands.hpp"
#include "tools/error.hpp"
#include "tools/output.hpp"

namespace eventlite::cli {
namespace {

struct Command {
  CLI::App* app;
  std::function<int()> run;
};

constexpr const char* kDbHelp = "the SQLite file, set up by `eventlite init`";
constexpr const char* kReadOnly = " Opens DB read-only: never writes to it.";

void add_db(CLI::App* command, std::string& db, const char* help = kDbHelp) {
  command->add_option("DB", db, help)->required()->type_name("");
}

CLI::App* add_init(CLI::App& app, InitArgs& args) {
  CLI::App* command = app.add_subcommand(
      "init",
      "Create DB, or add eventlite's tables to an existing SQLite database (leaving "
      "the application's own tables alone), and migrate it to this version's schema. "
      "Idempotent.");
  add_db(command, args.db, "the SQLite file; created with mode 0600 if missing");
  return command;
}

CLI::App* add_append(CLI::App& app, AppendArgs& args) {
  CLI::App* command = app.add_subcommand(
      "append",
      "Append one event to STREAM and print its seq. With --jsonl, append a batch of "
      "events in one transaction and print one seq a line.");
  add_db(command, args.db);
  CLI::Option* stream =
      command
          ->add_option("STREAM", args.stream,
                       "the stream (aggregate) the event belongs to, e.g. user-42")
          ->type_name("");
  CLI::Option* type =
      command->add_option("TYPE", args.type, "the event type, e.g. UserCreated")
          ->type_name("");
  CLI::Option* data =
      command
          ->add_option("DATA", args.data,
                       "the event data, any JSON value, stored compacted; "
                       "- reads it from stdin [default: {}]")
          ->type_name("");
  CLI::Validator expect_check(
      [](std::string& value) {
        return parse_expected(value)
                   ? std::string()
                   : "must be any, none or a number N >= 0, not " + value;
      },
      "");
  CLI::Option* expect =
      command
          ->add_option("--expect", args.expect,
                       "the version STREAM must have: any (no check), none (no events "
                       "yet) or N (exactly N events); if it does not, nothing is written "
                       "and the exit status is 3 [default: any]")
          ->type_name("any|none|N")
          ->check(expect_check);
  CLI::Option* id =
      command
          ->add_option(
              "--id", args.id,
              "the event id, its idempotency key: if the id is stored with the same "
              "content, nothing is written and its seq is printed; with other content, "
              "the append fails [default: a new UUID v7]")
          ->type_name("ID");
  CLI::Option* metadata =
      command
          ->add_option(
              "--metadata", args.metadata,
              "metadata as a JSON object, e.g. '{\"user\":\"alice\"}' [default: {}]")
          ->type_name("JSON");
  CLI::Option* jsonl = command->add_option(
      "--jsonl", args.jsonl,
      "append the events of FILE (- for stdin) instead, one JSON object a line: "
      "{\"stream\",\"type\",\"data\"[,\"id\",\"metadata\",\"version\"]}, where "
      "\"version\":N expects the stream at N-1. All lines are stored or none; an "
      "error names its line");
  jsonl->type_name("FILE");
  for (CLI::Option* single : {stream, type, data, expect, id, metadata}) {
    jsonl->excludes(single);
  }
  command->parse_complete_callback([&args, jsonl, type] {
    args.use_jsonl = jsonl->count() > 0;
    // TYPE follows STREAM: given TYPE, both are there (an empty one is the store's
    // to refuse, as in a --jsonl line).
    if (!args.use_jsonl && type->count() == 0) {
      throw CLI::ValidationError("STREAM and TYPE are required (or --jsonl FILE)");
    }
  });
  return command;
}

CLI::App* add_read(CLI::App& app, ReadArgs& args) {
  CLI::App* command = app.add_subcommand(
      "read",
      std::string("Print events in ascending seq order, one JSON envelope a line: "
                  "{\"seq\",\"id\",\"stream\",\"version\",\"type\",\"time\",\"data\","
                  "\"metadata\"}.") +
          kReadOnly);
  add_db(command, args.db);
  command
      ->add_option("--stream", args.stream,
                   "only the events of stream S (that exact name)")
      ->type_name("S");
  command
      ->add_option("--type", args.types,
                   "only events of type T; repeat for several types")
      ->type_name("T")
      ->expected(1)
      ->take_all();
  command->add_option("--from", args.from, "start at seq SEQ, inclusive [default: 1]")
      ->type_name("SEQ")
      ->check(CLI::Range(Seq{1}, std::numeric_limits<Seq>::max()));
  command->add_option("--limit", args.limit, "print at most N events")
      ->type_name("N")
      ->check(CLI::Range(std::uint64_t{1}, std::numeric_limits<std::uint64_t>::max()));
  return command;
}

CLI::App* add_streams(CLI::App& app, StreamsArgs& args) {
  CLI::App* command = app.add_subcommand(
      "streams",
      std::string("List the streams by name, each with its version (its number of "
                  "events) and the seq of its last event, as a table with a header.") +
          kReadOnly);
  add_db(command, args.db);
  command->add_flag("--json", args.json,
                    "print JSON lines {\"stream\",\"version\",\"last_seq\"} instead");
  return command;
}

CLI::App* add_verify(CLI::App& app, VerifyArgs& args) {
  CLI::App* command = app.add_subcommand(
      "verify",
      std::string("Check DB: SQLite's integrity check, gap-free seqs, contiguous stream "
                  "versions, valid JSON. Prints the SQLite version, then ok, or each "
                  "problem and exit status 1. On SQLite before 3.51.3, also warns on "
                  "stderr that several processes writing one file at once are exposed to "
                  "SQLite's WAL-reset bug.") +
          kReadOnly);
  add_db(command, args.db);
  return command;
}

// One line for a malformed command line, pointing at the help that explains it.
std::string usage_error(const CLI::App& app, const CLI::ParseError& error, int argc,
                        char** argv) {
  std::vector<CLI::App*> typed = app.get_subcommands();
  if (!typed.empty()) {
    return fmt::format("{} (see `eventlite {} --help`)", one_line(error.what()),
                       typed.front()->get_name());
  }
  if (argc > 1 && argv[1][0] != '-') {
    return fmt::format("unknown command \"{}\" (see `eventlite --help`)",
                       one_line(argv[1]));
  }
  return fmt::format("{} (see `eventlite --help`)", one_line(error.what()));
}

int run(int argc, char** argv) {
  CLI::App app(
      "Inspect and append to an eventlite event store: the events of an "
      "application, kept in a SQLite file it owns. DB is that file, as in "
      "`sqlite3 DB`.",
      "eventlite");
  app.require_subcommand(1);
  app.set_version_flag("--version", EVENTLITE_VERSION);
  app.footer(
      "Exit status: 0 success, 1 error, 2 usage error, 3 version conflict.\n"
      "Run `eventlite COMMAND --help` for the options of a command.");

  InitArgs init;
  AppendArgs append;
  ReadArgs read;
  StreamsArgs streams;
  VerifyArgs verify;
  const std::vector<Command> commands = {
      {add_init(app, init), [&] { return run_init(init); }},
      {add_append(app, append), [&] { return run_append(append); }},
      {add_read(app, read), [&] { return run_read(read); }},
      {add_streams(app, streams), [&] { return run_streams(streams); }},
      {add_verify(app, verify), [&] { return run_verify(verify); }},
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version arrive as "errors" that succeed.
    if (error.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      return app.exit(error);
    }
    std::cerr << "eventlite: " << usage_error(app, error, argc, argv) << '\n';
    return kExitUsage;
  }

  int status = kExitOk;
  try {
    for (const Command& command : commands) {
      if (command.app->parsed()) status = command.run();
    }
  } catch (const CommandError& error) {
    status = error.exit_status();
    std::cerr << "eventlite: " << one_line(error.what()) << '\n';
  } catch (const Error& error) {
    status = exit_status(error);
    std::cerr << "eventlite: " << one_line(describe(error)) << '\n';
  } catch (const std::exception& error) {
    status = kExitError;
    std::cerr << "eventlite: " << one_line(error.what()) << '\n';
  }
  if (!std::cout.flush()) {
    std::cerr << "eventlite: cannot write to stdout\n";
    return kExitError;
  }
  return status;
}

}  // namespace
}  // namespace eventlite::cli

int main(int argc, char** argv) {
  return eventlite::cli::run(argc, argv);
}
