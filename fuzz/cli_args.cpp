// Fuzzes the `eventlite` tool's command line (tools/command_line.hpp): the input is
// the arguments after the program's name, split at NUL bytes (an argument cannot
// hold one), parsed and never run, so no file, database or server is touched.
//
// Parsing must never crash, throw or leak. It ends in one of three ways: help or
// version text on its output stream (status 0, nothing on its error stream); a usage
// error, one line "eventlite: ..." on its error stream without control characters
// (status 2, nothing on its output stream); or a command with its arguments, which
// then hold only what the options' checks let through (DB not an SQLite URI nor
// :memory:, numbers in their ranges, names not empty where empty would mean "all").

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_support.hpp"
#include "tools/command_line.hpp"
#include "tools/error.hpp"

using namespace eventlite;
using eventlite::fuzz::require;

namespace {

// More than any command takes: longer lists only repeat what shorter ones test.
constexpr std::size_t kMaxArguments = 64;

bool file_db(const std::string& db) {
  return db.rfind("file:", 0) != 0 && db != ":memory:";
}

bool non_empty_all(const std::vector<std::string>& names) {
  return std::none_of(names.begin(), names.end(),
                      [](const std::string& n) { return n.empty(); });
}

void check_filters(const cli::ReadFilters& f) {
  require(f.from >= 1 && f.to >= 1, "--from and --to are seqs, 1 or more");
  require(non_empty_all(f.types), "--type is never empty");
}

void check_run(const cli::RunOptions& run) {
  require(run.retry_for >= 1 && run.retry_for <= 86400, "--retry-for is in range");
  require(run.lease_time >= 1 && run.lease_time <= 3600, "--lease-time is in range");
}

// What the options' checks promise about the arguments of `command`.
void check_arguments(const std::string& command, const cli::Arguments& a) {
  if (command == "init") {
    require(file_db(a.init.db), "init: DB names a file");
  } else if (command == "append") {
    require(file_db(a.append.db), "append: DB names a file");
    require(a.append.use_jsonl || cli::parse_expected(a.append.expect).has_value(),
            "append: --expect is any, none or N");
  } else if (command == "read") {
    require(file_db(a.read.db), "read: DB names a file");
    check_filters(a.read.filters);
  } else if (command == "streams") {
    require(file_db(a.streams.db), "streams: DB names a file");
  } else if (command == "verify") {
    require(file_db(a.verify.db), "verify: DB names a file");
  } else if (command == "status") {
    require(file_db(a.status.db), "status: DB names a file");
  } else if (command == "dead list") {
    require(file_db(a.dead_list.db), "dead list: DB names a file");
  } else if (command == "dead retry" || command == "dead discard") {
    const cli::DeadChangeArgs& d =
        command == "dead retry" ? a.dead_retry : a.dead_discard;
    require(file_db(d.db), "dead: DB names a file");
    require(!d.subscription.empty(), "dead: --subscription is given");
    require(d.all != !d.seqs.empty(), "dead: --seq or --all, not both");
    require(std::all_of(d.seqs.begin(), d.seqs.end(), [](Seq s) { return s >= 1; }),
            "dead: seqs are 1 or more");
  } else if (command == "rewind") {
    require(file_db(a.rewind.db), "rewind: DB names a file");
    require(!a.rewind.subscription.empty() && a.rewind.from >= 1,
            "rewind: NAME and --from are given");
  } else if (command == "export") {
    require(file_db(a.export_args.db), "export: DB names a file");
    check_filters(a.export_args.filters);
  } else if (command == "import") {
    require(file_db(a.import_args.db), "import: DB names a file");
  } else if (command == "replay") {
    require(file_db(a.replay.db), "replay: DB names a file");
    require(!a.replay.exec.empty(), "replay: --exec is given");
    check_filters(a.replay.filters);
  } else if (command == "forward") {
    const cli::ForwardArgs& f = a.forward;
    require(file_db(f.db), "forward: DB names a file");
    require(f.redis.empty() != f.nats.empty(), "forward: --redis or --nats, one");
    require(f.mode == "stream" || f.mode == "pubsub", "forward: --mode is known");
    require(f.format == "envelope" || f.format == "cloudevents",
            "forward: --format is known");
    require(!f.maxlen || *f.maxlen >= 1, "forward: --maxlen is 1 or more");
    check_run(f.run);
  } else if (command == "bridge") {
    const cli::BridgeArgs& b = a.bridge;
    require(file_db(b.db), "bridge: DB names a file");
    require(b.redis.empty() != b.nats.empty(), "bridge: --redis or --nats, one");
    check_run(b.run);
  } else {
    require(false, "parsing found a command the tool has");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  std::vector<std::string> words = {"eventlite"};
  std::string_view rest = fuzz::as_text(bytes, size);
  while (!rest.empty() && words.size() <= kMaxArguments) {
    const auto end = rest.find('\0');
    words.emplace_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
  }
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);

  cli::CommandLine command_line;
  std::ostringstream out, err;
  const std::optional<int> status =
      command_line.parse(static_cast<int>(words.size()), argv.data(), out, err);
  if (!status) {
    require(out.str().empty() && err.str().empty(), "a parsed command prints nothing");
    check_arguments(command_line.command(), command_line.arguments());
  } else if (*status == cli::kExitOk) {
    require(!out.str().empty() && err.str().empty(), "help and version go to stdout");
  } else {
    require(*status == cli::kExitUsage, "a malformed command line is a usage error (2)");
    require(out.str().empty(), "a usage error prints nothing on stdout");
    const std::string message = err.str();
    require(message.starts_with("eventlite: ") && message.ends_with('\n'),
            "a usage error is a line starting with eventlite:");
    require(std::none_of(
                message.begin(), message.end() - 1,
                [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; }),
            "a usage error is one line, without control characters");
  }
  return 0;
}
