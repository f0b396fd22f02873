// How `eventlite status` prints a StatusReport: aligned tables for people, or one
// JSON object (docs/cli.md#status).

#include "tools/status_output.hpp"

#include <fmt/core.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "store/time_text.hpp"
#include "tools/output.hpp"

namespace eventlite::cli {
namespace {

// A lag in time for people: "-" for none, then 0.4s, 12.0s, 3m05s, 2h10m, 4d03h.
std::string format_lag_time(std::chrono::milliseconds lag) {
  const auto ms = lag.count();
  if (ms <= 0) return "-";
  if (ms < 60'000) return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000.0);
  const auto s = ms / 1000;
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{:02}h", s / 86400, (s % 86400) / 3600);
}

// A broker round trip for people: "-" for none, then 850us, 2.4ms, 1.20s.
std::string format_round_trip(std::chrono::microseconds t) {
  const auto us = t.count();
  if (us <= 0) return "-";
  if (us < 1000) return fmt::format("{}us", us);
  if (us < 1'000'000) return fmt::format("{:.1f}ms", static_cast<double>(us) / 1000.0);
  return fmt::format("{:.2f}s", static_cast<double>(us) / 1e6);
}

// A lease as `status --json` shows it: {"owner","expires"}, or null.
nlohmann::ordered_json lease_json(const std::optional<LeaseInfo>& lease) {
  if (!lease) return nullptr;
  return {{"owner", lease->owner}, {"expires", lease->expires}};
}

// `status --json`'s object for one subscription, keys in DESIGN.md's order and the
// additions after them.
nlohmann::ordered_json status_json(const SubscriptionStatus& sub) {
  nlohmann::ordered_json sink = nullptr;
  if (sub.sink) {
    const SinkStatus& k = *sub.sink;
    sink = {{"owner", k.owner},
            {"failing_since", k.failing_since ? nlohmann::ordered_json(
                                                    detail::format_time(*k.failing_since))
                                              : nlohmann::ordered_json(nullptr)},
            {"last_error", k.last_error},
            {"forwarded", k.forwarded},
            {"failed", k.failed},
            {"round_trip_p50_us", k.round_trip_p50.count()},
            {"round_trip_p99_us", k.round_trip_p99.count()},
            {"updated", k.updated}};
  }
  nlohmann::ordered_json standbys = nlohmann::ordered_json::array();
  for (const Standby& w : sub.standbys)
    standbys.push_back({{"owner", w.owner}, {"since", w.since}});
  return {{"name", sub.name},
          {"position", sub.position},
          {"lag", sub.lag},
          {"lag_ms", sub.lag_time.count()},
          {"retrying", sub.owed},
          {"dead", sub.dead},
          {"held", sub.held},
          {"lease", lease_json(sub.lease)},
          {"state", activity_name(sub.activity, sub.sink.has_value())},
          {"sink", std::move(sink)},
          {"standbys", std::move(standbys)}};
}

nlohmann::ordered_json bridge_json(const BridgeStatus& b) {
  return {{"name", b.name},       {"broker", b.broker},
          {"source", b.source},   {"last_entry", b.last_entry},
          {"stored", b.stored},   {"rejected", b.rejected},
          {"updated", b.updated}, {"lease", lease_json(b.lease)}};
}

// The tables after the subscriptions': each sink's broker, the processors standing
// by, the shadow rebuilds, the bridges; each only when it has rows.
void print_sinks_and_standbys(std::ostream& out, const StatusReport& report) {
  std::vector<std::vector<std::string>> sinks, standbys;
  for (const SubscriptionStatus& sub : report.subscriptions) {
    if (sub.sink) {
      const SinkStatus& k = *sub.sink;
      sinks.push_back({sub.name, std::string(activity_name(sub.activity, true)),
                       k.failing_since ? detail::format_time(*k.failing_since) : "-",
                       std::to_string(k.forwarded), std::to_string(k.failed),
                       format_round_trip(k.round_trip_p50),
                       format_round_trip(k.round_trip_p99),
                       k.last_error.empty() ? "-" : k.last_error});
    }
    for (const Standby& w : sub.standbys)
      standbys.push_back({sub.name, w.owner, w.since});
  }
  if (!sinks.empty()) {
    out << '\n';
    print_table(out,
                {{"SINK", Align::left},
                 {"STATE", Align::left},
                 {"FAILING_SINCE", Align::left},
                 {"FORWARDED", Align::right},
                 {"FAILED", Align::right},
                 {"RTT_P50", Align::right},
                 {"RTT_P99", Align::right},
                 {"LAST_ERROR", Align::left}},
                sinks);
  }
  if (!standbys.empty()) {
    out << '\n';
    print_table(out,
                {{"STANDING_BY_FOR", Align::left},
                 {"OWNER", Align::left},
                 {"SINCE", Align::left}},
                standbys);
  }
  std::vector<std::vector<std::string>> bridges;
  for (const BridgeStatus& b : report.bridges)
    bridges.push_back({b.name, b.broker + " " + b.source, b.last_entry,
                       std::to_string(b.stored), std::to_string(b.rejected), b.updated,
                       b.lease ? b.lease->owner : "-", b.lease ? b.lease->expires : "-"});
  std::vector<std::vector<std::string>> rebuilds;
  for (const RebuildStatus& r : report.rebuilds)
    rebuilds.push_back(
        {r.subscription, std::to_string(r.from), std::to_string(r.position), r.started,
         r.updated, r.lease ? r.lease->owner : "-", r.lease ? r.lease->expires : "-"});
  if (!rebuilds.empty()) {
    out << '\n';
    print_table(out,
                {{"REBUILDING", Align::left},
                 {"FROM", Align::right},
                 {"SHADOW_AT", Align::right},
                 {"STARTED", Align::left},
                 {"UPDATED", Align::left},
                 {"LEASE_OWNER", Align::left},
                 {"LEASE_EXPIRES", Align::left}},
                rebuilds);
  }
  if (!bridges.empty()) {
    out << '\n';
    print_table(out,
                {{"BRIDGE", Align::left},
                 {"FROM", Align::left},
                 {"LAST_ENTRY", Align::left},
                 {"STORED", Align::right},
                 {"REJECTED", Align::right},
                 {"UPDATED", Align::left},
                 {"LEASE_OWNER", Align::left},
                 {"LEASE_EXPIRES", Align::left}},
                bridges);
  }
}

}  // namespace

void print_status_json(std::ostream& out, const StatusReport& report) {
  nlohmann::ordered_json subscriptions = nlohmann::ordered_json::array();
  for (const SubscriptionStatus& sub : report.subscriptions)
    subscriptions.push_back(status_json(sub));
  nlohmann::ordered_json bridges = nlohmann::ordered_json::array();
  for (const BridgeStatus& b : report.bridges) bridges.push_back(bridge_json(b));
  nlohmann::ordered_json rebuilds = nlohmann::ordered_json::array();
  for (const RebuildStatus& r : report.rebuilds)
    rebuilds.push_back({{"subscription", r.subscription},
                        {"from", r.from},
                        {"position", r.position},
                        {"started", r.started},
                        {"updated", r.updated},
                        {"lease", lease_json(r.lease)}});
  nlohmann::ordered_json store = {{"id", nullptr}, {"name", nullptr}};
  if (!report.store.id.empty()) store["id"] = report.store.id;
  if (!report.store.name.empty()) store["name"] = report.store.name;
  print_json_line(out, {{"store", std::move(store)},
                        {"head", report.head},
                        {"subscriptions", std::move(subscriptions)},
                        {"bridges", std::move(bridges)},
                        {"rebuilds", std::move(rebuilds)}});
}

void print_status_tables(std::ostream& out, const StatusReport& report) {
  out << "store " << (report.store.id.empty() ? "-" : report.store.id);
  if (!report.store.name.empty()) out << " (" << report.store.name << ')';
  out << '\n'
      << "SQLite " << sqlite3_libversion() << '\n'
      << "head " << report.head << '\n';
  std::vector<std::vector<std::string>> rows;
  for (const SubscriptionStatus& sub : report.subscriptions) {
    rows.push_back(
        {sub.name, std::string(activity_name(sub.activity, sub.sink.has_value())),
         std::to_string(sub.position), std::to_string(sub.lag),
         format_lag_time(sub.lag_time), std::to_string(sub.owed),
         std::to_string(sub.dead), std::to_string(sub.held),
         sub.lease ? sub.lease->owner : "-", sub.lease ? sub.lease->expires : "-"});
  }
  print_table(out,
              {{"SUBSCRIPTION", Align::left},
               {"STATE", Align::left},
               {"POSITION", Align::right},
               {"LAG", Align::right},
               {"LAG_TIME", Align::right},
               {"RETRYING", Align::right},
               {"DEAD", Align::right},
               {"HELD", Align::right},
               {"LEASE_OWNER", Align::left},
               {"LEASE_EXPIRES", Align::left}},
              rows);
  print_sinks_and_standbys(out, report);
}

}  // namespace eventlite::cli
