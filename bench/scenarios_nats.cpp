// Figures 15 and 16: forwarding to JetStream, and bridging it in. A nats-server of the
// benchmark's own (127.0.0.1, a free port, JetStream with file storage in the temp dir)
// takes the same messages from both sides, into the stream EVENTS (subjects events.>),
// deleted before each run:
// - eventlite: a processor with the NATS sink (eventlite::nats, JetStream, window 256)
//   drains a copy of a 200k-event file: reading, encoding each envelope, publishing
//   asynchronously with Nats-Msg-Id, Eventlite-Seq and Eventlite-Store headers,
//   waiting for each batch's acks, checkpoints;
// - the baseline: a raw libnats loop publishing the same messages (envelopes encoded
//   beforehand, untimed) with js_PublishMsgAsync, the same headers and at most 256
//   awaiting acks, then js_PublishAsyncComplete.
// Figure 16 fills EVENTS with those messages (untimed), then drains it through a new
// durable pull consumer into a new file (durability full):
// - eventlite: nats::Bridge::step until all are in (fetch 512, each batch appended in one
//   transaction idempotently by id, then an ack a message and a flush);
// - the baseline: a raw libnats loop on a consumer of the same settings (explicit
//   acks, at most 512 awaiting them): fetch 512, the batch inserted by RawInbox
//   (bench/raw_inbox.hpp), ack each, flush.
// Both fetch with the same 20 ms wait and stop when the last message is stored.

#include <nats/nats.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "bench/broker_server.hpp"
#include "bench/raw_inbox.hpp"
#include "bench/scenarios.hpp"
#include "eventlite/envelope.hpp"
#include "eventlite/nats.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/store.hpp"

namespace eventlite::bench {

namespace {

using namespace std::chrono_literals;

bool nats_ready(const std::string& url) {
  natsConnection* c = nullptr;
  const bool up = natsConnection_ConnectTo(&c, url.c_str()) == NATS_OK;
  natsConnection_Destroy(c);
  return up;
}

std::string nats_url(int port) {
  return "nats://127.0.0.1:" + std::to_string(port);
}

// nats-server for the benchmark's figures, started on first use, killed at exit.
struct NatsServer {
  explicit NatsServer(const std::filesystem::path& dir)
      : process({"nats-server", "-a", "127.0.0.1", "-p", "{port}", "-js", "-sd",
                 (dir / "jetstream").string()},
                [](int port) { return nats_ready(nats_url(port)); }) {}
  std::string url() const { return nats_url(process.port()); }
  BrokerServer process;
};

NatsServer& server(Context& ctx) {
  static NatsServer s(ctx.new_path("nats").parent_path());
  return s;
}

// A connection and JetStream context; the stream EVENTS deleted (untimed).
struct Js {
  explicit Js(const std::string& url, jsOptions* options = nullptr) {
    if (natsConnection_ConnectTo(&conn, url.c_str()) != NATS_OK ||
        natsConnection_JetStream(&js, conn, options) != NATS_OK)
      throw std::runtime_error("cannot reach nats-server");
  }
  ~Js() {
    jsCtx_Destroy(js);
    natsConnection_Destroy(conn);
  }
  void reset_stream() {
    js_DeleteStream(js, "EVENTS", nullptr, nullptr);  // missing the first time
  }
  std::uint64_t messages() {
    jsStreamInfo* info = nullptr;
    if (js_GetStreamInfo(&info, js, "EVENTS", nullptr, nullptr) != NATS_OK) return 0;
    const std::uint64_t n = info->State.Msgs;
    jsStreamInfo_Destroy(info);
    return n;
  }
  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;
};

void create_stream(jsCtx* js) {
  const char* subjects[] = {"events.>"};
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = "EVENTS";
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  jsStreamInfo* info = nullptr;
  if (js_AddStream(&info, js, &cfg, nullptr, nullptr) != NATS_OK)
    throw std::runtime_error("cannot create the stream");
  jsStreamInfo_Destroy(info);
}

double jetstream_eventlite(Context& ctx, std::size_t n) {
  NatsServer& nats_server = server(ctx);
  Js admin(nats_server.url());
  admin.reset_stream();
  const ScratchFile file(ctx.new_path("forward-nats"));
  copy_file_synced(ctx.fixture(n), file.path());
  Store store = Store::open(file.path());
  Processor processor(store);
  nats::SinkOptions options;
  options.url = nats_server.url();
  options.jetstream = true;
  options.create_stream = true;
  SubscriptionOptions sub;
  sub.max_lanes = 1;
  processor.sink("to-nats", nats::make_sink(options), sub);
  const double seconds = drain_sink(processor, static_cast<Seq>(n));
  if (admin.messages() != n) throw std::runtime_error("the stream lacks events");
  return static_cast<double>(n) / seconds;
}

// The figure's messages, encoded beforehand (untimed).
struct Message {
  std::string subject, id, seq, payload;
};
const std::vector<Message>& messages_of(Context& ctx, std::size_t n) {
  static std::vector<Message> messages;
  if (messages.size() == n) return messages;
  messages.clear();
  StoreOptions options;
  options.read_only = true;
  const Store store = Store::open(ctx.fixture(n), options);
  for (const Event& e : store.read_all())
    messages.push_back({"events." + e.type, e.id, std::to_string(e.seq), to_envelope(e)});
  return messages;
}

// The raw loop of figure 15: every message published asynchronously, then the acks.
void publish_all(Js& js, const std::vector<Message>& messages) {
  for (const Message& m : messages) {
    natsMsg* msg = nullptr;
    natsMsg_Create(&msg, m.subject.c_str(), nullptr, m.payload.data(),
                   static_cast<int>(m.payload.size()));
    natsMsgHeader_Set(msg, "Nats-Msg-Id", m.id.c_str());
    natsMsgHeader_Set(msg, "Eventlite-Seq", m.seq.c_str());
    natsMsgHeader_Set(msg, "Eventlite-Store", "0193a2b4-5c6d-4e7f-8a9b-0c1d2e3f4a5b");
    if (js_PublishMsgAsync(js.js, &msg, nullptr) != NATS_OK)
      throw std::runtime_error("raw publish failed");
    natsMsg_Destroy(msg);
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 60000;
  if (js_PublishAsyncComplete(js.js, &po) != NATS_OK)
    throw std::runtime_error("raw publish: acks missing");
}

jsOptions async_options() {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = 256;
  return jo;
}

double jetstream_raw(Context& ctx, std::size_t n) {
  NatsServer& nats_server = server(ctx);
  const std::vector<Message>& messages = messages_of(ctx, n);
  jsOptions jo = async_options();
  Js js(nats_server.url(), &jo);
  js.reset_stream();
  create_stream(js.js);
  const Stopwatch watch;
  publish_all(js, messages);
  const double seconds = watch.seconds();
  if (js.messages() != n) throw std::runtime_error("the raw loop's stream lacks events");
  return static_cast<double>(n) / seconds;
}

constexpr std::chrono::milliseconds kFetchWait{20};

// EVENTS filled with the figure's messages (untimed); returns a new durable's name.
std::string fill_for_bridge(Context& ctx, std::size_t n) {
  static int durables = 0;
  jsOptions jo = async_options();
  Js js(server(ctx).url(), &jo);
  js.reset_stream();
  create_stream(js.js);
  publish_all(js, messages_of(ctx, n));
  if (js.messages() != n) throw std::runtime_error("the stream lacks events");
  return "bench-" + std::to_string(++durables);
}

double bridge_eventlite(Context& ctx, std::size_t n) {
  nats::BridgeOptions options;
  options.url = server(ctx).url();
  options.durable = fill_for_bridge(ctx, n);
  options.block = kFetchWait;
  const ScratchFile file(ctx.new_path("bridge-nats"));
  Store store = Store::open(file.path());
  nats::Bridge bridge(store, options);
  const Stopwatch watch;
  std::size_t taken = 0;
  while (taken < n && watch.seconds() < 120) taken += bridge.step();
  const double seconds = watch.seconds();
  if (taken != n || store.head() != static_cast<Seq>(n))
    throw std::runtime_error("the bridge took in " + std::to_string(taken) + " messages");
  return static_cast<double>(n) / seconds;
}

double bridge_raw(Context& ctx, std::size_t n) {
  const std::string durable = fill_for_bridge(ctx, n);
  Js js(server(ctx).url());
  jsConsumerConfig cfg;
  jsConsumerConfig_Init(&cfg);
  cfg.Durable = durable.c_str();
  cfg.AckPolicy = js_AckExplicit;
  cfg.MaxAckPending = 512;
  jsConsumerInfo* info = nullptr;
  if (js_AddConsumer(&info, js.js, "EVENTS", &cfg, nullptr, nullptr) != NATS_OK)
    throw std::runtime_error("cannot create the consumer");
  jsConsumerInfo_Destroy(info);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = "EVENTS";
  so.Consumer = durable.c_str();
  so.ManualAck = true;
  natsSubscription* sub = nullptr;
  if (js_PullSubscribe(&sub, js.js, nullptr, durable.c_str(), nullptr, &so, nullptr) !=
      NATS_OK)
    throw std::runtime_error("cannot subscribe");
  const ScratchFile file(ctx.new_path("bridge-nats-baseline"));
  RawInbox inbox(file.path());
  std::size_t taken = 0;
  const Stopwatch watch;
  while (taken < n && watch.seconds() < 120) {
    natsMsgList list{};
    const natsStatus s = natsSubscription_Fetch(&list, sub, 512, kFetchWait.count(), nullptr);
    if (s == NATS_TIMEOUT) continue;
    if (s != NATS_OK)
      throw std::runtime_error(std::string("raw fetch failed: ") + natsStatus_GetText(s));
    inbox.begin();
    for (int i = 0; i < list.Count; ++i)
      inbox.insert(std::string_view(natsMsg_GetData(list.Msgs[i]),
                                    static_cast<std::size_t>(
                                        natsMsg_GetDataLength(list.Msgs[i]))));
    inbox.commit();
    for (int i = 0; i < list.Count; ++i) natsMsg_Ack(list.Msgs[i], nullptr);
    natsConnection_Flush(js.conn);
    taken += static_cast<std::size_t>(list.Count);
    natsMsgList_Destroy(&list);
  }
  const double seconds = watch.seconds();
  natsSubscription_Destroy(sub);
  if (taken != n) throw std::runtime_error("the raw bridge took " + std::to_string(taken));
  return static_cast<double>(n) / seconds;
}

}  // namespace

void add_nats_figures(Bench& bench, Context& ctx) {
  const std::size_t n = ctx.sizes().forward_events;
  bench.add(FigureSpec{
      .name = "forward " + count_label(n) + " events to JetStream",
      .unit = "events/s",
      .better = Better::higher,
      .threshold = Threshold::ratio_at_least(0.7),
      .eventlite = [&ctx, n] { return jetstream_eventlite(ctx, n); },
      .baseline = [&ctx, n] { return jetstream_raw(ctx, n); },
  });
  bench.add(FigureSpec{
      .name = "bridge " + count_label(n) + " events in from JetStream",
      .unit = "events/s",
      .better = Better::higher,
      .threshold = Threshold::ratio_at_least(0.5),
      .eventlite = [&ctx, n] { return bridge_eventlite(ctx, n); },
      .baseline = [&ctx, n] { return bridge_raw(ctx, n); },
  });
}

}  // namespace eventlite::bench
