#include "tools/transfer.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "eventlite/errors.hpp"
#include "eventlite/transfer.hpp"
#include "tools/commands.hpp"
#include "tools/error.hpp"
#include "tools/fd_stream.hpp"
#include "tools/progress.hpp"

namespace eventlite::cli {

std::uint64_t seq_span(const Store& store, const ReadFilters& filters) {
  const Seq last = std::min<Seq>(filters.to, store.head());
  return last >= filters.from ? static_cast<std::uint64_t>(last - filters.from + 1) : 0;
}

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
  export_envelopes(store, out, read_options(args.filters),
                   [&](const TransferProgress& p) {
                     progress.update(p.events,
                                     p.seq > 0 ? static_cast<std::uint64_t>(
                                                     p.seq - args.filters.from + 1)
                                               : 0,
                                     span);
                   });
  if (buffer.broken())
    throw CommandError(kExitError, "export: stdout was closed before the end");
  return kExitOk;
}

CLI::App* add_import(CLI::App& app, ImportArgs& args) {
  CLI::App* command = app.add_subcommand(
      "import",
      "Append the envelope lines of FILE (or stdin) to DB in one transaction: all or "
      "nothing. Keeps each event's id, stream, version, type, time, data and "
      "metadata; a line whose id is stored with the same content is skipped, so an "
      "import run twice adds nothing; a line whose version its stream is not at, or "
      "that is not an envelope, fails the import naming its line. Shows progress on "
      "stderr when it is a terminal.");
  add_db(command, args.db);
  command->add_option("FILE", args.file, "envelope lines, as `eventlite export` writes; - for stdin")
      ->type_name("")
      ->capture_default_str();
  return command;
}

int run_import(const ImportArgs& args) {
  Store store = open_for_writing(args.db);
  int fd = STDIN_FILENO;
  if (args.file != "-") {
    fd = ::open(args.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw CommandError(kExitError, fmt::format("{}: cannot open it: {}", args.file,
                                                 std::strerror(errno)));
  }
  struct stat st {};
  const bool sized = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw CommandError(kExitError, fmt::format("{}: is a directory", args.file));
  }
  FdInBuf buffer(fd);
  std::istream in(&buffer);
  ImportResult result;
  try {
    Progress progress("imported");
    result = import_envelopes(store, in, [&](const TransferProgress& p) {
      progress.update(p.events, p.bytes,
                      sized ? static_cast<std::uint64_t>(st.st_size) : 0);
    });
  } catch (const ImportError& e) {
    if (fd != STDIN_FILENO) ::close(fd);
    throw CommandError(exit_status(e),
                       fmt::format("{}: {} (nothing was imported)",
                                   args.file == "-" ? "stdin" : args.file, e.what()));
  } catch (...) {
    if (fd != STDIN_FILENO) ::close(fd);
    throw;
  }
  if (fd != STDIN_FILENO) ::close(fd);
  std::cout << fmt::format("imported {} events, {} already stored\n", result.appended,
                           result.already_stored);
  return kExitOk;
}

}  // namespace eventlite::cli
