#pragma once

// Replaying the log into a handler, outside any processor: to rebuild state in
// memory, to check a new projection against old events, to feed a tool. Every
// delivery's Context (or BatchContext) says replay(), so a handler shared with a live
// subscription can skip its side effects (mails, payments) during one.
//
//   std::map<std::string, int> totals;
//   eventlite::replay(store, [&](const eventlite::Context& c) {
//     totals[c.event().stream] += 1;
//   }, {.types = {"OrderPlaced"}});
//
// The events are read lazily (a page at a time), in seq order; nothing is written
// and no checkpoint moves.

#include <cstddef>
#include <cstdint>

#include "eventlite/handlers.hpp"
#include "eventlite/read.hpp"
#include "eventlite/store.hpp"

namespace eventlite {

// Calls `handler` with each event `options` selects; returns how many it handled.
// A handler that throws ends the replay: the exception propagates, the events
// before it were handled. The Context's subscription is "replay", its attempt 1,
// without a transaction. Throws StorageError if a page cannot be read.
std::uint64_t replay(const Store& store, const Handler& handler, ReadOptions options = {});

// The same, `batch` events a call (the last call may hold fewer). A result that is
// not all_done() ends the replay with its error (the events before it count); one
// with no error throws InvalidArgument naming the index.
std::uint64_t replay(const Store& store, const BatchHandler& handler,
                     ReadOptions options = {}, std::size_t batch = 512);

}  // namespace eventlite
