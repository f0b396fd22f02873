// Fuzzes the `eventlite` tool's command line (tools/command_line.hpp): the input is
// the arguments after the program's name, split at NUL bytes (an argument cannot
// hold one), parsed and never run, so no file, database or server is touched.
//
// Parsing must never crash, throw or leak. It ends in one of three ways: help or
// version text on its output stream (status 0, nothing on its error stream); a usage
// error, one line "eventlite: ..." on its error stream without control characters
// (status 2, nothing on its output stream); or a command with its arguments, which
// then hold only what the options' checks let through (DB not an SQLite URI nor
// :memory:, numbers in their ranges, names not empty where empty would mean "all"):
// each command says what that is itself (Command::check, tools/command.hpp), so a
// new command needs no line here.

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
    // Each command's own check says what its options promise (tools/command.hpp).
    const std::string broken = command_line.check();
    if (!broken.empty()) require(false, command_line.command() + ": " + broken);
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
