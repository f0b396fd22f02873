#include "eventlite/event.hpp"

#include <nlohmann/json.hpp>

namespace eventlite {

NewEvent make_event(std::string type, const nlohmann::json& data) {
  return NewEvent{
      .type = std::move(type), .data = data.dump(), .metadata = "{}", .id = {}};
}

NewEvent make_event(std::string type, const nlohmann::json& data,
                    const nlohmann::json& metadata) {
  return NewEvent{.type = std::move(type),
                  .data = data.dump(),
                  .metadata = metadata.dump(),
                  .id = {}};
}

nlohmann::json Event::data_json() const {
  return nlohmann::json::parse(data);
}
nlohmann::json Event::metadata_json() const {
  return nlohmann::json::parse(metadata);
}

bool Expected::holds(Version actual) const noexcept {
  switch (kind_) {
    case Kind::any: return true;
    case Kind::no_stream: return actual == 0;
    case Kind::exactly: return actual == version_;
  }
  return false;
}

std::string Expected::to_string() const {
  switch (kind_) {
    case Kind::any: return "any";
    case Kind::no_stream: return "no stream";
    case Kind::exactly: return std::to_string(version_);
  }
  return "?";
}

}  // namespace eventlite
