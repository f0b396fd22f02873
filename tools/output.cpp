#include "tools/output.hpp"

#include <algorithm>
#include <cstddef>

namespace eventlite::cli {
namespace {

// Characters on screen, roughly: UTF-8 continuation bytes do not count.
std::size_t display_width(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

}  // namespace

void print_table(std::ostream& out, const std::vector<Column>& columns,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const Column& column : columns) widths.push_back(display_width(column.header));
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < columns.size() && i < row.size(); ++i) {
      widths[i] = std::max(widths[i], display_width(one_line(row[i])));
    }
  }

  auto print_line = [&](auto cell_of) {
    std::string line;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      std::string cell = one_line(cell_of(i));
      std::string padding(widths[i] - display_width(cell), ' ');
      if (i > 0) line += "  ";
      line += columns[i].align == Align::right ? padding + cell : cell + padding;
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << '\n';
  };
  print_line([&](std::size_t i) { return columns[i].header; });
  for (const auto& row : rows) {
    print_line([&](std::size_t i) { return i < row.size() ? row[i] : std::string(); });
  }
}

void print_json_line(std::ostream& out, const nlohmann::ordered_json& value) {
  out << value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
      << '\n';
}

std::string one_line(std::string_view text) {
  std::string result(text);
  std::replace_if(
      result.begin(), result.end(),
      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; }, ' ');
  return result;
}

}  // namespace eventlite::cli
