// Opens an in-memory store, appends one event, reads it back and prints its envelope.
#include <cstdio>
#include <exception>

#include <eventlite/eventlite.hpp>
#include <nlohmann/json.hpp>

int main() {
  try {
    auto store = eventlite::Store::open(":memory:");
    const eventlite::Seq seq =
        store.append("greeting-1", eventlite::make_event("Greeted", {{"to", "world"}}),
                     eventlite::Expected::no_stream());
    const auto events = store.read_all().to_vector();
    if (events.size() != 1 || events[0].seq != seq || events[0].type != "Greeted") {
      std::fprintf(stderr, "read back %zu events, not the one appended\n", events.size());
      return 1;
    }
    std::printf("%s\n", eventlite::to_envelope(events[0]).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
