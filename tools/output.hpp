#pragma once

// What the eventlite tool prints: aligned tables for people, JSON lines for programs.

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace eventlite::cli {

enum class Align { left, right };

struct Column {
  std::string header;
  Align align = Align::left;
};

// Prints a header line and one line per row, each column padded to its widest cell
// (counted in UTF-8 characters), columns two spaces apart, no trailing spaces.
// Control characters in cells are printed as spaces, so a row stays one line.
void print_table(std::ostream& out, const std::vector<Column>& columns,
                 const std::vector<std::vector<std::string>>& rows);

// Prints `value` as one line of compact JSON. Invalid UTF-8 in strings (possible in
// a file written behind eventlite's back) is printed as U+FFFD.
void print_json_line(std::ostream& out, const nlohmann::ordered_json& value);

// `text` with every control character (newlines included) replaced by a space.
std::string one_line(std::string_view text);

// `text` with the user information of every URL in it hidden: "redis://:pw@host" as
// "redis://:***@host", "nats://user:pw@host" and "user:pw@host" as "...user:***@host",
// a token ("nats://tok@host") as "***". A URL is a word (up to white space); its user
// information ends at the last '@' in it, so a password holding '@' or '/' is hidden
// whole. For messages that quote what was typed (a usage error), which the library's
// redaction never saw.
std::string hide_url_passwords(std::string_view text);

}  // namespace eventlite::cli
