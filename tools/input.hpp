#pragma once

// Events as the command line gives them: JSON text in an argument, a file or stdin,
// and batches in JSON lines (`eventlite append DB --jsonl FILE`), decoded with the
// library's envelope codec. The text of data and metadata is kept byte for byte:
// the store checks it, and stores it as given.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "eventlite/envelope.hpp"
#include "eventlite/event.hpp"

namespace eventlite::cli {

// The whole content of `path`, or of stdin if `path` is "-". Throws CommandError if
// it cannot be read or is a directory.
std::string read_input(const std::string& path);

// `text` as an event's JSON text: as given, without the white space around it.
// Throws CommandError, naming `what`, if it holds a NUL byte (nothing after one
// would be stored). Whether it is valid JSON is the store's to check.
std::string json_text(std::string_view text, std::string_view what);

// One event of a JSON-lines batch.
struct BatchEvent {
  std::size_t line = 0;  // 1-based line of the input it came from
  std::string stream;
  NewEvent event;
  Expected expected = Expected::any();
};

// Decodes one event per line with decode_envelope(): {"stream","type","data"[,"id",
// "metadata","version"]}; "version" N means the stream must be at N-1 when the event
// is appended. "seq" and "time" are accepted and ignored (the store assigns them to
// an appended event), so `eventlite read` output is valid input; any other key is
// refused. Blank lines are skipped. Throws CommandError naming the line of the first
// malformed one.
std::vector<BatchEvent> parse_jsonl(std::string_view text);

}  // namespace eventlite::cli
