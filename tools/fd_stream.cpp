#include "tools/fd_stream.hpp"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

namespace eventlite::cli {

UniqueFd::~UniqueFd() {
  if (fd_ > STDERR_FILENO) ::close(fd_);
}

FdOutBuf::FdOutBuf(int fd) : fd_(fd) {
  setp(buffer_.data(), buffer_.data() + buffer_.size());
}

FdOutBuf::~FdOutBuf() {
  flush_buffer();
}

bool FdOutBuf::flush_buffer() {
  const char* p = pbase();
  while (p < pptr()) {
    if (broken_) break;
    const ssize_t n = ::write(fd_, p, static_cast<std::size_t>(pptr() - p));
    if (n < 0) {
      if (errno == EINTR) continue;
      broken_ = true;
      error_ = errno;
      break;
    }
    p += n;
  }
  setp(buffer_.data(), buffer_.data() + buffer_.size());
  return !broken_;
}

FdOutBuf::int_type FdOutBuf::overflow(int_type c) {
  if (!flush_buffer()) return traits_type::eof();
  if (!traits_type::eq_int_type(c, traits_type::eof())) {
    *pptr() = traits_type::to_char_type(c);
    pbump(1);
  }
  return traits_type::not_eof(c);
}

int FdOutBuf::sync() {
  return flush_buffer() ? 0 : -1;
}

FdInBuf::FdInBuf(int fd) : fd_(fd) {
  setg(buffer_.data(), buffer_.data(), buffer_.data());
}

FdInBuf::int_type FdInBuf::underflow() {
  if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
  for (;;) {
    const ssize_t n = ::read(fd_, buffer_.data(), buffer_.size());
    if (n < 0 && errno == EINTR) continue;
    // Thrown into the istream, which sets badbit: a read error is not an end.
    if (n < 0) throw std::ios_base::failure("cannot read the input");
    if (n == 0) return traits_type::eof();
    setg(buffer_.data(), buffer_.data(), buffer_.data() + n);
    return traits_type::to_int_type(*gptr());
  }
}

IgnoreSigpipe::IgnoreSigpipe() : old_(::signal(SIGPIPE, SIG_IGN)) {}

IgnoreSigpipe::~IgnoreSigpipe() {
  ::signal(SIGPIPE, old_);
}

}  // namespace eventlite::cli
