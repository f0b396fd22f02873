// The `eventlite` command-line tool's command line (tools/command_line.hpp): the
// commands and options (CLI11) and the mapping of failures to one line on stderr and
// an exit status. The commands are in commands.cpp and the files it names.

#include "tools/command_line.hpp"

#include <fmt/core.h>

#include <cstdint>
#include <exception>
#include <iostream>
#include <limits>

#include "eventlite/errors.hpp"
#include "tools/error.hpp"
#include "tools/options.hpp"
#include "tools/output.hpp"

namespace eventlite::cli {
namespace {

constexpr const char* kReadOnly = " Opens DB read-only: never writes to it.";

// The largest seq or version, for ranges of numeric options.
constexpr auto kMaxSeq = static_cast<std::uint64_t>(std::numeric_limits<Seq>::max());

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
                       "the event data, any JSON value, stored as given (without the "
                       "white space around it); - reads it from stdin [default: {}]")
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
          ->add_option("--metadata", args.metadata,
                       "metadata as a JSON object, e.g. '{\"user\":\"alice\"}', stored "
                       "as given [default: {}]")
          ->type_name("JSON");
  CLI::Option* jsonl = command->add_option(
      "--jsonl", args.jsonl,
      "append the events of FILE (- for stdin) instead, one JSON object a line: "
      "{\"stream\",\"type\",\"data\"[,\"id\",\"metadata\",\"version\"]}, where "
      "\"version\":N expects the stream at N-1; \"seq\" and \"time\" (in `read` "
      "output) are ignored. All lines are stored or none; an error names its line");
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
                  "stderr that an application's own connection writing the file is "
                  "exposed to SQLite's WAL-reset bug unless it sets "
                  "wal_autocheckpoint=0.") +
          kReadOnly);
  add_db(command, args.db);
  return command;
}

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

CLI::App* add_dead(CLI::App& app) {
  CLI::App* command = app.add_subcommand(
      "dead",
      "List, retry or discard dead letters: deliveries to a subscription whose "
      "attempts ran out.");
  command->require_subcommand(1);
  return command;
}

CLI::App* add_dead_list(CLI::App& dead, DeadListArgs& args) {
  CLI::App* command = dead.add_subcommand(
      "list",
      std::string("Print the dead letters by subscription and seq: subscription, seq, "
                  "stream, type, attempts, when it was parked and the last error, as a "
                  "table with a header.") +
          kReadOnly);
  add_db(command, args.db);
  command
      ->add_option("--subscription", args.subscription,
                   "only the dead letters of subscription NAME")
      ->type_name("NAME")
      ->check(non_empty());
  command->add_flag("--json", args.json,
                    "print JSON lines {\"subscription\",\"seq\",\"stream\",\"type\","
                    "\"attempts\",\"last_error\",\"updated\"} instead");
  return command;
}

CLI::App* add_dead_change(CLI::App& dead, DeadChangeArgs& args, const char* name,
                          const char* description) {
  CLI::App* command = dead.add_subcommand(name, description);
  add_db(command, args.db);
  command
      ->add_option("--subscription", args.subscription,
                   "the subscription whose dead letters these are")
      ->type_name("NAME")
      ->required()
      ->check(non_empty());
  CLI::Option* seq =
      command
          ->add_option("--seq", args.seqs,
                       "the seqs of the dead letters; several may follow one --seq, "
                       "or repeat it. Seqs that are not dead letters of NAME are left "
                       "alone and not counted")
          ->type_name("N")
          ->transform(decimal(1, kMaxSeq));
  CLI::Option* all =
      command->add_flag("--all", args.all, "every dead letter of the subscription");
  seq->excludes(all);
  // The flag's value, not its count: --all=false is given but means not all, and
  // no seqs would mean every dead letter of the subscription.
  command->parse_complete_callback([&args, seq] {
    if (seq->count() == 0 && !args.all) {
      throw CLI::ValidationError("--seq N... or --all is required");
    }
  });
  return command;
}

CLI::App* add_rewind(CLI::App& app, RewindArgs& args) {
  CLI::App* command = app.add_subcommand(
      "rewind",
      "Move subscription NAME so that its next delivery is the first event at or "
      "after --from (--from 1: everything again). Its deliveries owed or dead at or "
      "after that seq are dropped: they are delivered again from the log. A processor "
      "dispatching NAME continues from there.");
  add_db(command, args.db);
  command->add_option("NAME", args.subscription, "the subscription")
      ->required()
      ->type_name("")
      ->check(non_empty());
  command->add_option("--from", args.from, "the seq of the next delivery, 1 or more")
      ->type_name("SEQ")
      ->required()
      ->transform(decimal(1, kMaxSeq));
  return command;
}

// The command's words, e.g. "dead retry", for pointing at its help.
std::string command_path(const CLI::App& app) {
  std::string path;
  for (const CLI::App* command = &app;;) {
    std::vector<CLI::App*> typed = command->get_subcommands();
    if (typed.empty()) return path;
    command = typed.front();
    path += (path.empty() ? "" : " ") + command->get_name();
  }
}

// One line for a malformed command line, pointing at the help that explains it. It
// may quote what was typed, a URL misplaced on the line among it: its password is
// hidden.
std::string usage_error(const CLI::App& app, const CLI::ParseError& error, int argc,
                        char** argv) {
  if (!app.get_subcommands().empty()) {
    return fmt::format("{} (see `eventlite {} --help`)",
                       hide_url_passwords(one_line(error.what())), command_path(app));
  }
  if (argc > 1 && argv[1][0] != '-') {
    return fmt::format("unknown command \"{}\" (see `eventlite --help`)",
                       hide_url_passwords(one_line(argv[1])));
  }
  return fmt::format("{} (see `eventlite --help`)",
                     hide_url_passwords(one_line(error.what())));
}

}  // namespace

CommandLine::CommandLine()
    : app_(
          "Inspect and append to an eventlite event store: the events of an "
          "application, kept in a SQLite file it owns. DB is that file, as in "
          "`sqlite3 DB`.",
          "eventlite") {
  app_.require_subcommand(1);
  app_.set_version_flag("--version", EVENTLITE_VERSION);
  app_.footer(
      "Exit status: 0 success, 1 error, 2 usage error, 3 version conflict.\n"
      "Run `eventlite COMMAND --help` for the options of a command.");

  Arguments& a = args_;
  CLI::App* dead = nullptr;  // made in its place in the list, for --help's order
  commands_ = {
      {add_init(app_, a.init), [&a] { return run_init(a.init); }},
      {add_append(app_, a.append), [&a] { return run_append(a.append); }},
      {add_read(app_, a.read), [&a] { return run_read(a.read); }},
      {add_streams(app_, a.streams), [&a] { return run_streams(a.streams); }},
      {add_verify(app_, a.verify), [&a] { return run_verify(a.verify); }},
      {add_status(app_, a.status), [&a] { return run_status(a.status); }},
      {add_dead_list(*(dead = add_dead(app_)), a.dead_list),
       [&a] { return run_dead_list(a.dead_list); }},
      {add_dead_change(*dead, a.dead_retry, "retry",
                       "Make dead letters of a subscription due again at once, their "
                       "attempts starting over, and print how many changed."),
       [&a] { return run_dead_retry(a.dead_retry); }},
      {add_dead_change(*dead, a.dead_discard, "discard",
                       "Delete dead letters of a subscription (their events stay in "
                       "the log) and print how many were deleted."),
       [&a] { return run_dead_discard(a.dead_discard); }},
      {add_rewind(app_, a.rewind), [&a] { return run_rewind(a.rewind); }},
      {add_export(app_, a.export_args), [&a] { return run_export(a.export_args); }},
      {add_import(app_, a.import_args), [&a] { return run_import(a.import_args); }},
      {add_replay(app_, a.replay), [&a] { return run_replay(a.replay); }},
      {add_forward(app_, a.forward), [&a] { return run_forward(a.forward); }},
      {add_bridge(app_, a.bridge), [&a] { return run_bridge(a.bridge); }},
  };
}

std::optional<int> CommandLine::parse(int argc, char** argv, std::ostream& out,
                                      std::ostream& err) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version arrive as "errors" that succeed.
    if (error.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      return app_.exit(error, out, err);
    }
    err << "eventlite: " << usage_error(app_, error, argc, argv) << '\n';
    return kExitUsage;
  }
  return std::nullopt;
}

std::string CommandLine::command() const {
  return command_path(app_);
}

int CommandLine::run() {
  int status = kExitOk;
  try {
    for (const Command& command : commands_) {
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

}  // namespace eventlite::cli
