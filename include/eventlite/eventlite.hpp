#pragma once

// eventlite: an embedded event store in one SQLite file, with a background processor.

#include "eventlite/aggregate.hpp"
#include "eventlite/clock.hpp"
#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/event.hpp"
#include "eventlite/handlers.hpp"
#include "eventlite/inbox.hpp"
#include "eventlite/lease.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/read.hpp"
#include "eventlite/rebuild.hpp"
#include "eventlite/replay.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "eventlite/transaction.hpp"
#include "eventlite/transfer.hpp"
#include "eventlite/upcast.hpp"
