#pragma once

// `eventlite export` and `eventlite import`: envelope lines out of DB and into it
// (include/eventlite/transfer.hpp). The commands' options and their runs are here.

#include <cstdint>
#include <string>

#include "eventlite/store.hpp"
#include "tools/options.hpp"

namespace CLI {
class App;
}

namespace eventlite::cli {

struct ExportArgs {
  std::string db;
  ReadFilters filters;
};

struct ImportArgs {
  std::string db;
  std::string file = "-";
};

CLI::App* add_export(CLI::App& app, ExportArgs& args);
int run_export(const ExportArgs& args);
CLI::App* add_import(CLI::App& app, ImportArgs& args);
int run_import(const ImportArgs& args);

// The span of seqs `filters` covers in `store` (for a progress line's time left):
// from --from to the lower of --to and the head; 0 when empty.
std::uint64_t seq_span(const Store& store, const ReadFilters& filters);

}  // namespace eventlite::cli
