// `eventlite import`: envelope lines into DB in one transaction
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

struct ImportArgs {
  std::string db;
  std::string file = "-";
};

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
  command
      ->add_option("FILE", args.file,
                   "envelope lines, as `eventlite export` writes; - for stdin")
      ->type_name("")
      ->capture_default_str();
  return command;
}

// The input of an import, opened: FILE, or stdin; a pipe or a terminal is first
// copied to an unlinked temp file, so that the store's write lock is never held
// while a slow writer feeds the pipe.
UniqueFd open_input(const std::string& file, std::uint64_t& size) {
  UniqueFd in(file == "-" ? STDIN_FILENO : ::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0)
    throw CommandError(kExitError,
                       fmt::format("{}: cannot open it: {}", file, std::strerror(errno)));
  struct stat st {};
  if (::fstat(in.get(), &st) == 0 && S_ISDIR(st.st_mode))
    throw CommandError(kExitError, fmt::format("{}: is a directory", file));
  if (S_ISREG(st.st_mode)) {
    size = static_cast<std::uint64_t>(st.st_size);
    return in;
  }
  std::string path =
      (std::filesystem::temp_directory_path() / "eventlite-import-XXXXXX").string();
  UniqueFd spool(::mkstemp(path.data()));
  if (spool.get() < 0)
    throw CommandError(kExitError, fmt::format("import: cannot make a temp file: {}",
                                               std::strerror(errno)));
  ::unlink(path.c_str());
  char buffer[1 << 16];
  size = 0;
  for (;;) {
    const ssize_t n = ::read(in.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw CommandError(kExitError,
                         fmt::format("{}: cannot read it: {} (nothing was imported)",
                                     file == "-" ? "stdin" : file, std::strerror(errno)));
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w =
          ::write(spool.get(), buffer + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0)
        throw CommandError(kExitError,
                           fmt::format("import: cannot write its temp file: {} (nothing "
                                       "was imported)",
                                       std::strerror(errno)));
      done += w;
    }
    size += static_cast<std::uint64_t>(n);
  }
  ::lseek(spool.get(), 0, SEEK_SET);
  return spool;
}

int run_import(const ImportArgs& args) {
  const std::string name = args.file == "-" ? "stdin" : args.file;
  std::uint64_t size = 0;
  const UniqueFd input = open_input(args.file, size);
  Store store = open_for_writing(args.db);
  FdInBuf buffer(input.get());
  std::istream in(&buffer);
  ImportResult result;
  try {
    Progress progress("imported");
    result = import_envelopes(store, in, [&](const TransferProgress& p) {
      progress.update(p.events, p.bytes, size);
    });
  } catch (const ImportError& e) {
    throw CommandError(exit_status(e),
                       fmt::format("{}: {} (nothing was imported)", name, e.what()));
  } catch (const InvalidArgument& e) {
    throw CommandError(kExitError,
                       fmt::format("{}: {} (nothing was imported)", name, e.what()));
  }
  std::cout << fmt::format("imported {} events, {} already stored\n", result.appended,
                           result.already_stored);
  return kExitOk;
}

std::string check_import(const ImportArgs& args) {
  return file_db_problem(args.db);
}

}  // namespace

void setup_import(CLI::App& app, Commands& commands) {
  add_command<ImportArgs>(app, commands, add_import, run_import, check_import);
}

}  // namespace eventlite::cli
