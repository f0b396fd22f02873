#pragma once

// Event-sourced aggregates: state folded from a stream with the application's own
// function, as it is now or as it was at a seq or a time; snapshots that spare long
// streams a full fold; and decisions retried on a version conflict.
//
//   struct Account { std::int64_t balance = 0; };
//   const eventlite::Aggregate<Account> account{
//       .name = "account",
//       .apply = [](Account& a, const eventlite::Event& e) {
//         a.balance += e.data_json().at("amount").get<std::int64_t>();
//       },
//       .snapshot_every = 500};
//   auto now = eventlite::load(store, account, "account-7");
//   auto then = eventlite::load(store, account, "account-7", {.as_of =
//   "2026-11-01T00:00:00.000Z"}); eventlite::decide(store, account, "account-7", [](const
//   Account& a) {
//     std::vector<eventlite::NewEvent> out;
//     if (a.balance >= 30) out.push_back(eventlite::make_event("Withdrawn", {{"amount",
//     -30}})); return out;
//   });
//
// Events are folded through the store's upcasters (upcast.hpp), as handlers see them.

#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/event.hpp"
#include "eventlite/store.hpp"

namespace eventlite {

// A fold over one stream.
// Thread safety: a value; load() and decide() may use one from several threads.
template <class State>
struct Aggregate {
  // Names its snapshots (eventlite_snapshots.name): folds of different shapes over
  // one stream need different names.
  std::string name = {};
  State initial = {};
  std::function<void(State&, const Event&)> apply = {};
  // Take a snapshot when a load folded at least this many events past the last one;
  // 0: never. Loads use the latest snapshot of the current snapshot_version.
  std::uint64_t snapshot_every = 0;
  // Bump it when State's shape, apply or the store's upcasters change: snapshots of
  // other versions are ignored (and replaced by the next one taken), never an error.
  // A snapshot that does not convert is ignored and replaced the same way.
  int snapshot_version = 1;
  // State to JSON and back, for snapshots; empty: nlohmann's to_json / from_json.
  std::function<nlohmann::json(const State&)> to_json = {};
  std::function<State(const nlohmann::json&)> from_json = {};
};

// An aggregate as loaded.
// Thread safety: a value.
template <class State>
struct Loaded {
  State state = {};
  // The stream version folded up to: the expected version of the next append
  // (Expected::exactly(version)), 0 for a stream with no events.
  Version version = 0;
  Seq seq = 0;  // the seq of that event
  bool from_snapshot = false;
  std::uint64_t folded = 0;  // events folded by this load (past the snapshot)
};

// Which state to load: the current one, or as of a point in the log.
// Thread safety: a value.
struct LoadOptions {
  Seq to = std::numeric_limits<Seq>::max();  // fold events up to this seq, inclusive
  // Fold events committed up to this time, inclusive, in the store's form
  // (2026-11-23T10:00:00.000Z; InvalidArgument otherwise); empty: now. The fold stops
  // at the stream's first later event, so imported events with older times than
  // their predecessors end it there. Uses no snapshot.
  std::string as_of = {};
};

namespace detail {

struct SnapshotRow {
  Version version = 0;
  Seq seq = 0;
  std::string state = {};
};
// The snapshot of `name` for `stream` at `schema_version`, if any with seq <= to.
std::optional<SnapshotRow> read_snapshot(const Store& store, std::string_view name,
                                         std::string_view stream, int schema_version,
                                         Seq to);
// Replaces the snapshot (one at the same version too: it may not have converted);
// false if the store is read-only, this thread holds the store's transaction (a
// load inside a transactional handler), or the write fails (busy, disk full;
// logged at warn): a snapshot is an optimisation, never an error.
bool write_snapshot(Store& store, std::string_view name, std::string_view stream,
                    int schema_version, Version version, Seq seq,
                    const std::string& state) noexcept;

// Throws InvalidArgument unless `as_of` is empty or a time in the store's form.
void check_as_of(std::string_view as_of);

template <class S>
concept JsonState = requires(const S& s, const nlohmann::json& j) {
  nlohmann::json(s);
  j.get<S>();
};

template <class State>
nlohmann::json state_to_json(const Aggregate<State>& a, const State& s) {
  if (a.to_json) return a.to_json(s);
  if constexpr (JsonState<State>)
    return nlohmann::json(s);
  else
    throw InvalidArgument("aggregate " + a.name +
                          ": snapshots need to_json and from_json");
}

template <class State>
State state_from_json(const Aggregate<State>& a, const nlohmann::json& j) {
  if (a.from_json) return a.from_json(j);
  if constexpr (JsonState<State>)
    return j.get<State>();
  else
    throw InvalidArgument("aggregate " + a.name +
                          ": snapshots need to_json and from_json");
}

// Folds the stream's events after `into.version` (up to the options' bounds) into it.
template <class State>
void fold_more(const Store& store, const Aggregate<State>& a, std::string_view stream,
               const LoadOptions& o, Loaded<State>& into) {
  for (const Event& e : store.read_stream(stream, into.version + 1)) {
    if (e.seq > o.to || (!o.as_of.empty() && e.time > o.as_of)) break;
    a.apply(into.state, e);
    into.version = e.version;
    into.seq = e.seq;
    ++into.folded;
  }
}

}  // namespace detail

// Folds `stream` with `aggregate.apply`, from its latest usable snapshot when it
// takes snapshots, and takes a new one when this load folded snapshot_every events
// or more (a load of the current state only; never fatal). Throws InvalidArgument
// for an aggregate without apply (or without a name when it takes snapshots),
// StorageError if a read fails, and whatever apply throws.
template <class State>
Loaded<State> load(Store& store, const Aggregate<State>& aggregate,
                   std::string_view stream, const LoadOptions& options = {}) {
  if (!aggregate.apply) throw InvalidArgument("aggregate: apply is empty");
  const bool snapshots = aggregate.snapshot_every > 0;
  if (snapshots && aggregate.name.empty())
    throw InvalidArgument("aggregate: snapshots need a name");
  detail::check_as_of(options.as_of);
  Loaded<State> loaded{.state = aggregate.initial};
  if (snapshots && options.as_of.empty()) {
    if (auto row = detail::read_snapshot(store, aggregate.name, stream,
                                         aggregate.snapshot_version, options.to)) {
      try {
        loaded.state =
            detail::state_from_json(aggregate, nlohmann::json::parse(row->state));
        loaded.version = row->version;
        loaded.seq = row->seq;
        loaded.from_snapshot = true;
      } catch (const InvalidArgument&) {
        throw;
      } catch (const std::exception&) {
        loaded.state = aggregate.initial;  // a snapshot that does not convert: unused
      }
    }
  }
  detail::fold_more(store, aggregate, stream, options, loaded);
  const bool current =
      options.as_of.empty() && options.to == std::numeric_limits<Seq>::max();
  if (snapshots && current && loaded.folded >= aggregate.snapshot_every)
    detail::write_snapshot(store, aggregate.name, stream, aggregate.snapshot_version,
                           loaded.version, loaded.seq,
                           detail::state_to_json(aggregate, loaded.state).dump());
  return loaded;
}

// How decide() went.
// Thread safety: a value.
struct Decided {
  std::vector<Seq> seqs = {};  // what it appended (empty: the decision was nothing)
  Version version = 0;         // the stream's version after it
  int attempts = 1;            // 1 + the conflicts it retried
};

// Loads `stream`, asks `decision(state)` for the events to append, and appends them
// expecting the version it loaded (optimistic concurrency). On a VersionConflict it
// folds only the events appended since that version and asks again, up to
// `max_attempts` in all; then the last VersionConflict propagates. `decision` may
// run more than once, so it must not have side effects of its own.
template <class State, class Decision>
requires std::invocable<Decision&, const State&> Decided
decide(Store& store, const Aggregate<State>& aggregate, std::string_view stream,
       Decision decision, int max_attempts = 5) {
  if (max_attempts < 1) throw InvalidArgument("decide: max_attempts must be at least 1");
  Loaded<State> loaded = load(store, aggregate, stream);
  for (int attempt = 1;; ++attempt) {
    const std::vector<NewEvent> events = decision(std::as_const(loaded.state));
    if (events.empty()) return {{}, loaded.version, attempt};
    try {
      std::vector<Seq> seqs =
          store.append(stream, events, Expected::exactly(loaded.version));
      return {std::move(seqs), loaded.version + static_cast<Version>(events.size()),
              attempt};
    } catch (const VersionConflict&) {
      if (attempt >= max_attempts) throw;
    }
    detail::fold_more(store, aggregate, stream, LoadOptions{}, loaded);
  }
}

}  // namespace eventlite
