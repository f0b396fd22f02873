#pragma once

// Stamping the schema version upcasters need (include/eventlite/upcast.hpp) on the
// events an append writes.

#include <span>
#include <vector>

#include "eventlite/event.hpp"

namespace eventlite {
class Upcasters;
}

namespace eventlite::detail {

// `events`, with today's schema version stamped where the store stamps it (see
// upcast.hpp): `events` itself when none needs it, else a copy kept in `storage`.
// Throws InvalidEvent for metadata that is not JSON.
std::span<const NewEvent> stamp_missing(const Upcasters* upcasters,
                                        std::span<const NewEvent> events,
                                        std::vector<NewEvent>& storage);

}  // namespace eventlite::detail
