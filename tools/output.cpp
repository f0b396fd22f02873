#include "tools/output.hpp"

#include <algorithm>
#include <cctype>
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

std::string hide_url_passwords(std::string_view text) {
  std::string out;
  std::size_t at = 0;
  while (at < text.size()) {
    if (std::isspace(static_cast<unsigned char>(text[at]))) {
      out += text[at++];
      continue;
    }
    std::size_t end = at;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end])))
      ++end;
    const std::string_view word = text.substr(at, end - at);
    at = end;
    const std::size_t scheme = word.find("://");
    const std::size_t from = scheme == std::string_view::npos ? 0 : scheme + 3;
    const std::size_t last_at = word.rfind('@');
    if (last_at == std::string_view::npos || last_at < from) {
      out += word;
      continue;
    }
    const std::string_view userinfo = word.substr(from, last_at - from);
    const std::size_t colon = userinfo.find(':');
    // Without a scheme, only user:password@ is taken for one: "name@host" may as well
    // be a mail address.
    if (scheme == std::string_view::npos && colon == std::string_view::npos) {
      out += word;
      continue;
    }
    out += word.substr(0, from);
    out += colon == std::string_view::npos
               ? "***"
               : std::string(userinfo.substr(0, colon)) + ":***";
    out += word.substr(last_at);
  }
  return out;
}

}  // namespace eventlite::cli
