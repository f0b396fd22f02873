#pragma once

// How `eventlite status` prints what status() reports (docs/cli.md#status).

#include <ostream>

#include "eventlite/subscriptions.hpp"

namespace eventlite::cli {

// One JSON object, keys in DESIGN.md's order and the additions after them.
void print_status_json(std::ostream& out, const StatusReport& report);
// The SQLite version, the head, the subscriptions' table, then each sink's broker,
// the processes standing by, the shadow rebuilds and the bridges, each table only
// when it has rows.
void print_status_tables(std::ostream& out, const StatusReport& report);

}  // namespace eventlite::cli
