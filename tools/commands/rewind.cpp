// `eventlite rewind`: moves a subscription so that it delivers again from a seq.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "eventlite/subscriptions.hpp"
#include "tools/command.hpp"
#include "tools/error.hpp"
#include "tools/open_store.hpp"
#include "tools/options.hpp"

namespace eventlite::cli {
namespace {

// The largest seq, for ranges of numeric options.
constexpr auto kMaxSeq = static_cast<std::uint64_t>(std::numeric_limits<Seq>::max());

struct RewindArgs {
  std::string db;
  std::string subscription;
  Seq from = 1;
};

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

int run_rewind(const RewindArgs& args) {
  Store store = open_for_writing(args.db);
  const RewindReport r = rewind(store, args.subscription, args.from);
  std::cout << fmt::format("{}: next delivery from seq {}\n", args.subscription,
                           args.from);
  // Seqs, not events: a subscription with filters gets only its own of them.
  if (r.position_before > r.position_after)
    std::cout << fmt::format("  position {} -> {}: seqs {} to {} are delivered again\n",
                             r.position_before, r.position_after, r.position_after + 1,
                             r.position_before);
  else if (r.position_before < r.position_after)
    std::cout << fmt::format("  position {} -> {}: seqs {} to {} are skipped\n",
                             r.position_before, r.position_after, r.position_before + 1,
                             r.position_after);
  if (r.owed_dropped + r.dead_dropped > 0)
    std::cout << fmt::format("  dropped {} and {}, delivered again from the log\n",
                             plural(r.dead_dropped, "dead letter", "dead letters"),
                             plural(r.owed_dropped, "owed delivery", "owed deliveries"));
  if (r.ended_lease_of)
    std::cout << fmt::format(
        "  ended the lease of {} (its uncommitted work cannot land)\n",
        *r.ended_lease_of);
  return kExitOk;
}

std::string check_rewind(const RewindArgs& args) {
  if (args.subscription.empty() || args.from < 1) return "NAME and --from are given";
  return file_db_problem(args.db);
}

}  // namespace

void setup_rewind(CLI::App& app, Commands& commands) {
  add_command<RewindArgs>(app, commands, add_rewind, run_rewind, check_rewind);
}

}  // namespace eventlite::cli
