// `eventlite export`: DB's events to stdout as envelope lines
// (include/eventlite/transfer.hpp).

#include <fcntl.h>
#include <fmt/core.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "eventlite/errors.hpp"
#include "eventlite/transfer.hpp"
#include "tools/command.hpp"
#include "tools/error.hpp"
#include "tools/fd_stream.hpp"
#include "tools/open_store.hpp"
#include "tools/options.hpp"
#include "tools/progress.hpp"

namespace eventlite::cli {
namespace {

struct ExportArgs {
  std::string db;
  ReadFilters filters;
};

CLI::App* add_export(CLI::App& app, ExportArgs& args) {
  CLI::App* command = app.add_subcommand(
      "export",
      "Write DB's events (those the filters select) to stdout as envelope lines, in "
      "seq order, for `eventlite import` or any reader of JSON lines. Shows progress "
      "on stderr when it is a terminal. Opens DB read-only: never writes to it.");
  add_db(command, args.db);
  add_read_filters(command, args.filters);
  return command;
}

int run_export(const ExportArgs& args) {
  const Store store = open_for_reading(args.db);
  const std::uint64_t span = seq_span(store, args.filters);
  IgnoreSigpipe quiet;  // a reader that goes away ends the export, not the process
  FdOutBuf buffer(STDOUT_FILENO);
  std::ostream out(&buffer);
  Progress progress("exported");
  try {
    export_envelopes(store, out, read_options(args.filters),
                     progress.by_seq(args.filters.from, span));
  } catch (...) {
    // Whatever reads stdout must not take a cut-off export for a whole one: the
    // buffered text is dropped and a line no import accepts ends the output.
    buffer.abandon();
    constexpr std::string_view kFailed = "\n{\"eventlite_export_failed\":true}\n";
    [[maybe_unused]] const ssize_t n =
        ::write(STDOUT_FILENO, kFailed.data(), kFailed.size());
    throw;
  }
  if (buffer.broken())
    throw CommandError(kExitError,
                       buffer.error() == EPIPE
                           ? std::string("export: stdout was closed before the end")
                           : fmt::format("export: cannot write to stdout: {}",
                                         std::strerror(buffer.error())));
  return kExitOk;
}

std::string check_export(const ExportArgs& args) {
  if (std::string why = filters_problem(args.filters); !why.empty()) return why;
  return file_db_problem(args.db);
}

}  // namespace

void setup_export(CLI::App& app, Commands& commands) {
  add_command<ExportArgs>(app, commands, add_export, run_export, check_export);
}

}  // namespace eventlite::cli
