// SQL is built from literals only, and values reach it as bound parameters (DESIGN.md,
// "How we use SQLite"). This test reads every .cpp and .hpp of the library, the tool,
// the handlers and the examples, and fails where SQL text is joined with a value at
// run time:
//   - a chain of `+` or `<<` with SQL in it (a literal that reads as SQL, or a string
//     variable that was given one) and an operand that is not a literal, a constant
//     (a kName defined from literals) or a choice between such (`c ? "A" : "B"`);
//   - `sql += x`, `sql.append(x)`, `sql.insert(at, x)` on such a variable, x as above;
//   - fmt::format, std::format, snprintf and their kin with SQL text and an argument
//     as above;
//   - sqlite3_mprintf and its kin, always: %q quotes, but the query is then a format.
// An identifier that cannot be bound (a table an application names) may be spliced
// only through a function that quotes it, at a place kAllowed lists with the reason;
// an entry that matches nothing fails the test too, so the list stays true.
//
// The scanner is a tokenizer and a few patterns over its tokens, not a C++ parser;
// its own tests below show what it catches and what it leaves alone.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = std::filesystem;

// ---- tokens ---------------------------------------------------------------------

struct Token {
  enum class Kind { literal, constant, name, punct };
  Kind kind = Kind::punct;
  std::string text;  // a string literal: its characters between the quotes
  std::size_t line = 0;
  std::size_t begin = 0;  // offsets in the source, for quoting what was found
  std::size_t end = 0;
};
using Tokens = std::vector<Token>;

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

// Longest first.
constexpr std::string_view kPuncts[] = {
    "<<=", ">>=", "...", "->*", "::", "->", "++", "--", "<<", ">>", "<=", ">=", "==",
    "!=",  "&&",  "||",  "+=",  "-=", "*=", "/=", "%=", "&=", "|=", "^=", ".*"};

// Comments and preprocessor lines are dropped; adjacent string literals are one, as
// the compiler makes them.
Tokens tokenize(std::string_view src) {
  Tokens out;
  std::size_t i = 0;
  std::size_t line = 1;
  bool line_start = true;
  const auto at = [&](std::size_t k) { return k < src.size() ? src[k] : '\0'; };
  const auto push = [&](Token::Kind kind, std::string text, std::size_t begin) {
    if (kind == Token::Kind::literal && !out.empty() &&
        out.back().kind == Token::Kind::literal) {
      out.back().text += text;
      out.back().end = i;
    } else {
      out.push_back({kind, std::move(text), line, begin, i});
    }
    line_start = false;
  };
  // A quoted literal from src[i] (the opening quote); returns its characters.
  const auto quoted = [&](char quote) {
    std::string text;
    ++i;
    while (i < src.size() && src[i] != quote) {
      if (src[i] == '\\' && i + 1 < src.size()) text += src[i++];
      if (src[i] == '\n') ++line;
      text += src[i++];
    }
    ++i;
    return text;
  };
  while (i < src.size()) {
    const char c = src[i];
    const std::size_t begin = i;
    if (c == '\n') {
      ++line;
      ++i;
      line_start = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '/' && at(i + 1) == '/') {
      while (i < src.size() && src[i] != '\n') ++i;
    } else if (c == '/' && at(i + 1) == '*') {
      i += 2;
      while (i < src.size() && !(src[i] == '*' && at(i + 1) == '/')) {
        if (src[i] == '\n') ++line;
        ++i;
      }
      i += 2;
    } else if (c == '#' && line_start) {
      while (i < src.size() && src[i] != '\n') {
        if (src[i] == '\\' && at(i + 1) == '\n') {
          ++line;
          ++i;
        }
        ++i;
      }
    } else if (c == '"') {
      std::string text = quoted('"');
      push(Token::Kind::literal, std::move(text), begin);
    } else if (c == '\'') {
      quoted('\'');
      push(Token::Kind::constant, std::string(src.substr(begin, i - begin)), begin);
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '.' && std::isdigit(static_cast<unsigned char>(at(i + 1))))) {
      while (i < src.size() &&
             (is_name_char(src[i]) || src[i] == '.' ||
              (src[i] == '\'' && is_name_char(at(i + 1))) ||
              ((src[i] == '+' || src[i] == '-') &&
               std::string_view("eEpP").find(at(i - 1)) != std::string_view::npos)))
        ++i;
      push(Token::Kind::constant, std::string(src.substr(begin, i - begin)), begin);
    } else if (is_name_char(c)) {
      while (i < src.size() && is_name_char(src[i])) ++i;
      const std::string name(src.substr(begin, i - begin));
      const bool raw =
          !name.empty() && name.back() == 'R' &&
          (name == "R" || name == "u8R" || name == "uR" || name == "UR" || name == "LR");
      const bool prefix = name == "u8" || name == "u" || name == "U" || name == "L";
      if (raw && at(i) == '"') {
        const std::size_t open = src.find('(', i);
        const std::string delim =
            ")" + std::string(src.substr(i + 1, open - i - 1)) + "\"";
        const std::size_t close = src.find(delim, open);
        const std::string_view body = src.substr(open + 1, close - open - 1);
        line += static_cast<std::size_t>(std::count(body.begin(), body.end(), '\n'));
        i = close + delim.size();
        push(Token::Kind::literal, std::string(body), begin);
      } else if (prefix && at(i) == '"') {
        std::string text = quoted('"');
        push(Token::Kind::literal, std::move(text), begin);
      } else if (prefix && at(i) == '\'') {
        quoted('\'');
        push(Token::Kind::constant, std::string(src.substr(begin, i - begin)), begin);
      } else {
        push(Token::Kind::name, name, begin);
      }
    } else {
      std::string_view p = src.substr(i, 1);
      for (std::string_view candidate : kPuncts)
        if (src.substr(i, candidate.size()) == candidate) {
          p = candidate;
          break;
        }
      i += p.size();
      push(Token::Kind::punct, std::string(p), begin);
    }
  }
  return out;
}

// ---- what reads as SQL ----------------------------------------------------------

// SQL as this project writes it (upper-case words), or by its shape in any case.
bool looks_like_sql(std::string_view text) {
  static const std::regex upper(
      R"(\b(SELECT|INSERT|UPDATE|DELETE|REPLACE|UPSERT|WHERE|VALUES|FROM|INTO|SET|)"
      R"(PRAGMA|CREATE|DROP|ALTER|ATTACH|DETACH|VACUUM|LIMIT|OFFSET|ORDER BY|GROUP BY|)"
      R"(HAVING|JOIN|UNION|TABLE|INDEX|TRIGGER|VIEW|SAVEPOINT|RELEASE|ROLLBACK|BEGIN|)"
      R"(COMMIT|AND|OR|LIKE|GLOB|BETWEEN|IN)\b)");
  static const std::regex any_case(
      R"(\bselect\b[\s\S]*\bfrom\b|\binsert\s+(or\s+\w+\s+)?into\b|\bdelete\s+from\b|)"
      R"(\bupdate\s+\w+\s+set\b|\bwhere\s+[\w.]+\s*(=|<|>|!|\bin\b|\blike\b|\bis\b)|)"
      R"(^\s*pragma\s+\w|\bvalues\s*\(|\b(create|drop)\s+(temp\s+|temporary\s+)?)"
      R"((table|index|view|trigger)\b|\border\s+by\s+\w|\bvacuum\s+into\b|)"
      R"(\battach\s+database\b)",
      std::regex::icase);
  const std::string s(text);
  return std::regex_search(s, upper) || std::regex_search(s, any_case);
}

// Calls that make a string from a format and arguments.
const std::set<std::string, std::less<>> kFormatCalls = {
    "format",    "vformat",  "format_to", "format_to_n", "sprintf",   "snprintf",
    "vsnprintf", "vsprintf", "asprintf",  "StrCat",      "StrFormat", "Substitute"};
// SQLite's own formatting: always a finding.
const std::set<std::string, std::less<>> kSqlitePrintf = {
    "sqlite3_mprintf",   "sqlite3_vmprintf",    "sqlite3_snprintf",
    "sqlite3_vsnprintf", "sqlite3_str_appendf", "sqlite3_str_vappendf"};
// Calls whose value is the string they are given.
const std::set<std::string, std::less<>> kStringOf = {"string", "string_view"};

// ---- the scan -------------------------------------------------------------------

struct Finding {
  std::string file;
  std::size_t line = 0;
  std::string what;     // what kind of splice
  std::string spliced;  // the operand that is not a constant
  std::string excerpt;  // the whole expression
};

struct Range {
  std::size_t b = 0;
  std::size_t e = 0;
  bool empty() const { return b >= e; }
};

class Scanner {
 public:
  Scanner(std::string file, std::string_view src, const std::set<std::string>& constants)
      : file_(std::move(file)), src_(src), t_(tokenize(src)), constants_(constants) {
    // Which names hold SQL text, as far as assignments in this file tell.
    for (int pass = 0; pass < 3; ++pass) learn_variables();
  }

  std::vector<Finding> run() {
    scan({0, t_.size()});
    compound_and_members();
    return std::move(findings_);
  }

  // How many literals read as SQL (a scan that finds none reads the wrong files).
  std::size_t sql_literals() const {
    return static_cast<std::size_t>(
        std::count_if(t_.begin(), t_.end(), [](const Token& t) {
          return t.kind == Token::Kind::literal && looks_like_sql(t.text);
        }));
  }

 private:
  bool is(std::size_t i, std::string_view punct) const {
    return i < t_.size() && t_[i].kind == Token::Kind::punct && t_[i].text == punct;
  }
  bool is_name(std::size_t i) const {
    return i < t_.size() && t_[i].kind == Token::Kind::name;
  }
  bool opens(std::size_t i) const { return is(i, "(") || is(i, "[") || is(i, "{"); }
  bool closes(std::size_t i) const { return is(i, ")") || is(i, "]") || is(i, "}"); }

  // The bracket closing the one at i (or the end).
  std::size_t match(std::size_t i) const {
    int depth = 0;
    for (std::size_t k = i; k < t_.size(); ++k) {
      if (opens(k)) ++depth;
      if (closes(k) && --depth == 0) return k;
    }
    return t_.size();
  }

  // Where the expression starting at b ends: a ';' or ',' or closing bracket at its
  // own depth.
  std::size_t expression_end(std::size_t b, std::size_t e) const {
    for (std::size_t k = b; k < e; ++k) {
      if (opens(k)) {
        k = match(k);
        continue;
      }
      if (is(k, ";") || is(k, ",") || closes(k)) return k;
    }
    return e;
  }

  // The top-level positions of `punct` in r.
  std::vector<std::size_t> top_level(Range r, std::string_view punct) const {
    std::vector<std::size_t> at;
    for (std::size_t k = r.b; k < r.e; ++k) {
      if (opens(k)) {
        k = match(k);
        continue;
      }
      if (is(k, punct)) at.push_back(k);
    }
    return at;
  }

  // r split at its top-level `+` and `<<`.
  std::vector<Range> operands(Range r) const {
    std::vector<Range> out;
    std::size_t from = r.b;
    for (std::size_t k = r.b; k < r.e; ++k) {
      if (opens(k)) {
        k = match(k);
        continue;
      }
      if (is(k, "+") || is(k, "<<")) {
        out.push_back({from, k});
        from = k + 1;
      }
    }
    out.push_back({from, r.e});
    return out;
  }

  std::vector<Range> arguments(std::size_t open) const {
    const std::size_t close = match(open);
    std::vector<Range> out;
    std::size_t from = open + 1;
    for (std::size_t k : top_level({open + 1, close}, ",")) {
      out.push_back({from, k});
      from = k + 1;
    }
    if (from < close) out.push_back({from, close});
    return out;
  }

  Range strip_parens(Range r) const {
    while (!r.empty() && is(r.b, "(") && match(r.b) == r.e - 1) r = {r.b + 1, r.e - 1};
    return r;
  }

  // Splits `c ? a : b` at its top level; false when r is not one.
  bool ternary(Range r, Range& then, Range& otherwise) const {
    const auto questions = top_level(r, "?");
    if (questions.empty()) return false;
    int open = 0;
    for (std::size_t k = questions.front(); k < r.e; ++k) {
      if (opens(k)) {
        k = match(k);
        continue;
      }
      if (is(k, "?")) ++open;
      if (is(k, ":") && --open == 0) {
        then = {questions.front() + 1, k};
        otherwise = {k + 1, r.e};
        return true;
      }
    }
    return false;
  }

  // A qualified name (a::b::c) filling r exactly; its last part, or "".
  std::string qualified_name(Range r) const {
    if (r.empty()) return {};
    std::size_t k = r.b;
    if (is(k, "::")) ++k;
    std::string last;
    while (k < r.e) {
      if (!is_name(k)) return {};
      last = t_[k].text;
      ++k;
      if (k == r.e) return last;
      if (!is(k, "::")) return {};
      ++k;
    }
    return {};
  }

  // A name that holds SQL text, alone or as name.c_str() / .data() / .str().
  bool sql_variable(Range r) const {
    if (r.empty() || !is_name(r.b) || !variables_.count(t_[r.b].text)) return false;
    if (r.e == r.b + 1) return true;
    return r.e == r.b + 5 && is(r.b + 1, ".") && is_name(r.b + 2) &&
           (t_[r.b + 2].text == "c_str" || t_[r.b + 2].text == "data" ||
            t_[r.b + 2].text == "str") &&
           is(r.b + 3, "(") && is(r.b + 4, ")");
  }

  // A call `name(...)` filling r exactly; its name, or "".
  std::string call_of(Range r, std::size_t& open) const {
    for (std::size_t k = r.b; k < r.e; ++k) {
      if (is(k, "(") || is(k, "{")) {
        if (match(k) != r.e - 1) return {};
        open = k;
        return qualified_name({r.b, k});
      }
    }
    return {};
  }

  // Whether r makes a string holding SQL: an SQL literal, an SQL variable, a string
  // or format of one, joined with `+` or `<<`, or chosen by `?:`.
  bool sql_text(Range r) const {
    r = strip_parens(r);
    if (r.empty()) return false;
    Range a, b;
    if (ternary(r, a, b)) return sql_text(a) || sql_text(b);
    const auto parts = operands(r);
    if (parts.size() > 1)
      return std::any_of(parts.begin(), parts.end(),
                         [&](Range p) { return sql_text(p); });
    if (r.e == r.b + 1 && t_[r.b].kind == Token::Kind::literal)
      return looks_like_sql(t_[r.b].text);
    if (sql_variable(r)) return true;
    std::size_t open = 0;
    const std::string call = call_of(r, open);
    if (kStringOf.count(call) || kFormatCalls.count(call)) {
      const auto args = arguments(open);
      return std::any_of(args.begin(), args.end(), [&](Range p) { return sql_text(p); });
    }
    return false;
  }

  // Whether r's value is fixed when the program is built: literals, constants, SQL
  // variables (checked where they are built), strings of those, `?:` between them.
  bool constant(Range r) const {
    r = strip_parens(r);
    if (r.empty()) return false;
    Range a, b;
    if (ternary(r, a, b)) return constant(a) && constant(b);
    const auto parts = operands(r);
    if (parts.size() > 1)
      return std::all_of(parts.begin(), parts.end(),
                         [&](Range p) { return constant(p); });
    std::size_t k = r.b;
    if (is(k, "-") && r.e == r.b + 2) ++k;  // a negative number
    if (r.e == k + 1 &&
        (t_[k].kind == Token::Kind::literal || t_[k].kind == Token::Kind::constant))
      return true;
    if (sql_variable(r)) return true;
    if (const std::string name = qualified_name(r); !name.empty())
      return constants_.count(name) > 0;
    std::size_t open = 0;
    const std::string call = call_of(r, open);
    if (kStringOf.count(call)) {
      const auto args = arguments(open);
      return !args.empty() &&
             std::all_of(args.begin(), args.end(), [&](Range p) { return constant(p); });
    }
    return false;
  }

  std::string text_of(Range r) const {
    if (r.empty()) return {};
    std::string out;
    bool space = false;
    for (char c : src_.substr(t_[r.b].begin, t_[r.e - 1].end - t_[r.b].begin)) {
      if (std::isspace(static_cast<unsigned char>(c))) {
        space = !out.empty();
        continue;
      }
      if (space) out += ' ';
      space = false;
      out += c;
    }
    return out;
  }

  void report(Range where, Range spliced, std::string what) {
    findings_.push_back(
        {file_, t_[where.b].line, std::move(what), text_of(spliced), text_of(where)});
  }

  // The names given SQL text: `x = <sql>`, `x += <sql>`, `std::string x(<sql>)`, and
  // a stream `os` in `os << <sql> ...`.
  void learn_variables() {
    for (std::size_t k = 1; k < t_.size(); ++k) {
      if ((is(k, "=") || is(k, "+=")) && is_name(k - 1)) {
        const Range rhs{k + 1, expression_end(k + 1, t_.size())};
        if (sql_text(rhs)) variables_.insert(t_[k - 1].text);
      } else if ((is(k, "(") || is(k, "{")) && is_name(k - 1) && k >= 2 &&
                 is_name(k - 2) &&
                 (t_[k - 2].text == "string" || t_[k - 2].text == "ostringstream" ||
                  t_[k - 2].text == "stringstream")) {
        const auto args = arguments(k);
        if (std::any_of(args.begin(), args.end(), [&](Range p) { return sql_text(p); }))
          variables_.insert(t_[k - 1].text);
      } else if (is(k, "<<") && is_name(k - 1) && (k < 2 || !is(k - 2, ".")) &&
                 !is(k - 2, "->") && !is(k - 2, "::")) {
        const Range rest{k + 1, expression_end(k + 1, t_.size())};
        if (sql_text(rest)) variables_.insert(t_[k - 1].text);
      }
    }
  }

  // Chains of `+` / `<<`, format calls and sqlite3_*printf, everywhere in r.
  void scan(Range r) {
    std::size_t k = r.b;
    while (k < r.e) {
      if (!(t_[k].kind != Token::Kind::punct || is(k, "(") || is(k, "::"))) {
        if (opens(k)) {
          const std::size_t close = std::min(match(k), r.e);
          scan({k + 1, close});
          k = close + 1;
        } else {
          ++k;
        }
        continue;
      }
      std::vector<Range> chain{{k, operand_end(k, r.e)}};
      while (chain.back().e < r.e &&
             (is(chain.back().e, "+") || is(chain.back().e, "<<")) &&
             chain.back().e + 1 < r.e) {
        const std::size_t next = chain.back().e + 1;
        chain.push_back({next, operand_end(next, r.e)});
      }
      check_chain(chain);
      for (const Range& op : chain) {
        check_calls(op);
        for (std::size_t g = op.b; g < op.e; ++g)
          if (opens(g)) {
            const std::size_t close = std::min(match(g), op.e);
            scan({g + 1, close});
            g = close;
          }
      }
      k = std::max(chain.back().e, k + 1);
    }
  }

  // An operand from k: unary signs, then a name, literal or parenthesis, with what
  // follows it (::x, .x, ->x, calls, subscripts, a cast's <type>).
  std::size_t operand_end(std::size_t k, std::size_t e) const {
    while (k < e && (is(k, "!") || is(k, "~") || is(k, "-") || is(k, "*") || is(k, "&")))
      ++k;
    if (k >= e) return e;
    if (opens(k)) {
      k = match(k) + 1;
    } else {
      if (is(k, "::")) ++k;
      ++k;
    }
    while (k < e) {
      if ((is(k, "::") || is(k, ".") || is(k, "->")) && k + 1 < e) {
        k += 2;
      } else if (is(k, "(") || is(k, "[") || (is(k, "{") && is_name(k - 1))) {
        k = match(k) + 1;
      } else if (is(k, "<") && is_name(k - 1) && t_[k - 1].text.ends_with("_cast")) {
        while (k < e && !is(k, ">")) ++k;
        ++k;
      } else {
        break;
      }
    }
    return std::min(k, e);
  }

  void check_chain(const std::vector<Range>& chain) {
    if (chain.size() < 2) return;
    if (std::none_of(chain.begin(), chain.end(), [&](Range p) { return sql_text(p); }))
      return;
    for (const Range& op : chain)
      if (!constant(op)) {
        report({chain.front().b, chain.back().e}, op, "SQL joined with a value");
        return;
      }
  }

  // Format calls and sqlite3_*printf within the operand r (at its own level).
  void check_calls(Range r) {
    for (std::size_t k = r.b; k + 1 < r.e; ++k) {
      if (opens(k)) {
        k = match(k);
        continue;
      }
      if (!is_name(k) || !is(k + 1, "(")) continue;
      const std::string& name = t_[k].text;
      const Range call{k, std::min(match(k + 1) + 1, r.e)};
      if (kSqlitePrintf.count(name)) {
        report(call, call, "SQL formatted by " + name);
      } else if (kFormatCalls.count(name)) {
        const auto args = arguments(k + 1);
        if (std::none_of(args.begin(), args.end(), [&](Range p) { return sql_text(p); }))
          continue;
        for (const Range& arg : args)
          if (!constant(arg)) {
            report(call, arg, "SQL formatted with a value");
            break;
          }
      }
    }
  }

  // `sql += x`, `sql.append(x)`, `sql.insert(at, x)`, `sql.assign(x)` on an SQL
  // variable, or with SQL text in x.
  void compound_and_members() {
    for (std::size_t k = 1; k < t_.size(); ++k) {
      if (is(k, "+=") && is_name(k - 1)) {
        const Range rhs{k + 1, expression_end(k + 1, t_.size())};
        const bool sql = variables_.count(t_[k - 1].text) || sql_text(rhs);
        if (sql && !constant(rhs))
          report({k - 1, rhs.e}, rhs, "SQL appended with a value");
      } else if (is(k, ".") && is_name(k - 1) && variables_.count(t_[k - 1].text) &&
                 is_name(k + 1) && is(k + 2, "(")) {
        const std::string& member = t_[k + 1].text;
        if (member != "append" && member != "insert" && member != "assign" &&
            member != "replace")
          continue;
        auto args = arguments(k + 2);
        if (args.empty()) continue;
        // insert(at, text) and replace(at, n, text): the text is the last one.
        if (member == "insert" || member == "replace") args = {args.back()};
        for (const Range& arg : args)
          if (!constant(arg)) {
            report({k - 1, match(k + 2) + 1}, arg, "SQL appended with a value");
            break;
          }
      }
    }
  }

  std::string file_;
  std::string_view src_;
  Tokens t_;
  const std::set<std::string>& constants_;
  std::set<std::string> variables_;
  std::vector<Finding> findings_;
};

// Names kX defined `constexpr`/`const` from literals, numbers and other such names:
// what may be spliced, since no one's input reaches it.
void learn_constants(std::string_view src, std::set<std::string>& constants) {
  const Tokens t = tokenize(src);
  for (std::size_t k = 0; k + 1 < t.size(); ++k) {
    if (t[k].kind != Token::Kind::name || t[k].text.size() < 2 || t[k].text[0] != 'k' ||
        !std::isupper(static_cast<unsigned char>(t[k].text[1])))
      continue;
    if (!(t[k + 1].kind == Token::Kind::punct && t[k + 1].text == "=")) continue;
    bool declared_const = false;
    for (std::size_t b = k; b-- > 0;) {
      if (t[b].kind == Token::Kind::punct &&
          (t[b].text == ";" || t[b].text == "{" || t[b].text == "}"))
        break;
      if (t[b].kind == Token::Kind::name &&
          (t[b].text == "constexpr" || t[b].text == "const"))
        declared_const = true;
    }
    if (!declared_const) continue;
    bool from_literals = true;
    std::size_t e = k + 2;
    for (; e < t.size() && !(t[e].kind == Token::Kind::punct && t[e].text == ";"); ++e) {
      const Token& x = t[e];
      if (x.kind == Token::Kind::literal || x.kind == Token::Kind::constant) continue;
      if (x.kind == Token::Kind::name && constants.count(x.text)) continue;
      if (x.kind == Token::Kind::punct &&
          std::string_view("+-*/%()<<>>").find(x.text) != std::string_view::npos)
        continue;
      from_literals = false;
      break;
    }
    if (from_literals && e > k + 2) constants.insert(t[k].text);
  }
}

std::vector<Finding> scan_source(std::string_view src, std::string file = "snippet") {
  std::set<std::string> constants;
  learn_constants(src, constants);
  learn_constants(src, constants);
  return Scanner(std::move(file), src, constants).run();
}

// ---- the allow-list -------------------------------------------------------------

// A splice that cannot be a bound parameter (an identifier), with the function that
// quotes or validates it at the splice.
struct Allowed {
  std::string file;       // relative to the source tree
  std::string spliced;    // the spliced expression, as the finding quotes it
  std::string quoted_by;  // the spliced expression is a call of this function
  std::string reason;
};

// Nothing in the tree splices SQL today: every query is a literal with placeholders,
// and the few built at run time (store/reader.cpp's read plans, store/append.cpp's
// multi-row INSERT, store/sqlite_util.cpp's PRAGMAs, processor/admin.cpp's status
// query for one schema version or another) join literals and constants only, which
// the scanner accepts without an entry. A table or column an application names would
// be listed here, spliced through a quoting function, never raw.
const std::vector<Allowed> kAllowed = {};

// The findings no entry of `allowed` explains, and complaints about entries that
// explain nothing or whose splice is not a call of their quoting function.
std::vector<std::string> unexplained(const std::vector<Finding>& findings,
                                     const std::vector<Allowed>& allowed) {
  std::vector<std::string> out;
  std::vector<bool> used(allowed.size(), false);
  for (const Finding& f : findings) {
    bool ok = false;
    for (std::size_t i = 0; i < allowed.size(); ++i) {
      const Allowed& a = allowed[i];
      if (a.file != f.file || a.spliced != f.spliced) continue;
      used[i] = true;
      const std::size_t paren = f.spliced.find('(');
      const std::string callee = f.spliced.substr(0, paren);
      const bool quoted = paren != std::string::npos && f.spliced.back() == ')' &&
                          (callee == a.quoted_by || callee.ends_with("::" + a.quoted_by));
      if (quoted) {
        ok = true;
      } else {
        out.push_back(f.file + ":" + std::to_string(f.line) + ": allowed splice `" +
                      f.spliced + "` is not a call of " + a.quoted_by);
        ok = true;
      }
    }
    if (!ok)
      out.push_back(f.file + ":" + std::to_string(f.line) + ": " + f.what + ": `" +
                    f.spliced + "` in `" + f.excerpt + "`");
  }
  for (std::size_t i = 0; i < allowed.size(); ++i)
    if (!used[i])
      out.push_back("allow-list entry for `" + allowed[i].spliced + "` in " +
                    allowed[i].file + " matches nothing");
  return out;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The directories scanned: the library, the tool, the handlers, the examples.
constexpr const char* kScanned[] = {"include",  "store", "processor",
                                    "handlers", "tools", "examples"};

std::vector<fs::path> sources() {
  std::vector<fs::path> out;
  const fs::path root = EVENTLITE_SOURCE_DIR;
  for (const char* dir : kScanned)
    for (const auto& entry : fs::recursive_directory_iterator(root / dir)) {
      const auto ext = entry.path().extension();
      if (entry.is_regular_file() && (ext == ".cpp" || ext == ".hpp"))
        out.push_back(entry.path());
    }
  std::sort(out.begin(), out.end());
  return out;
}

std::string describe(const std::vector<Finding>& findings) {
  std::string out;
  for (const Finding& f : findings) out += f.what + ": `" + f.spliced + "`\n";
  return out;
}

// ---- the scanner's own behaviour ------------------------------------------------

TEST(SqlSplicingScan, FlagsSqlJoinedWithAValue) {
  const char* const kSplices[] = {
      R"~(std::string q = "SELECT * FROM t WHERE x=" + v;)~",
      R"~(auto q = "SELECT * FROM t WHERE x = '" + v + "'";)~",
      R"~(std::string q = std::string("SELECT * FROM ") + table + " WHERE x = ?";)~",
      R"~(std::string q = "select * from t where x = '" + v + "'";)~",
      R"~(std::string q = "SELECT * FROM t LIMIT " + std::to_string(n);)~",
      R"~(auto q = fmt::format("SELECT * FROM t WHERE x = {}", v);)~",
      R"~(auto q = std::format("DELETE FROM t WHERE id = {}", id);)~",
      R"~(auto r = fmt::format("UPDATE t SET a = {} WHERE id = ?", f(v));)~",
      R"~(char* q = sqlite3_mprintf("SELECT * FROM t WHERE x = %Q", v);)~",
      R"~(std::ostringstream os; os << "UPDATE t SET a = " << v;)~",
      R"~(std::ostringstream os; os << "SELECT * FROM t WHERE x = "; os << v;)~",
      R"~(std::string sql = "SELECT * FROM t"; sql += " WHERE x = "; sql += v;)~",
      R"~(std::string sql = "SELECT * FROM t WHERE x = "; sql.append(v);)~",
      R"~(std::string sql("SELECT * FROM t WHERE x = "); sql.insert(sql.size(), v);)~",
      R"~(std::string base = "SELECT * FROM t"; auto q = base + " WHERE x = " + v;)~",
      R"~(std::string kWhere = v; auto q = "SELECT * FROM t WHERE " + kWhere;)~",
      R"~(sql += first ? "WHERE a = " + v : "WHERE b = ?";)~",
      R"~(void f() { if (ok) { run(db, "SELECT * FROM t WHERE x = " + v); } })~",
  };
  for (const char* src : kSplices) {
    SCOPED_TRACE(src);
    EXPECT_FALSE(scan_source(src).empty());
  }
}

TEST(SqlSplicingScan, LeavesLiteralsConstantsAndBoundParametersAlone) {
  const char* const kClean[] = {
      R"~(Stmt s(db, "SELECT * FROM t WHERE x = ?1"); s.bind(1, v);)~",
      R"~(constexpr const char* kColumns = "a, b";
         std::string sql = std::string("SELECT ") + kColumns + " FROM t WHERE seq >= ?";
         sql += flag ? " ORDER BY a LIMIT ?" : " ORDER BY b LIMIT ?";)~",
      R"~(std::string sql = "INSERT INTO t VALUES ";
         for (std::size_t r = 0; r < n; ++r) sql += r == 0 ? "(?,?)" : ",(?,?)";)~",
      R"~(constexpr int kCacheKiB = 16 * 1024;
         auto p = fmt::format("PRAGMA synchronous={};PRAGMA cache_size=-{};",
                              full ? "FULL" : "NORMAL", kCacheKiB);)~",
      R"~(std::string m = fmt::format("cannot create \"{}\": {}", path, why);)~",
      R"~(const std::array<std::string_view, 2> select{"SELECT", db};)~",
      R"~(std::cout << "seq " << seq << "\n"; auto s = a + b;)~",
      R"~(auto n = db.execAndGet("SELECT count(*) FROM t").getInt64() + offset;)~",
      R"~(// "SELECT * FROM t WHERE x=" + v
         /* fmt::format("DELETE FROM t WHERE id = {}", id) */)~",
      R"~(auto q = R"sql(SELECT * FROM t WHERE x = ?)sql"; run(q);)~",
  };
  for (const char* src : kClean) {
    SCOPED_TRACE(src);
    const auto found = scan_source(src);
    EXPECT_TRUE(found.empty()) << describe(found);
  }
}

TEST(SqlSplicingScan, AnAllowedSpliceMustBeQuotedWhereItIsSplicedAndMatchSomething) {
  const auto quoted = scan_source(
      R"~(auto q = "SELECT * FROM " + detail::quote_identifier(table);)~", "store/x.cpp");
  ASSERT_EQ(quoted.size(), 1u);
  EXPECT_TRUE(unexplained(quoted, {{"store/x.cpp", "detail::quote_identifier(table)",
                                    "quote_identifier", "a table the application names"}})
                  .empty());
  // Listed, but spliced raw: still a failure.
  const auto raw = scan_source(R"~(auto q = "SELECT * FROM " + table;)~", "store/x.cpp");
  EXPECT_EQ(unexplained(raw, {{"store/x.cpp", "table", "quote_identifier", "?"}}).size(),
            1u);
  // Not listed at all, and an entry that matches nothing.
  EXPECT_EQ(unexplained(quoted, {}).size(), 1u);
  EXPECT_EQ(unexplained({}, {{"store/x.cpp", "t", "quote_identifier", "?"}}).size(), 1u);
}

// ---- the tree -------------------------------------------------------------------

TEST(SqlSplicing, NoSqlInTheSourceTreeIsBuiltFromValues) {
  const auto files = sources();
  std::set<std::string> constants;
  std::vector<std::string> texts;
  for (const fs::path& f : files) texts.push_back(read_file(f));
  // Constants may be defined in one file (a header) and used in another.
  for (int pass = 0; pass < 2; ++pass)
    for (const std::string& text : texts) learn_constants(text, constants);

  std::vector<Finding> findings;
  std::size_t sql_literals = 0;
  std::set<std::string> names;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string rel = fs::relative(files[i], EVENTLITE_SOURCE_DIR).generic_string();
    names.insert(rel);
    Scanner scanner(rel, texts[i], constants);
    sql_literals += scanner.sql_literals();
    for (Finding& f : scanner.run()) findings.push_back(std::move(f));
  }
  // It read the tree it should: the files that hold the store's SQL, and plenty of it.
  for (const char* known :
       {"store/append.cpp", "store/reader.cpp", "store/sqlite_util.cpp",
        "processor/queries.cpp", "tools/main.cpp", "handlers/redis/sink.cpp",
        "examples/signup/main.cpp"})
    EXPECT_TRUE(names.count(known)) << known << " was not scanned";
  EXPECT_GT(files.size(), 100u);
  EXPECT_GT(sql_literals, 100u);
  EXPECT_TRUE(constants.count("kEventColumns")) << "the constants were not read";

  const auto problems = unexplained(findings, kAllowed);
  std::string report;
  for (const std::string& p : problems) report += p + "\n";
  EXPECT_TRUE(problems.empty())
      << "SQL built by splicing (bind the value, or quote an "
         "identifier and list it in kAllowed with the reason):\n"
      << report;
}

}  // namespace
