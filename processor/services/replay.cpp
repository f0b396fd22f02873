// Replays of the log into a handler (include/eventlite/replay.hpp).

#include "eventlite/replay.hpp"

#include <fmt/format.h>

#include <vector>

#include "eventlite/errors.hpp"

namespace eventlite {

namespace {
constexpr std::string_view kReplay = "replay";
}  // namespace

std::uint64_t replay(const Store& store, const Handler& handler, ReadOptions options) {
  if (!handler) throw InvalidArgument("replay: the handler is empty");
  std::uint64_t n = 0;
  for (const Event& e : store.read_all(std::move(options))) {
    handler(Context(e, kReplay, 1, nullptr, /*replay=*/true));
    ++n;
  }
  return n;
}

std::uint64_t replay(const Store& store, const BatchHandler& handler, ReadOptions options,
                     std::size_t batch) {
  if (!handler) throw InvalidArgument("replay: the handler is empty");
  if (batch == 0) throw InvalidArgument("replay: the batch is 0");
  if (options.page_size < batch) options.page_size = std::min<std::size_t>(batch, 65536);
  std::vector<Event> events;
  events.reserve(batch);
  std::vector<const Event*> pointers;
  const std::vector<int> attempts(batch, 1);
  std::uint64_t n = 0;
  const auto deliver = [&] {
    pointers.clear();
    for (const Event& e : events) pointers.push_back(&e);
    const BatchContext ctx(pointers, std::span<const int>(attempts.data(), events.size()),
                           kReplay, nullptr, /*replay=*/true);
    const BatchResult r = handler(ctx);
    const std::size_t done = r.done(events.size());
    n += done;
    if (!r.all_done()) {
      if (r.error()) std::rethrow_exception(r.error());
      throw InvalidArgument(
          fmt::format("replay: the batch handler failed at index {} "
                      "without an error",
                      done));
    }
    events.clear();
  };
  for (const Event& e : store.read_all(std::move(options))) {
    events.push_back(e);
    if (events.size() == batch) deliver();
  }
  if (!events.empty()) deliver();
  return n;
}

}  // namespace eventlite
