// Upcasters (include/eventlite/upcast.hpp).

#include "eventlite/upcast.hpp"

#include <fmt/format.h>

#include "eventlite/errors.hpp"
#include "store/stamp.hpp"

namespace eventlite {

namespace {

constexpr const char* kKey = "schema";

}  // namespace

Upcasters& Upcasters::add(std::string type, int from, Step step) {
  if (type.empty()) throw InvalidArgument("upcaster: the type is empty");
  if (!step)
    throw InvalidArgument(
        fmt::format("upcaster {} {}->{}: the step is empty", type, from, from + 1));
  auto& steps = steps_[type];
  const int current = static_cast<int>(steps.size()) + 1;
  if (from != current) {
    const std::string error =
        from > current
            ? fmt::format("upcaster {} {}->{}: the step from {} is missing", type, from,
                          from + 1, current)
            : fmt::format("upcaster {} {}->{}: registered twice (or from below 1)", type,
                          from, from + 1);
    if (steps.empty()) steps_.erase(type);
    throw InvalidArgument(error);
  }
  steps.push_back(std::move(step));
  return *this;
}

int Upcasters::current(std::string_view type) const {
  const auto it = steps_.find(type);
  return it == steps_.end() ? 1 : static_cast<int>(it->second.size()) + 1;
}

NewEvent Upcasters::stamp(NewEvent event) const {
  nlohmann::json metadata = nlohmann::json::parse(event.metadata, nullptr, false);
  if (!metadata.is_object())
    throw InvalidEvent(0, "metadata", "must be a JSON object to carry a schema version");
  metadata[kKey] = current(event.type);
  event.metadata = metadata.dump();
  return event;
}

bool Upcasters::apply(Event& event) const {
  const auto it = steps_.find(event.type);
  if (it == steps_.end()) return false;
  nlohmann::json metadata = nlohmann::json::parse(event.metadata, nullptr, false);
  if (!metadata.is_object()) return false;
  int version = 1;
  if (const auto v = metadata.find(kKey); v != metadata.end()) {
    if (!v->is_number_integer() || v->get<std::int64_t>() < 1)
      throw InvalidEvent(
          0, "metadata",
          fmt::format("seq {}: \"schema\" must be a positive integer", event.seq));
    if (v->get<std::int64_t>() > static_cast<std::int64_t>(it->second.size()))
      return false;
    version = static_cast<int>(v->get<std::int64_t>());
  }
  nlohmann::json data = nlohmann::json::parse(event.data);
  for (std::size_t i = static_cast<std::size_t>(version) - 1; i < it->second.size(); ++i)
    it->second[i](data);
  metadata[kKey] = static_cast<int>(it->second.size()) + 1;
  event.data = data.dump();
  event.metadata = metadata.dump();
  return true;
}

namespace detail {

std::span<const NewEvent> stamp_missing(const Upcasters* upcasters,
                                        std::span<const NewEvent> events,
                                        std::vector<NewEvent>& storage) {
  if (!upcasters || upcasters->empty()) return events;
  const auto needs = [&](const NewEvent& e) {
    if (!e.time.empty() || !upcasters->covers(e.type)) return false;
    const nlohmann::json m = nlohmann::json::parse(e.metadata, nullptr, false);
    return m.is_object() && !m.contains(kKey);
  };
  std::size_t first = 0;
  while (first < events.size() && !needs(events[first])) ++first;
  if (first == events.size()) return events;
  storage.assign(events.begin(), events.end());
  for (std::size_t i = first; i < storage.size(); ++i)
    if (needs(storage[i])) storage[i] = upcasters->stamp(std::move(storage[i]));
  return storage;
}

}  // namespace detail

}  // namespace eventlite
