#pragma once

// How the eventlite tool reads its options' values: one way for every number
// (decimal digits only, range-checked), names that must not be empty, and DB paths
// that SQLite would read as something other than a file; and how its long-running
// commands end.

#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eventlite/read.hpp"
#include "eventlite/store.hpp"

namespace spdlog {
class logger;
}

namespace eventlite::cli {

// The number that `text` writes in decimal digits (leading zeros allowed: "010" is
// ten), if it is one and lies in [min, max]. No sign, no white space, no 0x or octal.
std::optional<std::uint64_t> parse_decimal(std::string_view text, std::uint64_t min,
                                           std::uint64_t max);

// A CLI11 transform for a numeric option: refuses (a usage error naming the option)
// anything parse_decimal() refuses, and hands CLI11 the number in canonical decimal,
// so that its own conversion (which reads 010 as octal) never sees anything else.
CLI::Validator decimal(std::uint64_t min, std::uint64_t max);

// A CLI11 check that refuses an empty value: an empty name would mean "all".
CLI::Validator non_empty();

// A CLI11 check for DB: refuses a name that SQLite would not open as the file it
// names. A name starting with "file:" is an SQLite URI (another file, URI options
// honoured), ":memory:" a database gone when the command ends; "./file:x" and
// "./:memory:" name files.
CLI::Validator db_name();

// Adds the positional DB every command takes.
inline constexpr const char* kDbHelp = "the SQLite file, set up by `eventlite init`";
void add_db(CLI::App* command, std::string& db, const char* help = kDbHelp);

// Which events a command reads (read, export, replay): --stream, --type..., --from,
// --to, as ReadOptions has them.
struct ReadFilters {
  std::string stream;  // empty: every stream
  std::vector<std::string> types;
  std::int64_t from = 1;
  std::int64_t to = std::numeric_limits<std::int64_t>::max();
};
void add_read_filters(CLI::App* command, ReadFilters& filters);
ReadOptions read_options(const ReadFilters& filters);
// The span of seqs `filters` covers in `store` (for a progress line's time left):
// from --from to the lower of --to and the head; 0 when empty.
std::uint64_t seq_span(const Store& store, const ReadFilters& filters);
// For checks (tools/command.hpp): "" when --from, --to and --type hold what their
// options let through, else what does not.
std::string filters_problem(const ReadFilters& filters);

// How a long-running command (forward, bridge) ends, as its options set it.
struct RunOptions {
  bool until_idle = false;
  std::uint64_t retry_for = 20;   // seconds a broker may stay unreachable (until_idle)
  std::uint64_t lease_time = 15;  // seconds another process takes over after this dies
};

// For checks: "" when --retry-for and --lease-time are in their ranges, else which is
// not.
std::string run_problem(const RunOptions& run);

// Adds --until-idle (described by `until_idle_help`), --retry-for and --lease-time.
void add_run_options(CLI::App* command, RunOptions& run,
                     const std::string& until_idle_help);

// With --until-idle the command says what happened in one line, so the library logs
// nothing (a logger that drops all); null otherwise (the library's default: warnings
// on stderr).
std::shared_ptr<spdlog::logger> quiet_logger(const RunOptions& run);

// Blocks SIGINT and SIGTERM in this thread (and the threads it starts after), so
// that sigwait() on the returned set receives them.
sigset_t block_stop_signals();

}  // namespace eventlite::cli
