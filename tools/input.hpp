#pragma once

// Events as the command line gives them: JSON text in an argument, a file or stdin,
// and batches in JSON lines (`eventlite append DB --jsonl FILE`).

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "eventlite/event.hpp"

namespace eventlite::cli {

// The whole content of `path`, or of stdin if `path` is "-". Throws CommandError if
// it cannot be read.
std::string read_input(const std::string& path);

// `text` as compact JSON (whitespace dropped, key order kept), so that stored data
// and envelopes stay on one line. Throws CommandError, naming `what`, if `text` is
// not valid JSON.
std::string compact_json(std::string_view text, std::string_view what);

// One event of a JSON-lines batch.
struct BatchEvent {
  std::size_t line = 0;  // 1-based line of the input it came from
  std::string stream;
  NewEvent event;
  Expected expected = Expected::any();
};

// Parses one event per line: {"stream","type","data"[,"id","metadata","version"]};
// "version" N means the stream must be at N-1 when the event is appended. "seq" and
// "time" are ignored (the store assigns them), so `eventlite read` output is valid
// input; any other key is refused. Blank lines are skipped. Throws CommandError
// naming the line of the first malformed one.
std::vector<BatchEvent> parse_jsonl(std::string_view text);

}  // namespace eventlite::cli
