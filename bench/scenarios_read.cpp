// Figures 3 and 5: reading every event, for speed and for peak memory. Both sides
// read the same fixture file, and must agree on what they read.

#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "bench/raw_sqlite.hpp"
#include "bench/scenarios.hpp"
#include "eventlite/store.hpp"

namespace eventlite::bench {
namespace {

Checksum read_store(const Store& store) {
  Checksum sum;
  for (const Event& e : store.read_all()) sum.add(e);
  return sum;
}

// Checks that every read of a figure saw `events` events and the same data.
class SameData {
 public:
  explicit SameData(std::size_t events) : events_(events) {}
  void check(const Checksum& sum) {
    if (sum.events != events_)
      throw std::runtime_error("read " + std::to_string(sum.events) +
                               " events, expected " + std::to_string(events_));
    if (!first_)
      first_ = sum;
    else if (*first_ != sum)
      throw std::runtime_error("eventlite and the baseline read different data");
  }

 private:
  std::size_t events_;
  std::optional<Checksum> first_;
};

}  // namespace

void add_read_all_figure(Bench& bench, Context& ctx) {
  const std::size_t n = ctx.sizes().read_events;
  auto same = std::make_shared<SameData>(n);
  FigureSpec spec;
  spec.name = "read_all " + count_label(n) + " events";
  spec.unit = "events/s";
  spec.threshold = Threshold::ratio_at_least(0.8);
  spec.eventlite = [&ctx, n, same] {
    const auto store = Store::open(ctx.fixture(n));
    const Stopwatch watch;
    const Checksum sum = read_store(store);
    const double seconds = watch.seconds();
    same->check(sum);
    return static_cast<double>(n) / seconds;
  };
  spec.baseline = [&ctx, n, same] {
    RawDb db(ctx.fixture(n), RawDb::Sync::full);
    RawReader reader(db);
    const Stopwatch watch;
    const Checksum sum = reader.read_all();
    const double seconds = watch.seconds();
    same->check(sum);
    return static_cast<double>(n) / seconds;
  };
  bench.add(std::move(spec));
}

void add_peak_rss_figure(Bench& bench, Context& ctx) {
  const std::size_t n = ctx.sizes().stored_events;
  auto same = std::make_shared<SameData>(n);
  // Each read runs in a fresh process, so its VmHWM is the read's alone.
  auto child = [&ctx, n, same](const char* side) {
    std::istringstream out(
        run_self({"--rss-child", side, "--rss-file", ctx.fixture(n).string()}));
    std::size_t kib = 0;
    Checksum sum;
    if (!(out >> kib >> sum.events >> sum.sum))
      throw std::runtime_error("unexpected output from the RSS child process");
    same->check(sum);
    return static_cast<double>(kib) / 1024;
  };
  bench.add(FigureSpec{.name = "peak RSS, read_all " + count_label(n) + " events",
                       .unit = "MiB",
                       .better = Better::lower,
                       .threshold = Threshold::eventlite_below(64),
                       .eventlite = [child] { return child("eventlite"); },
                       .baseline = [child] { return child("baseline"); }});
}

int run_rss_child(std::string_view side, const std::filesystem::path& file) {
  Checksum sum;
  if (side == "eventlite") {
    const auto store = Store::open(file);
    sum = read_store(store);
  } else if (side == "baseline") {
    RawDb db(file, RawDb::Sync::full);
    RawReader reader(db);
    sum = reader.read_all();
  } else {
    throw std::invalid_argument("--rss-child must be eventlite or baseline");
  }
  std::cout << peak_rss_kib() << ' ' << sum.events << ' ' << sum.sum << '\n';
  return 0;
}

}  // namespace eventlite::bench
