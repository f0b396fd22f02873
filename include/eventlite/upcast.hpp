#pragma once

// Upcasters: old payloads made current on read, so that handlers, replays and folds
// only ever see the shape today's code knows, while the log keeps what was stored.
//
// An event's schema version is its metadata's "schema" (an integer; absent: 1).
// Steps are registered per type, in order, each from one version to the next; the
// chain is checked as it is built, so a gap is an error at start-up, not at the
// first old event:
//
//   auto up = std::make_shared<eventlite::Upcasters>();
//   up->add("OrderPlaced", 1, [](nlohmann::json& d) { d["currency"] = "EUR"; })
//      .add("OrderPlaced", 2, [](nlohmann::json& d) { d["total"] = d["amount"]; });
//   auto store = eventlite::Store::open("app.db", {.upcasters = up});
//   store.append("order-1", up->stamp(eventlite::make_event("OrderPlaced", data)));
//
// A store opened with upcasters applies them to every event it reads as an Event
// (read_all, read_stream, replay, load) and its processors deliver to handlers.
// Sinks forward the stored bytes, as export does, so that every copy of an event id
// is the same; the CLI and verify see the stored bytes too. An upcast event's data
// is the steps' JSON, its metadata's "schema" the current version. An event of a
// version above the current one (written by newer code) is left as it is. An event
// whose steps throw is parked as a dead letter by the subscription that meets it
// (a read or a replay throws instead).
//
// Appends through such a store stamp today's version on an event of a type with
// steps whose metadata has no "schema" and that gives no `time` (an imported or
// bridged event keeps its metadata as it came): so code that appends without
// stamp() does not see its new events upcast again as if they were version 1.

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eventlite/event.hpp"

namespace eventlite {

// Thread safety: build it on one thread, then share it (const) freely.
class Upcasters {
 public:
  using Step = std::function<void(nlohmann::json& data)>;

  // Registers the step of `type` from schema version `from` to from + 1. Steps of a
  // type start at 1 and come in order: InvalidArgument for a gap (from is not the
  // type's current version), an empty step or an empty type.
  Upcasters& add(std::string type, int from, Step step);

  // The version today's code writes for `type`: 1 + its steps.
  int current(std::string_view type) const;
  // `event` with metadata "schema" set to current(type), for appends by today's
  // code. Throws InvalidEvent for metadata that is not a JSON object.
  NewEvent stamp(NewEvent event) const;
  // Makes `event` current; returns whether it changed. A step's exception
  // propagates (the event unchanged). Throws InvalidEvent for a "schema" that is not
  // a positive integer.
  bool apply(Event& event) const;
  bool empty() const noexcept { return steps_.empty(); }
  // Whether `type` has steps.
  bool covers(std::string_view type) const { return steps_.find(type) != steps_.end(); }

 private:
  std::map<std::string, std::vector<Step>, std::less<>> steps_;
};

}  // namespace eventlite
