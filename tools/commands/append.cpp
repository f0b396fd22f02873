// `eventlite append`: one event, or a --jsonl batch in one transaction; prints the seqs.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "eventlite/errors.hpp"
#include "eventlite/transaction.hpp"
#include "tools/command.hpp"
#include "tools/error.hpp"
#include "tools/input.hpp"
#include "tools/open_store.hpp"
#include "tools/options.hpp"

namespace eventlite::cli {
namespace {

struct AppendArgs {
  std::string db;
  std::string stream;
  std::string type;
  std::string data = "{}";  // JSON text, or "-": read it from stdin
  std::string expect = "any";
  std::string id;  // empty: the store makes a UUID v7
  std::string metadata = "{}";
  std::string jsonl;  // with use_jsonl: the batch file, or "-" for stdin
  bool use_jsonl = false;
};

// --expect's value: "any", "none" or a version N >= 0 in decimal; nullopt if not.
std::optional<Expected> parse_expected(std::string_view text) {
  if (text == "any") return Expected::any();
  if (text == "none") return Expected::no_stream();
  auto version = parse_decimal(text, 0, std::numeric_limits<Version>::max());
  if (!version) return std::nullopt;
  return Expected::exactly(static_cast<Version>(*version));
}

void print_seqs(const std::vector<Seq>& seqs) {
  for (Seq seq : seqs) std::cout << seq << '\n';
}

// The --jsonl batch: one transaction, so a bad line anywhere stores nothing at all.
std::vector<Seq> append_batch(Store& store, const std::vector<BatchEvent>& batch) {
  std::vector<Seq> seqs;
  seqs.reserve(batch.size());
  Transaction transaction = store.transaction();
  for (const BatchEvent& item : batch) {
    try {
      seqs.push_back(transaction.append(item.stream, item.event, item.expected));
    } catch (const VersionConflict& conflict) {
      // Only a line with "version" expects anything: say it in the line's terms.
      throw CommandError(
          kExitConflict,
          fmt::format("line {}: version conflict on stream \"{}\": \"version\":{} needs "
                      "the stream at version {}, it is at {}",
                      item.line, conflict.stream(), item.expected.version() + 1,
                      item.expected.version(), conflict.actual()));
    } catch (const Error& error) {
      throw CommandError(exit_status(error),
                         fmt::format("line {}: {}", item.line, describe(error)));
    }
  }
  transaction.commit();
  return seqs;
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

int run_append(const AppendArgs& args) {
  Store store = open_for_writing(args.db);
  if (args.use_jsonl) {
    print_seqs(append_batch(store, parse_jsonl(read_input(args.jsonl))));
    return kExitOk;
  }
  const std::string data_name = args.data == "-" ? "the data on stdin" : "DATA";
  NewEvent event;
  event.type = args.type;
  event.data = json_text(args.data == "-" ? read_input("-") : args.data, data_name);
  event.metadata = json_text(args.metadata, "--metadata");
  event.id = args.id;
  // main() has checked --expect already.
  Expected expected = parse_expected(args.expect).value_or(Expected::any());
  try {
    print_seqs({store.append(args.stream, event, expected)});
  } catch (const InvalidEvent& error) {
    // Name the argument the user wrote, not the store's field.
    const std::string& field = error.field();
    const std::string name = field == "stream"     ? "STREAM"
                             : field == "type"     ? "TYPE"
                             : field == "data"     ? data_name
                             : field == "metadata" ? "--metadata"
                             : field == "id"       ? "--id"
                                                   : field;
    throw CommandError(kExitError, fmt::format("{}: {}", name, error.reason()));
  }
  return kExitOk;
}

std::string check_append(const AppendArgs& args) {
  if (!args.use_jsonl && !parse_expected(args.expect))
    return "--expect is any, none or N";
  return file_db_problem(args.db);
}

}  // namespace

void setup_append(CLI::App& app, Commands& commands) {
  add_command<AppendArgs>(app, commands, add_append, run_append, check_append);
}

}  // namespace eventlite::cli
