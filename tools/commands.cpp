#include "tools/commands.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "eventlite/transaction.hpp"
#include "store/time_text.hpp"
#include "tools/error.hpp"
#include "tools/follow.hpp"
#include "tools/input.hpp"
#include "tools/options.hpp"
#include "tools/output.hpp"
#include "tools/status_output.hpp"

namespace eventlite::cli {
namespace {

// The first SQLite release without the WAL-reset bug (wal.c, fixed in 3.51.3).
constexpr int kWalResetFixed = 3051003;

// The schema version that added deliveries and leases: what dead reads; and the one
// that added the views status reads (held streams, lag in time).
constexpr int kProcessorSchema = 2;
constexpr int kStatusSchema = 3;

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

// A read-only command cannot migrate: an older file lacks the tables it reads.
void require_processor_schema(const Store& store, const std::string& db,
                              int needed = kProcessorSchema) {
  const int found = store.schema_version();
  if (found < needed) {
    throw CommandError(
        kExitError,
        fmt::format("{}: eventlite schema version {} is older than this command reads "
                    "(run `eventlite init {}` to migrate it)",
                    db, found, db));
  }
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

std::string plural(std::size_t n, const char* one, const char* many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

void print_seqs(const std::vector<Seq>& seqs) {
  for (Seq seq : seqs) std::cout << seq << '\n';
}

// The --jsonl batch: one transaction, so a bad line anywhere stores nothing at all.
std::vector<Seq> append_batch(Store& store, const std::vector<BatchEvent>& batch) {
  std::vector<Seq> seqs;
  seqs.reserve(batch.size());
  Transaction transaction = store.transaction();
  for (const BatchEvent& item : batch) {
    try {
      seqs.push_back(transaction.append(item.stream, item.event, item.expected));
    } catch (const VersionConflict& conflict) {
      // Only a line with "version" expects anything: say it in the line's terms.
      throw CommandError(
          kExitConflict,
          fmt::format("line {}: version conflict on stream \"{}\": \"version\":{} needs "
                      "the stream at version {}, it is at {}",
                      item.line, conflict.stream(), item.expected.version() + 1,
                      item.expected.version(), conflict.actual()));
    } catch (const Error& error) {
      throw CommandError(exit_status(error),
                         fmt::format("line {}: {}", item.line, describe(error)));
    }
  }
  transaction.commit();
  return seqs;
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

std::optional<Expected> parse_expected(std::string_view text) {
  if (text == "any") return Expected::any();
  if (text == "none") return Expected::no_stream();
  auto version = parse_decimal(text, 0, std::numeric_limits<Version>::max());
  if (!version) return std::nullopt;
  return Expected::exactly(static_cast<Version>(*version));
}

int run_init(const InitArgs& args) {
  check_path(args.db, /*must_exist=*/false);
  const bool created = create_new_file(args.db);
  try {
    Store store = open_store(args.db, /*read_only=*/false, /*create_if_missing=*/true);
    if (args.name) store.set_name(*args.name);
    const StoreIdentity id = store.identity();
    std::cout << fmt::format("{}: eventlite schema version {}, store {}{}\n", args.db,
                             store.schema_version(), id.id,
                             id.name.empty() ? "" : " (" + id.name + ")");
  } catch (...) {
    // Disk full, a file SQLite refused: leave no half-made store behind.
    if (created) remove_store_files(args.db);
    throw;
  }
  return kExitOk;
}

int run_append(const AppendArgs& args) {
  Store store = open_for_writing(args.db);
  if (args.use_jsonl) {
    print_seqs(append_batch(store, parse_jsonl(read_input(args.jsonl))));
    return kExitOk;
  }
  const std::string data_name = args.data == "-" ? "the data on stdin" : "DATA";
  NewEvent event;
  event.type = args.type;
  event.data = json_text(args.data == "-" ? read_input("-") : args.data, data_name);
  event.metadata = json_text(args.metadata, "--metadata");
  event.id = args.id;
  // main() has checked --expect already.
  Expected expected = parse_expected(args.expect).value_or(Expected::any());
  try {
    print_seqs({store.append(args.stream, event, expected)});
  } catch (const InvalidEvent& error) {
    // Name the argument the user wrote, not the store's field.
    const std::string& field = error.field();
    const std::string name = field == "stream"     ? "STREAM"
                             : field == "type"     ? "TYPE"
                             : field == "data"     ? data_name
                             : field == "metadata" ? "--metadata"
                             : field == "id"       ? "--id"
                                                   : field;
    throw CommandError(kExitError, fmt::format("{}: {}", name, error.reason()));
  }
  return kExitOk;
}

int run_read(const ReadArgs& args) {
  Store store = open_for_reading(args.db);
  ReadOptions options = read_options(args.filters);
  options.limit = args.limit;
  if (args.follow) return follow(store, std::move(options));
  for (const Event& event : store.read_all(std::move(options))) {
    std::cout << to_envelope(event) << '\n';
  }
  return kExitOk;
}

int run_streams(const StreamsArgs& args) {
  Store store = open_for_reading(args.db);
  std::vector<StreamInfo> streams = store.streams();
  if (args.json) {
    for (const StreamInfo& info : streams) {
      print_json_line(std::cout, {{"stream", info.stream},
                                  {"version", info.version},
                                  {"last_seq", info.last_seq}});
    }
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const StreamInfo& info : streams) {
    rows.push_back(
        {info.stream, std::to_string(info.version), std::to_string(info.last_seq)});
  }
  print_table(
      std::cout,
      {{"STREAM", Align::left}, {"VERSION", Align::right}, {"LAST_SEQ", Align::right}},
      rows);
  return kExitOk;
}

int run_status(const StatusArgs& args) {
  Store store = open_for_reading(args.db);
  require_processor_schema(store, args.db, kStatusSchema);
  const StatusReport report = status(store);
  if (args.json)
    print_status_json(std::cout, report);
  else
    print_status_tables(std::cout, report);
  return kExitOk;
}

int run_dead_list(const DeadListArgs& args) {
  Store store = open_for_reading(args.db);
  require_processor_schema(store, args.db);
  const std::vector<DeadLetter> dead = dead_letters(store, args.subscription);
  if (args.json) {
    for (const DeadLetter& d : dead) {
      print_json_line(std::cout, {{"subscription", d.subscription},
                                  {"seq", d.seq},
                                  {"stream", d.stream},
                                  {"type", d.type},
                                  {"attempts", d.attempts},
                                  {"last_error", d.last_error},
                                  {"updated", d.updated}});
    }
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const DeadLetter& d : dead) {
    rows.push_back({d.subscription, std::to_string(d.seq), d.stream, d.type,
                    std::to_string(d.attempts), d.updated, d.last_error});
  }
  print_table(std::cout,
              {{"SUBSCRIPTION", Align::left},
               {"SEQ", Align::right},
               {"STREAM", Align::left},
               {"TYPE", Align::left},
               {"ATTEMPTS", Align::right},
               {"UPDATED", Align::left},
               {"LAST_ERROR", Align::left}},
              rows);
  return kExitOk;
}

int run_dead_retry(const DeadChangeArgs& args) {
  Store store = open_for_writing(args.db);
  // main() has checked that exactly one of --seq and --all is there.
  const std::size_t changed = retry_dead_letters(store, args.subscription, args.seqs);
  std::cout << "retried " << plural(changed, "dead letter", "dead letters") << '\n';
  return kExitOk;
}

int run_dead_discard(const DeadChangeArgs& args) {
  Store store = open_for_writing(args.db);
  const std::size_t changed = discard_dead_letters(store, args.subscription, args.seqs);
  std::cout << "discarded " << plural(changed, "dead letter", "dead letters") << '\n';
  return kExitOk;
}

int run_rewind(const RewindArgs& args) {
  Store store = open_for_writing(args.db);
  const RewindReport r = rewind(store, args.subscription, args.from);
  std::cout << fmt::format("{}: next delivery from seq {}\n", args.subscription,
                           args.from);
  // Seqs, not events: a subscription with filters gets only its own of them.
  if (r.position_before > r.position_after)
    std::cout << fmt::format("  position {} -> {}: seqs {} to {} are delivered again\n",
                             r.position_before, r.position_after, r.position_after + 1,
                             r.position_before);
  else if (r.position_before < r.position_after)
    std::cout << fmt::format("  position {} -> {}: seqs {} to {} are skipped\n",
                             r.position_before, r.position_after, r.position_before + 1,
                             r.position_after);
  if (r.owed_dropped + r.dead_dropped > 0)
    std::cout << fmt::format("  dropped {} and {}, delivered again from the log\n",
                             plural(r.dead_dropped, "dead letter", "dead letters"),
                             plural(r.owed_dropped, "owed delivery", "owed deliveries"));
  if (r.ended_lease_of)
    std::cout << fmt::format(
        "  ended the lease of {} (its uncommitted work cannot land)\n",
        *r.ended_lease_of);
  return kExitOk;
}

int run_verify(const VerifyArgs& args) {
  Store store = open_for_reading(args.db);
  std::cout << "SQLite " << sqlite3_libversion() << '\n';
  if (sqlite3_libversion_number() < kWalResetFixed) {
    std::cout.flush();
    std::cerr << fmt::format(
        "eventlite: warning: SQLite {} has the WAL-reset bug fixed in 3.51.3: "
        "eventlite's own connections never checkpoint while another commits, but an "
        "application's connection that writes this file does by default; set "
        "wal_autocheckpoint=0 on it\n",
        sqlite3_libversion());
  }
  std::vector<std::string> problems = store.verify();
  if (problems.empty()) {
    std::cout << "ok\n";
    return kExitOk;
  }
  for (const std::string& problem : problems) std::cout << one_line(problem) << '\n';
  std::cout.flush();
  throw CommandError(kExitError,
                     fmt::format("{}: {} problem{} found", args.db, problems.size(),
                                 problems.size() == 1 ? "" : "s"));
}

}  // namespace eventlite::cli
