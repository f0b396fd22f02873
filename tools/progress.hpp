#pragma once

// A progress line for long exports, imports and replays: events so far, the rate,
// and the time left when the whole is known. Drawn on stderr only when stderr is a
// terminal and stdout is not (the redraws would garble its lines), redrawn at most
// every 200 ms, and wiped when done, so that a pipeline or a log file never gets it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "eventlite/transfer.hpp"

namespace eventlite::cli {

// Thread safety: one thread at a time.
class Progress {
 public:
  // `verb` starts the line: "exported", "imported", "replayed".
  explicit Progress(std::string verb);
  ~Progress();  // wipes the line
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` of `total` units (seqs, bytes) are behind; total 0: not known.
  void update(std::uint64_t events, std::uint64_t done, std::uint64_t total);
  // For export_envelopes(): the time left from the seqs behind, of the `span` seqs
  // from `from` on.
  std::function<void(const TransferProgress&)> by_seq(Seq from, std::uint64_t span);

 private:
  std::string verb_;
  bool shown_;  // stderr is a terminal
  bool drawn_ = false;
  std::chrono::steady_clock::time_point started_, drawn_at_{};
};

}  // namespace eventlite::cli
