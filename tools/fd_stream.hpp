#pragma once

// Streams over a file descriptor, with a buffer of their own: stdout, stdin and the
// pipe of `replay` at full speed (std::cout and std::cin, synced with stdio, go a
// character at a time). A write to a reader that went away (EPIPE: SIGPIPE is
// ignored while one is open) sets the stream's failbit and broken().

#include <array>
#include <istream>
#include <ostream>
#include <streambuf>

namespace eventlite::cli {

// A file descriptor, closed with its scope (stdin, stdout and stderr never are).
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&&) = delete;
  ~UniqueFd();
  int get() const noexcept { return fd_; }

 private:
  int fd_ = -1;
};

// Thread safety: one thread at a time.
class FdOutBuf : public std::streambuf {
 public:
  explicit FdOutBuf(int fd);
  ~FdOutBuf() override;
  FdOutBuf(const FdOutBuf&) = delete;
  FdOutBuf& operator=(const FdOutBuf&) = delete;
  bool broken() const noexcept { return broken_; }
  int error() const noexcept { return error_; }  // errno of the failed write
  // Drops what is buffered: nothing more is written, not even at destruction.
  void abandon() noexcept {
    setp(buffer_.data(), buffer_.data() + buffer_.size());
    broken_ = true;
  }

 protected:
  int_type overflow(int_type c) override;
  int sync() override;

 private:
  bool flush_buffer();
  int fd_;
  bool broken_ = false;
  int error_ = 0;
  std::array<char, 1 << 16> buffer_;
};

// Thread safety: one thread at a time.
class FdInBuf : public std::streambuf {
 public:
  explicit FdInBuf(int fd);
  FdInBuf(const FdInBuf&) = delete;
  FdInBuf& operator=(const FdInBuf&) = delete;

 protected:
  int_type underflow() override;

 private:
  int fd_;
  std::array<char, 1 << 16> buffer_;
};

// While alive, SIGPIPE is ignored (a write to a closed pipe fails with EPIPE
// instead of killing the process); the old disposition comes back after.
class IgnoreSigpipe {
 public:
  IgnoreSigpipe();
  ~IgnoreSigpipe();
  IgnoreSigpipe(const IgnoreSigpipe&) = delete;
  IgnoreSigpipe& operator=(const IgnoreSigpipe&) = delete;

 private:
  void (*old_)(int);
};

}  // namespace eventlite::cli
