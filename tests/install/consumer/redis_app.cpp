// Forwards three events of an in-memory store to the Redis server at argv[1], into the
// stream `installed`, with an installed eventlite::redis; prints where it stands.
#include <cstdio>
#include <eventlite/eventlite.hpp>
#include <eventlite/redis.hpp>
#include <exception>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: redis_app redis://HOST:PORT\n");
    return 2;
  }
  try {
    auto store = eventlite::Store::open(":memory:");
    for (int i = 0; i < 3; ++i)
      store.append("installed-1", eventlite::make_event("Installed", {{"i", i}}));
    eventlite::Processor processor(store);
    processor.sink("to-redis",
                   eventlite::redis::make_sink({.url = argv[1], .key = "installed"}),
                   {.max_lanes = 1});
    processor.run_until_idle();
    const eventlite::SubscriptionMetrics m = processor.metrics().at(0);
    if (m.position != 3 || m.failing_since) {
      std::fprintf(stderr, "not forwarded: position %lld: %s\n",
                   static_cast<long long>(m.position), m.last_error.c_str());
      return 1;
    }
    std::printf("forwarded 3 to redis\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
