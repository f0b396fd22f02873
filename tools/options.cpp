#include "tools/options.hpp"

#include <fmt/core.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <charconv>

namespace eventlite::cli {

std::optional<std::uint64_t> parse_decimal(std::string_view text, std::uint64_t min,
                                           std::uint64_t max) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < min ||
      value > max)
    return std::nullopt;
  return value;
}

CLI::Validator decimal(std::uint64_t min, std::uint64_t max) {
  return CLI::Validator(
      [min, max](std::string& value) {
        auto n = parse_decimal(value, min, max);
        if (!n) {
          return fmt::format(
              "must be a whole number from {} to {} in decimal digits, "
              "not \"{}\"",
              min, max, value);
        }
        value = std::to_string(*n);
        return std::string();
      },
      "");
}

CLI::Validator non_empty() {
  return CLI::Validator(
      [](std::string& value) {
        return value.empty() ? std::string("must not be empty") : std::string();
      },
      "");
}

CLI::Validator db_name() {
  return CLI::Validator(
      [](std::string& db) {
        if (db.rfind("file:", 0) == 0) {
          return fmt::format(
              "\"{}\" would be opened as an SQLite URI, not as a file; for a file of "
              "that name write ./{}",
              db, db);
        }
        if (db == ":memory:") {
          return std::string(
              "\":memory:\" is SQLite's in-memory database, gone when the command "
              "ends; for a file of that name write ./:memory:");
        }
        return std::string();
      },
      "");
}

void add_run_options(CLI::App* command, RunOptions& run,
                     const std::string& until_idle_help) {
  command->add_flag("--until-idle", run.until_idle, until_idle_help);
  command
      ->add_option("--retry-for", run.retry_for,
                   "with --until-idle: seconds to keep retrying an unreachable server")
      ->type_name("SECONDS")
      ->transform(decimal(1, 86400))
      ->capture_default_str();
  command
      ->add_option("--lease-time", run.lease_time,
                   "seconds after which another process takes over from this one if it "
                   "dies; with --until-idle, it waits that long for one that holds it")
      ->type_name("SECONDS")
      ->transform(decimal(1, 3600))
      ->capture_default_str();
}

std::shared_ptr<spdlog::logger> quiet_logger(const RunOptions& run) {
  if (!run.until_idle) return nullptr;
  return std::make_shared<spdlog::logger>(
      "eventlite", std::make_shared<spdlog::sinks::null_sink_mt>());
}

sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

void add_db(CLI::App* command, std::string& db, const char* help) {
  command->add_option("DB", db, help)->required()->type_name("")->check(db_name());
}

ReadOptions read_options(const ReadFilters& filters) {
  ReadOptions options;
  options.stream = filters.stream;
  options.types = filters.types;
  options.from = filters.from;
  options.to = filters.to;
  return options;
}

void add_read_filters(CLI::App* command, ReadFilters& filters) {
  const auto max_seq = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  command
      ->add_option("--stream", filters.stream,
                   "only the events of stream S (that exact name)")
      ->type_name("S")
      ->check(non_empty());
  command
      ->add_option("--type", filters.types,
                   "only events of type T; repeat for several types")
      ->type_name("T")
      ->expected(1)
      ->take_all()
      ->check(non_empty());
  command->add_option("--from", filters.from, "start at seq SEQ, inclusive [default: 1]")
      ->type_name("SEQ")
      ->transform(decimal(1, max_seq));
  command->add_option("--to", filters.to, "end at seq SEQ, inclusive [default: the last]")
      ->type_name("SEQ")
      ->transform(decimal(1, max_seq));
}

std::uint64_t seq_span(const Store& store, const ReadFilters& filters) {
  const Seq last = std::min<Seq>(filters.to, store.head());
  return last >= filters.from ? static_cast<std::uint64_t>(last - filters.from + 1) : 0;
}

std::string filters_problem(const ReadFilters& filters) {
  if (filters.from < 1 || filters.to < 1) return "--from and --to are seqs, 1 or more";
  for (const std::string& type : filters.types)
    if (type.empty()) return "--type is never empty";
  return {};
}

std::string run_problem(const RunOptions& run) {
  if (run.retry_for < 1 || run.retry_for > 86400) return "--retry-for is in range";
  if (run.lease_time < 1 || run.lease_time > 3600) return "--lease-time is in range";
  return {};
}

std::string file_db_problem(const std::string& db) {
  if (db.rfind("file:", 0) == 0 || db == ":memory:") return "DB names a file";
  return {};
}

}  // namespace eventlite::cli
