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

}  // namespace eventlite::cli
