#include "tools/open_store.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "tools/error.hpp"

namespace eventlite::cli {
namespace {

// Only `init` creates a store: every other command needs the file to exist.
void check_path(const std::string& db, bool must_exist) {
  std::error_code error;
  std::filesystem::file_status status = std::filesystem::status(db, error);
  if (error && error != std::errc::no_such_file_or_directory) {
    throw CommandError(kExitError, fmt::format("{}: {}", db, error.message()));
  }
  if (must_exist && !std::filesystem::exists(status)) {
    throw CommandError(
        kExitError,
        fmt::format("{}: no such file (create it with `eventlite init {}`)", db, db));
  }
  if (std::filesystem::is_directory(status)) {
    throw CommandError(kExitError,
                       fmt::format("{}: is a directory, not a SQLite file", db));
  }
}

Store open_store(const std::string& db, bool read_only, bool create_if_missing) {
  return Store::open(db,
                     {.read_only = read_only, .create_if_missing = create_if_missing});
}

// Creates `db` if it does not exist, as the store would (owner-only); returns whether
// this call created it, so that a failure removes only a file the command made.
bool create_new_file(const std::string& db) {
  const auto mode = static_cast<mode_t>(StoreOptions{}.file_mode);
  const int fd = ::open(db.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);
  if (fd >= 0) {
    ::close(fd);
    return true;
  }
  if (errno == EEXIST) return false;
  throw CommandError(kExitError,
                     fmt::format("cannot create {}: {}", db, std::strerror(errno)));
}

// Removes `db` and the files SQLite keeps beside it.
void remove_store_files(const std::string& db) noexcept {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ignored;
    std::filesystem::remove(db + suffix, ignored);
  }
}

}  // namespace

// Inspecting never writes: not the file, not its schema.
Store open_for_reading(const std::string& db) {
  check_path(db, /*must_exist=*/true);
  return open_store(db, /*read_only=*/true, /*create_if_missing=*/false);
}

Store open_for_writing(const std::string& db) {
  check_path(db, /*must_exist=*/true);
  return open_store(db, /*read_only=*/false, /*create_if_missing=*/false);
}

Store open_or_create(const std::string& db, const std::optional<std::string>& name) {
  check_path(db, /*must_exist=*/false);
  const bool created = create_new_file(db);
  try {
    Store store = open_store(db, /*read_only=*/false, /*create_if_missing=*/true);
    if (name) store.set_name(*name);
    return store;
  } catch (...) {
    // Disk full, a file SQLite refused: leave no half-made store behind.
    if (created) remove_store_files(db);
    throw;
  }
}

// A read-only command cannot migrate: an older file lacks the tables it reads.
void require_processor_schema(const Store& store, const std::string& db, int needed) {
  const int found = store.schema_version();
  if (found < needed) {
    throw CommandError(
        kExitError,
        fmt::format("{}: eventlite schema version {} is older than this command reads "
                    "(run `eventlite init {}` to migrate it)",
                    db, found, db));
  }
}

std::string plural(std::size_t n, const char* one, const char* many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

}  // namespace eventlite::cli
