// Fuzzes JSON-lines import (include/eventlite/transfer.hpp) into an empty in-memory
// store, and the same bytes as a batch of `eventlite append --jsonl` (parse_jsonl in
// tools/input.hpp). The input is the file, lines and all.
//
// import_envelopes() must import or throw ImportError naming a line of the input,
// nothing else. An import that throws has stored nothing. One that returns has stored
// what the lines gave, in their order: each new id once, at the next seq, with its
// stream, type, data and metadata byte for byte, and its version and time when the
// line gave them; its counts add up; importing the same bytes again adds nothing; and
// exporting the store and importing that into another store gives the same events.
// parse_jsonl() must return one event per non-blank line or throw CommandError, and
// take every input that import takes.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/transfer.hpp"
#include "fuzz/fuzz_support.hpp"
#include "store/time_text.hpp"
#include "tools/error.hpp"
#include "tools/input.hpp"

using namespace eventlite;
using eventlite::fuzz::require;

namespace {

// The input's lines as import reads them (std::getline: split at '\n', no empty
// last line after a final '\n'), blank ones left out.
std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    const auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos)
      lines.emplace_back(line);
  }
  return lines;
}

std::vector<Event> events_of(const Store& store) {
  std::vector<Event> events;
  for (const Event& e : store.read_all()) events.push_back(e);
  return events;
}

// A store without events: the one the input before left empty (an import that
// throws stores nothing, and that is checked), else a fresh one. Opening a store
// costs more than most runs.
Store& empty_store() {
  static std::optional<Store> store;
  if (!store || store->head() != 0) store.emplace(fuzz::quiet_store());
  return *store;
}

void check_parse_jsonl(std::string_view text, std::size_t lines, bool imported) {
  try {
    const auto batch = cli::parse_jsonl(text);
    require(batch.size() == lines, "parse_jsonl gives one event per non-blank line");
  } catch (const cli::CommandError& e) {
    require(e.exit_status() == cli::kExitError, "a malformed batch is an error (1)");
    require(!imported, "parse_jsonl takes every line that import takes");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string text(fuzz::as_text(bytes, size));
  const std::vector<std::string> lines = lines_of(text);
  Store& store = empty_store();

  ImportResult result;
  {
    std::istringstream in(text);
    try {
      result = import_envelopes(store, in);
    } catch (const ImportError& e) {
      require(e.line() >= 1, "an ImportError names a line of the input");
      require(store.head() == 0 && events_of(store).empty(),
              "an import that throws stores nothing");
      check_parse_jsonl(text, lines.size(), false);
      return 0;
    }
  }
  check_parse_jsonl(text, lines.size(), true);
  require(result.lines == lines.size(), "an import counts its non-blank lines");
  require(result.appended + result.already_stored == result.lines,
          "every line is appended or found stored");

  const std::vector<Event> events = events_of(store);
  require(
      events.size() == result.appended && store.head() == static_cast<Seq>(events.size()),
      "an import stores the events it counts as appended");
  std::map<std::string, const Event*> by_id;
  std::map<std::string, Version> versions;  // each stream's, as the events go
  for (std::size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    require(e.seq == static_cast<Seq>(i + 1), "seqs are gap-free from 1");
    require(e.version == ++versions[e.stream], "versions are contiguous from 1");
    require(by_id.emplace(e.id, &e).second, "each id is stored once");
  }

  // Line by line: the first line of an id made its event, the next ones found it.
  std::set<std::string> seen;
  Seq next = 1;
  for (const std::string& line : lines) {
    const DecodedEvent d = decode_envelope(line);  // import took it: it decodes
    const auto found = by_id.find(d.event.id);
    require(found != by_id.end(), "every imported line's id is stored");
    const Event& e = *found->second;
    require(!d.version || e.version == *d.version, "a line's version is kept");
    if (!seen.insert(d.event.id).second) continue;
    require(e.seq == next++, "events are stored in the order of their lines");
    require(e.stream == d.stream && e.type == d.event.type,
            "an imported event keeps its stream and type");
    require(e.data == d.event.data && e.metadata == d.event.metadata,
            "an imported event keeps its data and metadata byte for byte");
    require(d.event.time.empty() ? detail::valid_time(e.time) : e.time == d.event.time,
            "an imported event keeps its time, or gets the commit time");
  }

  // Idempotent by id: the same bytes again add nothing.
  {
    std::istringstream in(text);
    const ImportResult again = import_envelopes(store, in);
    require(again.appended == 0 && again.already_stored == result.lines,
            "importing the same lines again adds nothing");
    require(events_of(store) == events, "a second import changes no event");
  }

  // Export, then import into an empty store: the same events, seqs and times included.
  std::ostringstream out;
  require(export_envelopes(store, out) == events.size(), "export writes every event");
  Store copy = fuzz::quiet_store();
  std::istringstream in(out.str());
  const ImportResult copied = import_envelopes(copy, in);
  require(copied.appended == events.size(), "an export imports whole");
  // The envelope is one line: line breaks between JSON tokens travel as spaces
  // (envelope.hpp), the rest byte for byte.
  std::vector<Event> exported = events;
  for (Event& e : exported)
    for (std::string* text : {&e.data, &e.metadata})
      std::replace_if(
          text->begin(), text->end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  require(events_of(copy) == exported,
          "export and import keep every event as it is, line breaks as spaces");
  return 0;
}
