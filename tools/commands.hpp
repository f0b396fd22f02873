#pragma once

// The commands of the eventlite tool, each with its arguments as the command line
// gives them. Each run_* prints its results on stdout and returns the exit status;
// it throws eventlite::Error or CommandError on failure, having changed nothing.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eventlite/event.hpp"
#include "eventlite/store.hpp"

#include "tools/options.hpp"

namespace eventlite::cli {

struct InitArgs {
  std::string db;
  std::optional<std::string> name;  // --name: names (or renames) the store
};

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

struct ReadArgs {
  std::string db;
  ReadFilters filters;
  std::uint64_t limit = 0;  // 0: no limit
  bool follow = false;
};

struct StreamsArgs {
  std::string db;
  bool json = false;
};

struct VerifyArgs {
  std::string db;
};

struct StatusArgs {
  std::string db;
  bool json = false;
};

struct DeadListArgs {
  std::string db;
  std::string subscription;  // empty: every subscription
  bool json = false;
};

// `dead retry` and `dead discard`: the named seqs, or all with `all`.
struct DeadChangeArgs {
  std::string db;
  std::string subscription;
  std::vector<Seq> seqs;
  bool all = false;
};

struct RewindArgs {
  std::string db;
  std::string subscription;
  Seq from = 1;
};

// Creates `db` or adds eventlite's tables to it; idempotent. If it fails after
// creating the file, it removes the file again.
// The store in DB for a command that writes; a missing DB is a CommandError that
// says how to create it.
Store open_for_writing(const std::string& db);
// The store in DB for a command that only reads: opened read-only, never migrated.
Store open_for_reading(const std::string& db);

int run_init(const InitArgs& args);
// Appends one event, or the --jsonl batch in one transaction; prints the seqs.
int run_append(const AppendArgs& args);
// Prints the matching events as envelopes, one a line, in seq order.
int run_read(const ReadArgs& args);
// Prints every stream with its version and last seq.
int run_streams(const StreamsArgs& args);
// Prints the SQLite version, then "ok" or each problem the store finds (status 1).
int run_verify(const VerifyArgs& args);

// Prints the head and each subscription's position, lag, owed and dead deliveries and
// lease.
int run_status(const StatusArgs& args);
// Prints the dead letters, by subscription and seq.
int run_dead_list(const DeadListArgs& args);
// Makes dead letters due again / deletes them; prints how many changed.
int run_dead_retry(const DeadChangeArgs& args);
int run_dead_discard(const DeadChangeArgs& args);
// Moves a subscription so that its next delivery is the first event at or after
// --from; prints where it continues.
int run_rewind(const RewindArgs& args);

// --expect's value: "any", "none" or a version N >= 0 in decimal; nullopt if not.
std::optional<Expected> parse_expected(std::string_view text);

}  // namespace eventlite::cli
