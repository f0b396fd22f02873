// Figure 15: forwarding to JetStream. A nats-server of the benchmark's own
// (127.0.0.1, a free port, JetStream with file storage in the temp dir) takes the same
// messages from both sides, into the stream EVENTS (subjects events.>), deleted
// before each run:
// - eventlite: a processor with the NATS sink (eventlite::nats, JetStream, window 256)
//   drains a copy of a 200k-event file: reading, encoding each envelope, publishing
//   asynchronously with Nats-Msg-Id and Eventlite-Seq headers, waiting for each
//   batch's acks, checkpoints;
// - the baseline: a raw libnats loop publishing the same messages (envelopes encoded
//   beforehand, untimed) with js_PublishMsgAsync, the same headers and at most 256
//   awaiting acks, then js_PublishAsyncComplete.

#include <nats/nats.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "bench/broker_server.hpp"
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

double jetstream_raw(Context& ctx, std::size_t n) {
  NatsServer& nats_server = server(ctx);
  struct Message {
    std::string subject, id, seq, payload;
  };
  std::vector<Message> messages;  // encoded beforehand, untimed
  {
    StoreOptions options;
    options.read_only = true;
    const Store store = Store::open(ctx.fixture(n), options);
    for (const Event& e : store.read_all())
      messages.push_back(
          {"events." + e.type, e.id, std::to_string(e.seq), to_envelope(e)});
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = 256;
  Js js(nats_server.url(), &jo);
  js.reset_stream();
  create_stream(js.js);
  const Stopwatch watch;
  for (const Message& m : messages) {
    natsMsg* msg = nullptr;
    natsMsg_Create(&msg, m.subject.c_str(), nullptr, m.payload.data(),
                   static_cast<int>(m.payload.size()));
    natsMsgHeader_Set(msg, "Nats-Msg-Id", m.id.c_str());
    natsMsgHeader_Set(msg, "Eventlite-Seq", m.seq.c_str());
    if (js_PublishMsgAsync(js.js, &msg, nullptr) != NATS_OK)
      throw std::runtime_error("raw publish failed");
    natsMsg_Destroy(msg);
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 60000;
  if (js_PublishAsyncComplete(js.js, &po) != NATS_OK)
    throw std::runtime_error("raw publish: acks missing");
  const double seconds = watch.seconds();
  if (js.messages() != n) throw std::runtime_error("the raw loop's stream lacks events");
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
}

}  // namespace eventlite::bench
