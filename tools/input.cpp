#include "tools/input.hpp"

#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "tools/error.hpp"

namespace eventlite::cli {
namespace {

bool is_blank(std::string_view text) {
  return text.find_first_not_of(" \t\r") == std::string_view::npos;
}

// A line's event, or CommandError in the line's terms.
BatchEvent parse_line(std::string_view text, std::size_t line) {
  try {
    DecodedEvent decoded = decode_envelope(text);
    BatchEvent result;
    result.line = line;
    result.stream = std::move(decoded.stream);
    result.expected = decoded.expected();
    result.event = std::move(decoded.event);
    result.event.time.clear();  // an appended event gets the commit time
    return result;
  } catch (const InvalidEvent& error) {
    // The line itself (malformed, a NUL byte) or one of its keys.
    std::string reason = error.field() == "envelope"
                             ? error.reason()
                             : fmt::format("\"{}\": {}", error.field(), error.reason());
    throw CommandError(kExitError, fmt::format("line {}: {}", line, reason));
  }
}

}  // namespace

std::string read_input(const std::string& path) {
  std::ostringstream content;
  if (path == "-") {
    struct stat status {};
    if (::fstat(STDIN_FILENO, &status) == 0 && S_ISDIR(status.st_mode))
      throw CommandError(kExitError, "stdin is a directory, not a file");
    content << std::cin.rdbuf();
    if (std::cin.bad()) throw CommandError(kExitError, "cannot read stdin");
    return std::move(content).str();
  }
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored))
    throw CommandError(kExitError, fmt::format("{}: is a directory, not a file", path));
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw CommandError(kExitError,
                       fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  }
  content << file.rdbuf();
  if (file.bad()) throw CommandError(kExitError, fmt::format("cannot read {}", path));
  return std::move(content).str();
}

std::string json_text(std::string_view text, std::string_view what) {
  if (auto nul = text.find('\0'); nul != std::string_view::npos) {
    throw CommandError(kExitError,
                       fmt::format("{} contains a NUL byte (at byte {})", what, nul + 1));
  }
  constexpr std::string_view kSpace = " \t\r\n";
  const auto first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return std::string(text.substr(first, text.find_last_not_of(kSpace) - first + 1));
}

std::vector<BatchEvent> parse_jsonl(std::string_view text) {
  std::vector<BatchEvent> events;
  std::size_t line = 0;
  while (!text.empty()) {
    ++line;
    auto end = text.find('\n');
    std::string_view current = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (!is_blank(current)) events.push_back(parse_line(current, line));
  }
  return events;
}

}  // namespace eventlite::cli
