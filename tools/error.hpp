#pragma once

// How the eventlite tool fails: its exit statuses and the error it throws for
// failures of its own (bad input, a missing file). Failures of the store arrive as
// eventlite::Error and are mapped by exit_status().

#include <stdexcept>
#include <string>

#include "eventlite/errors.hpp"

namespace eventlite::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitConflict = 3;

// A failure main() prints as one line on stderr and exits with `exit_status`.
// Thread safety: immutable.
class CommandError : public std::runtime_error {
 public:
  CommandError(int exit_status, const std::string& message)
      : std::runtime_error(message), exit_status_(exit_status) {}
  int exit_status() const noexcept { return exit_status_; }

 private:
  int exit_status_;
};

// The exit status for a failure of the store: 3 for a version conflict, 1 otherwise.
inline int exit_status(const Error& error) noexcept {
  return error.code() == ErrorCode::version_conflict ? kExitConflict : kExitError;
}

// What the tool says about `error`. The tool appends one event per call, so an
// InvalidEvent's index in its batch is left out.
inline std::string describe(const Error& error) {
  if (const auto* invalid = dynamic_cast<const InvalidEvent*>(&error)) {
    return "invalid event: " + invalid->field() + ": " + invalid->reason();
  }
  return error.what();
}

}  // namespace eventlite::cli
