// The fanbase pipeline: a stream of follow and unfollow events is routed into jobs,
// and each kind of job has its own worker. What a Bull queue behind a NATS stream
// does, in one SQLite file:
//
//   - the app appends FanFollowed / FanUnfollowed events to "fanbase-<talent>";
//   - the transactional "router" turns each into job events (notify the fan, notify
//     the talent, confirm the unfollow) appended in its delivery's transaction, so a
//     crash can neither lose a job nor queue it twice;
//   - one worker subscription per job type sends the mail, reporting progress; the
//     observer prints each job's start, completion and failure;
//   - the talent mailer fails now and then and is retried; mail to a talent whose
//     address is gone fails for good and is parked as a dead letter, which
//     `eventlite dead list DB` shows;
//   - a periodic task (`every`) prints a digest of the jobs done so far.
//
// The run checks its own outcome (every job queued once and done once, one dead
// letter) and exits 1 if it does not hold.
//
// Usage: fanbase_demo DB

#include <fmt/core.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "eventlite/eventlite.hpp"

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Who follows whom in this run. The last talent's address bounces.
struct Follow {
  const char* fan;
  const char* talent;
  bool unfollow;
};
constexpr Follow kFollows[] = {
    {"ann", "dua", false},   {"bob", "dua", false}, {"cleo", "elton", false},
    {"ann", "elton", false}, {"bob", "dua", true},  {"dan", "gone", false},
};
constexpr const char* kBouncing = "gone";

// The router: one event in, its jobs out, in the delivery's transaction. Each job's
// id is derived from the event's, so even a router without a transaction would queue
// a job once.
void route(const eventlite::Context& ctx) {
  const eventlite::Event& e = ctx.event();
  const json data = e.data_json();
  std::vector<std::pair<const char*, const char*>> jobs;  // type, id suffix
  if (e.type == "FanFollowed") {
    jobs = {{"NotifyFanFollowing", "fan"}, {"NotifyTalentFollowing", "talent"}};
  } else {
    jobs = {{"NotifyFanUnfollowing", "fan"}};  // the talent is spared the news
  }
  for (const auto& [type, suffix] : jobs) {
    eventlite::NewEvent job = eventlite::make_event(
        type, data, {{"causation_id", e.id}, {"correlation_id", e.id}});
    job.id = e.id + "/" + suffix;
    // A stream per job: jobs wait for no other (a queue, not a log).
    ctx.transaction().append(fmt::format("job-{}-{}", e.seq, suffix), job);
  }
}

// What the workers did, for the digest and the final check.
struct Tally {
  std::mutex mu;
  std::condition_variable digested;
  std::map<std::string, int> done;  // job id -> times completed
  int digests = 0;
};

eventlite::Handler mailer(const char* what, Tally& tally) {
  return [what, &tally](const eventlite::Context& ctx) {
    const json data = ctx.event().data_json();
    const std::string talent = data.at("talent");
    ctx.progress(0.0, "looking up the address");
    if (std::string(what) == "talent") {
      if (talent == kBouncing) throw std::runtime_error("smtp: 550 mailbox unavailable");
      if (ctx.attempt() == 1 && ctx.event().seq % 2 == 0)
        throw std::runtime_error("smtp: 421 try again later");
    }
    ctx.progress(0.5, "sending");
    const std::string to =
        std::string(what) == "talent" ? talent : data.at("fan").get<std::string>();
    fmt::print("   mail     {:<26} to {:<6} about {} and {}\n", ctx.event().type, to,
               data.at("fan").get<std::string>(), talent);
    std::lock_guard lock(tally.mu);
    ++tally.done[ctx.event().id];
  };
}

eventlite::Observer observer() {
  eventlite::Observer o;
  o.on_start = [](const eventlite::Context& c) {
    if (c.subscription() != "router")
      fmt::print("   start    {:<26} job seq {} (attempt {})\n", c.subscription(),
                 c.event().seq, c.attempt());
  };
  o.on_delivered = [](const eventlite::Context& c, std::chrono::microseconds took) {
    if (c.subscription() != "router")
      fmt::print("   complete {:<26} job seq {} in {} us\n", c.subscription(),
                 c.event().seq, took.count());
  };
  o.on_failed = [](const eventlite::Context& c, std::string_view error) {
    fmt::print("   failed   {:<26} job seq {} (attempt {}): {}\n", c.subscription(),
               c.event().seq, c.attempt(), error);
  };
  o.on_dead = [](const eventlite::Context& c, std::string_view error) {
    fmt::print("   dead     {:<26} job seq {}: {}\n", c.subscription(), c.event().seq,
               error);
  };
  o.on_progress = [](const eventlite::Context& c, double fraction,
                     std::string_view message) {
    fmt::print("   progress {:<26} job seq {} {:>3.0f}% {}\n", c.subscription(),
               c.event().seq, fraction * 100, message);
  };
  return o;
}

int run(const std::string& path) {
  auto store = eventlite::Store::open(path);
  const eventlite::Seq before = store.head();
  fmt::print("eventlite fanbase pipeline on {}\n\n1. The app streams follows\n", path);
  for (const Follow& f : kFollows) {
    const auto seq =
        store.append(fmt::format("fanbase-{}", f.talent),
                     eventlite::make_event(f.unfollow ? "FanUnfollowed" : "FanFollowed",
                                           {{"fan", f.fan}, {"talent", f.talent}}));
    fmt::print("   seq {:>3}  {} {} {}\n", seq, f.fan,
               f.unfollow ? "unfollows" : "follows", f.talent);
  }

  fmt::print("\n2. The router queues jobs; the workers send the mail\n");
  Tally tally;
  eventlite::ProcessorOptions options;
  options.observer = observer();
  options.retry = {.max_attempts = 3, .base = 20ms, .jitter = 0};
  eventlite::Processor processor(store, options);
  processor.subscribe("router", route,
                      {.types = {"FanFollowed", "FanUnfollowed"}, .transactional = true});
  processor.subscribe("notify-fan-following", mailer("fan", tally),
                      {.types = {"NotifyFanFollowing"}});
  processor.subscribe("notify-talent-following", mailer("talent", tally),
                      {.types = {"NotifyTalentFollowing"}});
  processor.subscribe("notify-fan-unfollowing", mailer("fan", tally),
                      {.types = {"NotifyFanUnfollowing"}});
  processor.every("digest", 100ms, [&] {
    std::lock_guard lock(tally.mu);
    fmt::print("   digest   {} jobs done so far\n", tally.done.size());
    ++tally.digests;
    tally.digested.notify_all();
  });
  processor.start();
  if (!processor.wait_idle(30s)) throw std::runtime_error("the pipeline did not finish");
  {  // The digest runs on its own schedule: let it report twice.
    std::unique_lock lock(tally.mu);
    tally.digested.wait_for(lock, 10s, [&] { return tally.digests >= 2; });
  }
  processor.stop();

  fmt::print("\n3. What happened\n");
  for (const auto& m : processor.metrics())
    fmt::print("   {:<24} delivered {}, failed {}, retried {}, dead {}\n", m.name,
               m.delivered, m.failed, m.retried, m.dead);
  const auto dead = eventlite::dead_letters(store);
  for (const auto& d : dead)
    fmt::print("   dead letter: {} seq {} after {} attempts: {}\n", d.subscription, d.seq,
               d.attempts, d.last_error);
  fmt::print("   see them with: eventlite dead list {}\n", path);

  // The checks: every event of this run routed to its jobs once, every job done once
  // except the dead one.
  int jobs = 0, expected_jobs = 0;
  for (const Follow& f : kFollows) expected_jobs += f.unfollow ? 1 : 2;
  for (const auto& e : store.read_all({.from = before + 1}))
    if (e.type.rfind("Notify", 0) == 0) ++jobs;
  std::size_t done_once = 0;
  for (const auto& [id, times] : tally.done) done_once += times == 1 ? 1 : 0;
  const bool ok = jobs == expected_jobs && done_once == tally.done.size() &&
                  done_once == static_cast<std::size_t>(expected_jobs - 1) &&
                  !dead.empty() && tally.digests >= 2;
  fmt::print(
      "\n{} events routed into {} jobs (expected {}); {} done once each, {} dead\n",
      std::size(kFollows), jobs, expected_jobs, done_once, dead.size());
  if (!ok) {
    fmt::print(stderr, "fanbase_demo: the pipeline's outcome is wrong\n");
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DB\n", argv[0]);
    return 2;
  }
  try {
    return run(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fanbase_demo: %s\n", e.what());
    return 1;
  }
}
