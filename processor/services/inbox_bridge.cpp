// InboxBridge (include/eventlite/inbox.hpp): a bridge's step and run loop over the
// read-batch / acknowledge pair each broker fills in.

#include "eventlite/inbox.hpp"

namespace eventlite {

InboxBridge::InboxBridge(Store& store, InboxOptions options)
    : inbox_(store, std::move(options)) {}

InboxBridge::~InboxBridge() = default;

std::size_t InboxBridge::step() {
  const Inbox::Hold hold = inbox_.hold();
  if (hold != Inbox::Hold::holding) disconnect();  // a tenure starts anew, or ended
  if (hold == Inbox::Hold::standing_by) return 0;
  try {
    entries_.clear();
    const std::size_t n = read_batch(entries_, hold == Inbox::Hold::taken);
    if (n == 0) return 0;
    if (!inbox_.append(entries_)) {  // the lease moved: the entries are theirs now
      disconnect();
      return 0;
    }
    ack(entries_);
    return n;
  } catch (...) {
    disconnect();  // the next step connects again; what was not acked comes again
    throw;
  }
}

std::size_t InboxBridge::run_until_idle() {
  std::size_t total = 0;
  while (const std::size_t n = step()) total += n;
  return total;
}

void InboxBridge::run() {
  inbox_.run([this] { return step(); });
}

void InboxBridge::stop() noexcept {
  inbox_.stop();
}

bool InboxBridge::active() const noexcept {
  return inbox_.held();
}

}  // namespace eventlite
