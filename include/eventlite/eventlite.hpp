#pragma once

// eventlite: an embedded event store in one SQLite file.

#include "eventlite/errors.hpp"
#include "eventlite/event.hpp"
#include "eventlite/read.hpp"
#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"
