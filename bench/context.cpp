#include "bench/raw_sqlite.hpp"
#include "bench/scenarios.hpp"

namespace eventlite::bench {

Sizes Sizes::for_config(const Config& config) {
  Sizes s;
  if (config.quick) {
    s.batched_calls = 20;
    s.single_run = std::chrono::milliseconds(250);
    s.read_events = 50000;
    s.stored_events = 100000;
    s.latency_events = 200;
    s.forward_events = 20000;
    s.idle_window = std::chrono::milliseconds(2000);
  }
  return s;
}

Context::Context(const Config& config, const std::filesystem::path& parent_dir)
    : dir_(parent_dir), sizes_(Sizes::for_config(config)) {}

std::filesystem::path Context::new_path(std::string_view stem) {
  return dir_.path() / (std::string(stem) + "-" + std::to_string(++next_id_) + ".db");
}

const std::filesystem::path& Context::fixture(std::size_t events) {
  if (auto it = fixtures_.find(events); it != fixtures_.end()) return it->second;
  auto path = new_path("fixture-" + count_label(events));
  build_fixture(path, workload_, events);
  return fixtures_.emplace(events, std::move(path)).first->second;
}

}  // namespace eventlite::bench
