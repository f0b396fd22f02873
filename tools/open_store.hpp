#pragma once

// How the tool's commands open DB, and what they say when they cannot.

#include <cstddef>
#include <optional>
#include <string>

#include "eventlite/store.hpp"

namespace eventlite::cli {

// The schema version that added deliveries and leases: what `dead` reads; and the one
// that added the views `status` reads (held streams, lag in time).
inline constexpr int kProcessorSchema = 2;
inline constexpr int kStatusSchema = 3;

// The store in DB for a command that writes; a missing DB is a CommandError that
// says how to create it.
Store open_for_writing(const std::string& db);
// The store in DB for a command that only reads: opened read-only, never migrated.
Store open_for_reading(const std::string& db);
// `init`'s: creates DB (mode 0600) if it is missing, migrates it, and names the
// store `name` if given. If it fails after creating the file, it removes the file
// again.
Store open_or_create(const std::string& db, const std::optional<std::string>& name);

// A read-only command cannot migrate: an older file lacks the tables it reads.
void require_processor_schema(const Store& store, const std::string& db,
                              int needed = kProcessorSchema);

// "3 dead letters", "1 dead letter".
std::string plural(std::size_t n, const char* one, const char* many);

}  // namespace eventlite::cli
