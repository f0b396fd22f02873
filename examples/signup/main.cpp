// The sign-up demo: an application keeps its own `users` table in a SQLite file and
// records what happens to each user as events in the same file, with eventlite.
//
// Each run signs up three users, approves one and rejects one, all in ONE transaction:
// the rows in `users` and the events commit together or not at all (the outbox). Then
// two reviewers decide on the third user at once, and the slower one is stopped by the
// expected stream version (optimistic concurrency); a retried append of a known event
// id is shown to write nothing. The run's events are read back and printed.
//
// Then the background processor delivers the events to two handlers:
//   - "history", transactional: keeps the `user_status_history` table. Its rows and
//     its checkpoint commit together, so each event is recorded exactly once;
//   - "notify": "sends" mail and SMS. It fails now and then (a flaky SMTP server) and
//     is retried with backoff until it succeeds.
// It ends by printing the history and the subscriptions' status, as
// `eventlite status DB` would. A second run on the same file continues where the
// first stopped: each handler gets only the new events.
//
// Usage: signup_demo DB

#include <SQLiteCpp/SQLiteCpp.h>
#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "eventlite/eventlite.hpp"

namespace {

using nlohmann::json;

struct Person {
  const char* first;
  const char* name;
};

constexpr Person kPeople[] = {
    {"ada", "Ada Lovelace"},           {"alan", "Alan Turing"},
    {"grace", "Grace Hopper"},         {"edsger", "Edsger Dijkstra"},
    {"barbara", "Barbara Liskov"},     {"donald", "Donald Knuth"},
    {"margaret", "Margaret Hamilton"}, {"ken", "Ken Thompson"},
    {"frances", "Frances Allen"},
};
constexpr std::int64_t kPeopleCount = std::size(kPeople);

std::string stream_of(std::int64_t user_id) {
  return fmt::format("user-{}", user_id);
}

// Metadata of every event of this run: who caused it and which run it belongs to.
json metadata(const std::string& correlation_id, const std::string& causation_id = {}) {
  json m = {{"correlation_id", correlation_id}, {"source", "signup_demo"}};
  if (!causation_id.empty()) m["causation_id"] = causation_id;
  return m;
}

struct Totals {
  std::int64_t users = 0, pending = 0, approved = 0, rejected = 0;
};

// Reads the application's own table through a read-only connection of its own: the
// application owns the file, and a read never needs (nor holds back) the store's
// writer, which appends and checkpoints go through.
Totals count_users(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db, "SELECT status, count(*) FROM users GROUP BY status");
  Totals t;
  while (q.executeStep()) {
    std::string status = q.getColumn(0).getString();
    std::int64_t n = q.getColumn(1).getInt64();
    t.users += n;
    if (status == "pending") t.pending = n;
    if (status == "approved") t.approved = n;
    if (status == "rejected") t.rejected = n;
  }
  return t;
}

// One line per event; the time without its date (printed once above the table).
void print_event(const eventlite::Event& e) {
  std::string data = e.data;
  if (data.size() > 64) data = data.substr(0, 61) + "...";
  std::string time = e.time.size() > 11 ? e.time.substr(11) : e.time;
  fmt::print("  {:>4}  {:<8} {:>3}  {:<13} {:<13} {}\n", e.seq, e.stream, e.version,
             e.type, time, data);
}

// What an event says, in words: "Ada Lovelace <ada@example.com>", "by ann: spam".
std::string describe(const eventlite::Event& e) {
  json data = e.data_json();
  if (e.type == "UserCreated") {
    return fmt::format("{} <{}>", data.value("name", "?"), data.value("email", "?"));
  }
  std::string text = "by " + data.value("by", std::string("?"));
  if (data.contains("reason")) text += ": " + data.value("reason", std::string());
  return text;
}

// Handler output comes from worker threads: one line at a time.
std::mutex print_mu;
template <class... Args>
void say(fmt::format_string<Args...> format, Args&&... args) {
  std::lock_guard lock(print_mu);
  fmt::print(format, std::forward<Args>(args)...);
}

// 5. The processor: a transactional projection and a flaky notifier.
void process(eventlite::Store& store) {
  fmt::print("5. The processor delivers the events to two handlers\n");
  eventlite::ProcessorOptions options;
  options.worker_threads = 2;
  options.observer.on_failed = [](const eventlite::Context& ctx, std::string_view error) {
    say("   {:<8} seq {:>3}  attempt {} failed: {} (will retry)\n", ctx.subscription(),
        ctx.event().seq, ctx.attempt(), error);
  };
  eventlite::Processor processor(store, options);

  // The history: written through the delivery's transaction, so the row and the
  // checkpoint commit together.
  processor.subscribe(
      "history",
      [](const eventlite::Context& ctx) {
        const eventlite::Event& e = ctx.event();
        std::string status = e.type == "UserCreated"    ? "pending"
                             : e.type == "UserApproved" ? "approved"
                                                        : "rejected";
        SQLite::Statement insert(
            ctx.transaction().database(),
            "INSERT INTO user_status_history (stream, seq, status, at) "
            "VALUES (?, ?, ?, ?)");
        insert.bind(1, e.stream);
        insert.bind(2, static_cast<std::int64_t>(e.seq));
        insert.bind(3, status);
        insert.bind(4, e.time);
        insert.exec();
      },
      {.types = {"UserCreated", "UserApproved", "UserRejected"}, .transactional = true});

  // The notifier: a flaky mail server fails every third event on its first attempt.
  eventlite::RetryPolicy quick_retries{.max_attempts = 5,
                                       .base = std::chrono::milliseconds(50)};
  processor.subscribe(
      "notify",
      [](const eventlite::Context& ctx) {
        const eventlite::Event& e = ctx.event();
        if (e.seq % 3 == 0 && ctx.attempt() == 1)
          throw std::runtime_error("smtp: 421 service not available");
        json data = e.data_json();
        if (e.type == "UserCreated") {
          say("   notify   seq {:>3}  mail to {}: welcome, {}{}\n", e.seq,
              data.value("email", "?"), data.value("name", "?"),
              ctx.attempt() > 1 ? fmt::format(" (attempt {})", ctx.attempt()) : "");
        } else if (e.type == "UserApproved") {
          say("   notify   seq {:>3}  SMS to {}: your account is approved{}\n", e.seq,
              e.stream,
              ctx.attempt() > 1 ? fmt::format(" (attempt {})", ctx.attempt()) : "");
        } else if (e.type == "UserRejected") {
          say("   notify   seq {:>3}  mail to {}: we could not approve your account{}\n",
              e.seq, e.stream,
              ctx.attempt() > 1 ? fmt::format(" (attempt {})", ctx.attempt()) : "");
        }
      },
      {.retry = quick_retries});

  processor.start();
  if (!processor.wait_idle(std::chrono::seconds(30)))
    throw std::runtime_error("the processor did not finish within 30 s");
  processor.stop();
  for (const auto& m : processor.metrics())
    fmt::print("   {:<8} delivered {}, failed {}, retried {}, dead {}, at seq {}\n",
               m.name, m.delivered, m.failed, m.retried, m.dead, m.position);
  fmt::print("\n");
}

void print_history(const std::string& path, eventlite::Seq from) {
  fmt::print("6. user_status_history, kept by the \"history\" handler (this run)\n");
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db,
                      "SELECT seq, stream, status, at FROM user_status_history "
                      "WHERE seq >= ? ORDER BY seq");
  q.bind(1, static_cast<std::int64_t>(from));
  fmt::print("  {:>4}  {:<8} {:<9} {}\n", "seq", "stream", "status", "at");
  while (q.executeStep())
    fmt::print("  {:>4}  {:<8} {:<9} {}\n", q.getColumn(0).getInt64(),
               q.getColumn(1).getString(), q.getColumn(2).getString(),
               q.getColumn(3).getString());
  fmt::print("\n");
}

void print_status(const eventlite::Store& store) {
  const eventlite::StatusReport report = eventlite::status(store);
  fmt::print("7. Status (as `eventlite status DB` prints it)\n");
  fmt::print("   head {}\n", report.head);
  fmt::print("   {:<12} {:>8} {:>5} {:>8} {:>5}  {}\n", "subscription", "position", "lag",
             "retrying", "dead", "lease");
  for (const auto& s : report.subscriptions)
    fmt::print("   {:<12} {:>8} {:>5} {:>8} {:>5}  {}\n", s.name, s.position, s.lag,
               s.owed, s.dead, s.lease ? "released at " + s.lease->expires : "-");
}

int run(const std::string& path) {
  auto store = eventlite::Store::open(path);
  const eventlite::Seq head_before = store.head();
  const std::string run_id = eventlite::new_event_id();

  fmt::print("eventlite sign-up demo on {}\n", path);
  if (head_before == 0) {
    fmt::print("A new store: no events yet.\n\n");
  } else {
    fmt::print("The store already holds {} events: this run continues after seq {}.\n\n",
               head_before, head_before);
  }

  // 1. One transaction: the application's rows and its events commit together.
  fmt::print("1. Sign up three users, approve one, reject one: ONE transaction\n");
  std::int64_t first_id = 0;
  std::string created_third;  // id of the third user's UserCreated event
  {
    auto tx = store.transaction();
    SQLite::Database& db = tx.database();
    db.exec(
        "CREATE TABLE IF NOT EXISTS users ("
        "  id     INTEGER PRIMARY KEY,"
        "  name   TEXT NOT NULL,"
        "  email  TEXT NOT NULL UNIQUE,"
        "  status TEXT NOT NULL DEFAULT 'pending')");
    db.exec(
        "CREATE TABLE IF NOT EXISTS user_status_history ("
        "  stream TEXT NOT NULL,"
        "  seq    INTEGER NOT NULL,"
        "  status TEXT NOT NULL,"
        "  at     TEXT NOT NULL)");
    first_id = db.execAndGet("SELECT coalesce(max(id), 0) + 1 FROM users").getInt64();

    std::vector<std::string> created;  // UserCreated event ids, for causation
    for (std::int64_t id = first_id; id < first_id + 3; ++id) {
      const Person& p = kPeople[(id - 1) % kPeopleCount];
      // Past the list, the same names come back with numbered addresses.
      std::string email = id <= kPeopleCount
                              ? fmt::format("{}@example.com", p.first)
                              : fmt::format("{}{}@example.com", p.first, id);
      SQLite::Statement insert(db,
                               "INSERT INTO users (id, name, email) VALUES (?, ?, ?)");
      insert.bind(1, id);
      insert.bind(2, p.name);
      insert.bind(3, email);
      insert.exec();

      auto event = eventlite::make_event(
          "UserCreated", {{"name", p.name}, {"email", email}}, metadata(run_id));
      event.id = eventlite::new_event_id();
      created.push_back(event.id);
      // A new user is a new stream: no_stream() refuses to append to an existing one.
      auto seq = tx.append(stream_of(id), event, eventlite::Expected::no_stream());
      fmt::print("   {:<8} {:<18} {:<24} UserCreated   seq {}\n", stream_of(id), p.name,
                 email, seq);
    }
    created_third = created[2];

    auto decide = [&](std::int64_t id, const std::string& status, json data,
                      const std::string& cause) {
      SQLite::Statement update(db, "UPDATE users SET status = ? WHERE id = ?");
      update.bind(1, status);
      update.bind(2, id);
      update.exec();
      std::string type = status == "approved" ? "UserApproved" : "UserRejected";
      auto seq = tx.append(stream_of(id),
                           eventlite::make_event(type, data, metadata(run_id, cause)),
                           eventlite::Expected::exactly(1));
      fmt::print("   {:<8} {:<43} {:<13} seq {}\n", stream_of(id), status, type, seq);
    };
    decide(first_id, "approved", {{"by", "ann"}}, created[0]);
    decide(first_id + 1, "rejected", {{"by", "ann"}, {"reason", "email bounced"}},
           created[1]);

    tx.commit();
    fmt::print("   committed: 3 rows in users, 5 events, in one commit\n\n");
  }

  // 2. Optimistic concurrency: two reviewers saw the third user at the same version.
  const std::int64_t third = first_id + 2;
  const std::string third_stream = stream_of(third);
  fmt::print("2. Two reviewers decide on {} at the same time\n", third_stream);
  const eventlite::Version seen = store.stream_version(third_stream);
  fmt::print("   both read {} at version {}\n", third_stream, seen);

  eventlite::NewEvent approval = eventlite::make_event("UserApproved", {{"by", "bob"}},
                                                       metadata(run_id, created_third));
  approval.id = eventlite::new_event_id();
  eventlite::Seq approval_seq = 0;
  {
    auto tx = store.transaction();
    SQLite::Statement update(tx.database(),
                             "UPDATE users SET status = 'approved' WHERE id = ?");
    update.bind(1, third);
    update.exec();
    approval_seq = tx.append(third_stream, approval, eventlite::Expected::exactly(seen));
    tx.commit();
    fmt::print("   bob approves first:  UserApproved seq {}, {} is now at version {}\n",
               approval_seq, third_stream, store.stream_version(third_stream));
  }
  {
    auto tx = store.transaction();
    SQLite::Statement update(tx.database(),
                             "UPDATE users SET status = 'rejected' WHERE id = ?");
    update.bind(1, third);
    update.exec();
    try {
      tx.append(
          third_stream,
          eventlite::make_event("UserRejected", {{"by", "cleo"}, {"reason", "spam"}},
                                metadata(run_id, created_third)),
          eventlite::Expected::exactly(seen));
      tx.commit();
      fmt::print("   cleo's rejection was stored: the version check did not work!\n");
      return 1;
    } catch (const eventlite::VersionConflict& conflict) {
      // Nothing of cleo's transaction is kept: neither the event nor the UPDATE.
      tx.rollback();
      fmt::print("   cleo rejects second: refused, {}\n", conflict.what());
      fmt::print(
          "   her transaction rolled back, {} stays approved; she would re-read and "
          "decide again\n\n",
          third_stream);
    }
  }

  // 3. Idempotency: a client that retries an append it is unsure of writes nothing new.
  fmt::print("3. Bob's client retries the approval (same event id {})\n", approval.id);
  const eventlite::Seq head_now = store.head();
  const eventlite::Seq retried = store.append(third_stream, approval);
  fmt::print("   append returned seq {} again; the store still ends at seq {} ({})\n\n",
             retried, store.head(),
             store.head() == head_now ? "no duplicate" : "DUPLICATE!");

  // 4. Read back what this run wrote, then one user's whole history.
  eventlite::ReadOptions this_run;
  this_run.from = head_before + 1;
  std::vector<eventlite::Event> events = store.read_all(this_run).to_vector();
  fmt::print("4. The events of this run, read back with store.read_all from seq {}\n",
             this_run.from);
  if (!events.empty()) {
    fmt::print("  {:>4}  {:<8} {:>3}  {:<13} {:<13} {}\n", "seq", "stream", "ver", "type",
               events.front().time.substr(0, 10), "data");
    for (const eventlite::Event& e : events) print_event(e);
    fmt::print("  metadata of seq {}: {}\n", events.back().seq, events.back().metadata);
  }

  fmt::print("\n   and the history of {}, with store.read_stream:\n", third_stream);
  for (const eventlite::Event& e : store.read_stream(third_stream)) {
    fmt::print("     v{}  {:<13} {}\n", e.version, e.type, describe(e));
  }
  fmt::print("\n");

  Totals t = count_users(path);
  fmt::print(
      "Totals: {} users ({} approved, {} rejected, {} pending), {} events in {} "
      "streams\n\n",
      t.users, t.approved, t.rejected, t.pending, store.head(), store.streams().size());

  process(store);
  print_history(path, head_before + 1);
  print_status(store);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DB\n  DB: the SQLite file to create or continue\n",
                 argv[0]);
    return 2;
  }
  try {
    return run(argv[1]);
  } catch (const eventlite::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  }
  return 1;
}
