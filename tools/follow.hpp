#pragma once

// `eventlite read --follow`: the matching events, then each new one as it is
// appended, by this or any other process, until SIGINT or SIGTERM, or until the
// reader of stdout goes away.

#include <cstdint>

#include "eventlite/read.hpp"
#include "eventlite/store.hpp"

namespace eventlite::cli {

// Prints the events `options` selects as envelope lines, then waits for more: an
// inotify watch on DB's directory wakes it when any process writes the file (a
// once-a-second look covers a watch that cannot be set up). Ends with 0 at SIGINT or
// SIGTERM, when stdout's reader goes away, once `options.limit` events were printed,
// or once `options.to` is passed.
int follow(const Store& store, ReadOptions options);

}  // namespace eventlite::cli
