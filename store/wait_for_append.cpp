// Store::wait_for_append: woken by this process's commits (the store's notifier) and,
// where the file can be watched, by other processes' (the change watch the processor
// uses, store/change_watch.hpp, with its re-checks while a commit is published).
// Without a watch (":memory:", a "file:" URI, not Linux, inotify's limits reached)
// only this process's commits wake it, and another's is seen at the timeout.

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "eventlite/store.hpp"
#include "store/change_watch.hpp"
#include "store/store_impl.hpp"

namespace eventlite {

namespace asio = boost::asio;

Seq Store::wait_for_append(Seq after, std::chrono::milliseconds timeout) const {
  // Saturate: a timeout of milliseconds::max() must not overflow into the past.
  const auto now = std::chrono::steady_clock::now();
  const auto deadline = timeout >= std::chrono::hours(24 * 365 * 100)
                            ? std::chrono::steady_clock::time_point::max()
                            : now + timeout;
  detail::Notifier& notifier = *impl_->notifier;

  asio::io_context io;
  Seq found = -1;
  const auto look = [&] {
    if (found < 0) {
      const Seq h = head();
      if (h > after) found = h;
    }
    if (found >= 0) io.stop();
    return found >= 0;
  };
  std::unique_ptr<detail::ChangeWatch> watch;
  if (!impl_->config.memory)
    watch = std::make_unique<detail::ChangeWatch>(
        io, impl_->config.filename,
        [&] {
          return look() ? detail::ChangeWatch::Check::changed
                        : detail::ChangeWatch::Check::unchanged;
        },
        detail::ChangeWatchOptions{.logger = impl_->logger});

  if (!watch || !watch->active()) {
    for (;;) {
      const auto seen = notifier.generation();
      const Seq h = head();
      if (h > after) return h;
      if (!notifier.wait_past(seen, deadline)) return head();
    }
  }

  const std::uint64_t listener =
      notifier.add_listener([&] { asio::post(io, [&] { look(); }); });
  struct Unlisten {
    detail::Notifier& n;
    std::uint64_t id;
    ~Unlisten() { n.remove_listener(id); }
  } unlisten{notifier, listener};
  // The watch and the listener are in place: a commit from now on wakes the wait.
  if (look()) return found;
  asio::steady_timer timer(io);
  timer.expires_at(deadline);
  timer.async_wait([&](const boost::system::error_code& ec) {
    if (!ec) io.stop();
  });
  io.run();
  return found >= 0 ? found : head();
}

}  // namespace eventlite
