// `eventlite dead list|retry|discard`: the dead letters of subscriptions.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "eventlite/subscriptions.hpp"
#include "tools/command.hpp"
#include "tools/error.hpp"
#include "tools/open_store.hpp"
#include "tools/options.hpp"
#include "tools/output.hpp"

namespace eventlite::cli {
namespace {

constexpr const char* kReadOnly = " Opens DB read-only: never writes to it.";

// The largest seq, for ranges of numeric options.
constexpr auto kMaxSeq = static_cast<std::uint64_t>(std::numeric_limits<Seq>::max());

struct DeadListArgs {
  std::string db;
  std::string subscription;  // empty: every subscription
  bool json = false;
};

struct DeadChangeArgs {
  std::string db;
  std::string subscription;
  std::vector<Seq> seqs;
  bool all = false;
};

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

int run_dead_list(const DeadListArgs& args) {
  Store store = open_for_reading(args.db);
  require_processor_schema(store, args.db);
  const std::vector<DeadLetter> dead = dead_letters(store, args.subscription);
  if (args.json) {
    for (const DeadLetter& d : dead) {
      print_json_line(std::cout, {{"subscription", d.subscription},
                                  {"seq", d.seq},
                                  {"stream", d.stream},
                                  {"type", d.type},
                                  {"attempts", d.attempts},
                                  {"last_error", d.last_error},
                                  {"updated", d.updated}});
    }
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const DeadLetter& d : dead) {
    rows.push_back({d.subscription, std::to_string(d.seq), d.stream, d.type,
                    std::to_string(d.attempts), d.updated, d.last_error});
  }
  print_table(std::cout,
              {{"SUBSCRIPTION", Align::left},
               {"SEQ", Align::right},
               {"STREAM", Align::left},
               {"TYPE", Align::left},
               {"ATTEMPTS", Align::right},
               {"UPDATED", Align::left},
               {"LAST_ERROR", Align::left}},
              rows);
  return kExitOk;
}

int run_dead_retry(const DeadChangeArgs& args) {
  Store store = open_for_writing(args.db);
  // main() has checked that exactly one of --seq and --all is there.
  const std::size_t changed = retry_dead_letters(store, args.subscription, args.seqs);
  std::cout << "retried " << plural(changed, "dead letter", "dead letters") << '\n';
  return kExitOk;
}

int run_dead_discard(const DeadChangeArgs& args) {
  Store store = open_for_writing(args.db);
  const std::size_t changed = discard_dead_letters(store, args.subscription, args.seqs);
  std::cout << "discarded " << plural(changed, "dead letter", "dead letters") << '\n';
  return kExitOk;
}

std::string check_dead_list(const DeadListArgs& args) {
  return file_db_problem(args.db);
}

std::string check_dead_change(const DeadChangeArgs& args) {
  if (args.subscription.empty()) return "--subscription is given";
  if (args.all == !args.seqs.empty()) return "--seq or --all, not both";
  for (const Seq seq : args.seqs)
    if (seq < 1) return "seqs are 1 or more";
  return file_db_problem(args.db);
}

}  // namespace

void setup_dead(CLI::App& app, Commands& commands) {
  CLI::App& dead = *add_dead(app);
  auto list = std::make_shared<DeadListArgs>();
  commands.push_back({add_dead_list(dead, *list), [list] { return run_dead_list(*list); },
                      [list] { return check_dead_list(*list); }});
  auto retry = std::make_shared<DeadChangeArgs>();
  commands.push_back(
      {add_dead_change(dead, *retry, "retry",
                       "Make dead letters of a subscription due again at once, their "
                       "attempts starting over, and print how many changed."),
       [retry] { return run_dead_retry(*retry); },
       [retry] { return check_dead_change(*retry); }});
  auto discard = std::make_shared<DeadChangeArgs>();
  commands.push_back(
      {add_dead_change(dead, *discard, "discard",
                       "Delete dead letters of a subscription (their events stay in "
                       "the log) and print how many were deleted."),
       [discard] { return run_dead_discard(*discard); },
       [discard] { return check_dead_change(*discard); }});
}

}  // namespace eventlite::cli
