#pragma once

// A Redis server's address, parsed (url.cpp).

#include <string>
#include <string_view>

namespace eventlite::redis {

// A Redis server's address: redis://[[user]:password@]host[:port][/db]. rediss://
// (TLS) is refused: Debian's hiredis is built without TLS.
struct Url {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;      // empty: AUTH with the password alone (the default user)
  std::string password;  // empty: no AUTH
  int db = 0;

  // Throws InvalidArgument naming what is wrong; the message never holds the password.
  static Url parse(std::string_view url);
  // For logs and errors: "redis://user:***@host:port/db" (no password part without one).
  std::string redacted() const;
};

}  // namespace eventlite::redis
