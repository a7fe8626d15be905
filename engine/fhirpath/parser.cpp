// A Pratt parser for FHIRPath, precedence as in the specification's grammar
// (lowest first): implies; or xor; and; in contains; = ~ != !~;
// < > <= >=; |; is as; + - &; * / div mod; unary + -; . [] (invocation).
#include <cctype>
#include <charconv>

#include "engine/fhirpath/ast.h"
#include "engine/fhirpath/fhirpath.h"
#include "engine/util/text.h"

namespace courier::fhirpath {

namespace {

enum class Token { end, identifier, delimited, string, number, temporal, op, variable, special };

struct Lexeme {
  Token token = Token::end;
  std::string text;  // identifier name, decoded string, number text, operator, ...
  std::size_t position = 0;
};

[[noreturn]] void syntax_error(std::size_t position, const std::string& message) {
  throw Error(Error::Kind::syntax, position, message);
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : s_(text) {}

  Lexeme next() {
    skip_space_and_comments();
    Lexeme l;
    l.position = i_;
    if (i_ >= s_.size()) return l;
    const char c = s_[i_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      l.token = Token::identifier;
      l.text = word();
    } else if (c == '`') {
      l.token = Token::delimited;
      l.text = quoted('`');
    } else if (c == '\'') {
      l.token = Token::string;
      l.text = quoted('\'');
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      l.token = Token::number;
      const std::size_t start = i_;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
      if (i_ + 1 < s_.size() && s_[i_] == '.' && std::isdigit(static_cast<unsigned char>(s_[i_ + 1]))) {
        ++i_;
        while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
      }
      l.text = std::string(s_.substr(start, i_ - start));
    } else if (c == '@') {
      l.token = Token::temporal;
      const std::size_t start = ++i_;
      while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' ||
                                s_[i_] == ':' || s_[i_] == '.' || s_[i_] == '+')) {
        // A '.' or '-'/'+' belongs to the literal only when a digit follows.
        if ((s_[i_] == '.' || s_[i_] == '+' || s_[i_] == '-') &&
            (i_ + 1 >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_ + 1]))))
          break;
        ++i_;
      }
      l.text = std::string(s_.substr(start, i_ - start));
    } else if (c == '%') {
      l.token = Token::variable;
      ++i_;
      if (i_ < s_.size() && s_[i_] == '`')
        l.text = quoted('`');
      else if (i_ < s_.size() && s_[i_] == '\'')
        l.text = quoted('\'');
      else
        l.text = word();
      if (l.text.empty()) syntax_error(l.position, "expected a name after '%'");
    } else if (c == '$') {
      l.token = Token::special;
      ++i_;
      l.text = "$" + word();
    } else {
      l.token = Token::op;
      static constexpr std::string_view two[] = {"<=", ">=", "!=", "!~"};
      for (std::string_view op : two) {
        if (s_.substr(i_, 2) == op) {
          l.text = std::string(op);
          i_ += 2;
          return l;
        }
      }
      if (std::string_view("().,[]{}+-*/|&=~<>").find(c) == std::string_view::npos)
        syntax_error(i_, std::string("unexpected character '") + c + "'");
      l.text = std::string(1, c);
      ++i_;
    }
    return l;
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;

  std::string word() {
    const std::size_t start = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_')) ++i_;
    return std::string(s_.substr(start, i_ - start));
  }

  void skip_space_and_comments() {
    while (i_ < s_.size()) {
      if (std::isspace(static_cast<unsigned char>(s_[i_]))) {
        ++i_;
      } else if (s_.substr(i_, 2) == "//") {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
      } else if (s_.substr(i_, 2) == "/*") {
        const std::size_t end = s_.find("*/", i_ + 2);
        if (end == std::string_view::npos) syntax_error(i_, "unterminated comment");
        i_ = end + 2;
      } else {
        break;
      }
    }
  }

  std::string quoted(char quote) {
    const std::size_t start = i_++;
    std::string out;
    while (i_ < s_.size() && s_[i_] != quote) {
      char c = s_[i_++];
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i_ >= s_.size()) break;
      c = s_[i_++];
      switch (c) {
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'f': out.push_back('\f'); break;
        case 'u': {
          if (i_ + 4 > s_.size()) syntax_error(i_, "incomplete \\u escape");
          unsigned cp = 0;
          const auto [end, ec] = std::from_chars(s_.data() + i_, s_.data() + i_ + 4, cp, 16);
          if (ec != std::errc() || end != s_.data() + i_ + 4) syntax_error(i_, "invalid \\u escape");
          util::append_utf8(out, cp);
          i_ += 4;
          break;
        }
        default: out.push_back(c);  // \' \" \` \\ \/
      }
    }
    if (i_ >= s_.size()) syntax_error(start, "unterminated quoted text");
    ++i_;
    return out;
  }
};

class Parser {
 public:
  explicit Parser(std::string_view text) : lexer_(text) { advance(); }

  Node parse_all() {
    if (current_.token == Token::end) syntax_error(0, "the expression is empty");
    Node n = expression(0);
    if (current_.token != Token::end) syntax_error(current_.position, "unexpected '" + current_.text + "'");
    return n;
  }

 private:
  Lexer lexer_;
  Lexeme current_;
  // Bounds that keep the tree shallow enough for recursive evaluation:
  // nesting of sub-expressions, and operators in all (each can deepen a chain).
  int depth_ = 0;
  int operators_ = 0;
  static constexpr int kMaxDepth = 200;
  static constexpr int kMaxOperators = 1000;

  void advance() { current_ = lexer_.next(); }

  bool at_op(std::string_view op) const { return current_.token == Token::op && current_.text == op; }
  bool at_word(std::string_view w) const { return current_.token == Token::identifier && current_.text == w; }

  void expect_op(std::string_view op) {
    if (!at_op(op)) syntax_error(current_.position, "expected '" + std::string(op) + "'");
    advance();
  }

  // Binding power of the binary operator at the current token, 0 if none.
  int infix_power() const {
    if (current_.token == Token::identifier) {
      const std::string& w = current_.text;
      if (w == "implies") return 1;
      if (w == "or" || w == "xor") return 2;
      if (w == "and") return 3;
      if (w == "in" || w == "contains") return 4;
      if (w == "is" || w == "as") return 8;
      if (w == "div" || w == "mod") return 10;
      return 0;
    }
    if (current_.token != Token::op) return 0;
    const std::string& o = current_.text;
    if (o == "=" || o == "~" || o == "!=" || o == "!~") return 5;
    if (o == "<" || o == ">" || o == "<=" || o == ">=") return 6;
    if (o == "|") return 7;
    if (o == "+" || o == "-" || o == "&") return 9;
    if (o == "*" || o == "/") return 10;
    if (o == "." || o == "[") return 12;
    return 0;
  }

  Node expression(int min_power) {
    struct Nesting {
      int& depth;
      explicit Nesting(int& d, std::size_t position) : depth(d) {
        if (++depth > kMaxDepth) {
          --depth;
          syntax_error(position, "the expression is nested too deeply");
        }
      }
      ~Nesting() { --depth; }
    } nesting(depth_, current_.position);
    Node left = prefix();
    for (;;) {
      const int power = infix_power();
      if (power == 0 || power <= min_power) return left;
      const Lexeme op = current_;
      if (++operators_ > kMaxOperators) syntax_error(op.position, "the expression has too many operators");
      advance();
      if (op.text == ".") {
        left = invocation(std::move(left));
      } else if (op.text == "[") {
        Node n;
        n.kind = Node::Kind::indexer;
        n.position = op.position;
        n.input = std::make_unique<Node>(std::move(left));
        n.args.push_back(expression(0));
        expect_op("]");
        left = std::move(n);
      } else if (op.text == "is" || op.text == "as") {
        Node n;
        n.kind = Node::Kind::type_test;
        n.name = op.text;
        n.position = op.position;
        n.type_name = qualified_name();
        n.args.push_back(std::move(left));
        left = std::move(n);
      } else {
        Node n;
        n.kind = Node::Kind::binary;
        n.name = op.text;
        n.op = binary_op(op.text);
        n.position = op.position;
        n.args.push_back(std::move(left));
        n.args.push_back(expression(power));
        left = std::move(n);
      }
    }
  }

  std::string qualified_name() {
    if (current_.token != Token::identifier && current_.token != Token::delimited)
      syntax_error(current_.position, "expected a type name");
    std::string name = current_.text;
    advance();
    if (at_op(".")) {
      advance();
      if (current_.token != Token::identifier && current_.token != Token::delimited)
        syntax_error(current_.position, "expected a type name after '.'");
      name += "." + current_.text;
      advance();
    }
    return name;
  }

  // After a '.': a member or a function call on `target`.
  Node invocation(Node target) {
    if (current_.token != Token::identifier && current_.token != Token::delimited)
      syntax_error(current_.position, "expected a name after '.'");
    Node n = name_or_call();
    n.input = std::make_unique<Node>(std::move(target));
    return n;
  }

  Node name_or_call() {
    Node n;
    n.position = current_.position;
    n.name = current_.text;
    const bool delimited = current_.token == Token::delimited;
    advance();
    if (!delimited && at_op("(")) {
      n.kind = Node::Kind::function;
      advance();
      if (!at_op(")")) {
        do n.args.push_back(expression(0));
        while (at_op(",") && (advance(), true));
      }
      expect_op(")");
    } else {
      n.kind = Node::Kind::member;
    }
    return n;
  }

  Node literal(Item value, std::size_t position) {
    Node n;
    n.kind = Node::Kind::literal;
    n.literal = std::move(value);
    n.position = position;
    return n;
  }

  Node prefix() {
    const Lexeme l = current_;
    switch (l.token) {
      case Token::end: syntax_error(l.position, "unexpected end of expression");
      case Token::string: advance(); return literal(Item{l.text}, l.position);
      case Token::number: return number(l);
      case Token::temporal: advance(); return temporal(l);
      case Token::variable: {
        advance();
        Node n;
        n.kind = Node::Kind::variable;
        n.name = l.text;
        n.position = l.position;
        return n;
      }
      case Token::special: {
        advance();
        Node n;
        n.position = l.position;
        if (l.text == "$this")
          n.kind = Node::Kind::this_item;
        else if (l.text == "$index")
          n.kind = Node::Kind::index;
        else if (l.text == "$total")
          n.kind = Node::Kind::total;
        else
          syntax_error(l.position, "unknown " + l.text);
        return n;
      }
      case Token::delimited: return name_or_call();
      case Token::identifier:
        if (l.text == "true" || l.text == "false") {
          advance();
          return literal(Item{l.text == "true"}, l.position);
        }
        return name_or_call();
      case Token::op:
        if (l.text == "(") {
          advance();
          Node inner = expression(0);
          expect_op(")");
          return inner;
        }
        if (l.text == "{") {
          advance();
          expect_op("}");
          Node n;
          n.position = l.position;
          return n;  // empty
        }
        if (l.text == "-" || l.text == "+") {
          advance();
          Node n;
          n.kind = Node::Kind::unary;
          n.name = l.text;
          n.position = l.position;
          n.args.push_back(expression(11));
          return n;
        }
        syntax_error(l.position, "unexpected '" + l.text + "'");
    }
    syntax_error(l.position, "unexpected token");
  }

  Node number(const Lexeme& l) {
    advance();
    const auto value = Decimal::parse(l.text);
    if (!value) syntax_error(l.position, "invalid number " + l.text);
    // A quantity: a number followed by a unit string or a calendar keyword.
    if (current_.token == Token::string) {
      const std::string unit = current_.text;
      advance();
      return literal(Item{Quantity{*value, unit}}, l.position);
    }
    if (current_.token == Token::identifier && is_calendar_unit(current_.text)) {
      const std::string unit = current_.text;
      advance();
      return literal(Item{Quantity{*value, unit}}, l.position);
    }
    if (l.text.find('.') == std::string::npos) {
      const auto whole = value->truncated();
      if (!whole) syntax_error(l.position, "integer out of range");
      return literal(Item{*whole}, l.position);
    }
    return literal(Item{*value}, l.position);
  }

  Node temporal(const Lexeme& l) {
    const std::string& t = l.text;
    std::optional<Temporal> value;
    if (t.starts_with("T")) {
      value = Temporal::parse(t.substr(1), Temporal::Kind::time);
      // @T14:34:28Z: a time of day has no time zone in FHIRPath. The
      // official suite expects this to fail when run, not when parsed.
      if (!value && Temporal::parse("0001-01-01" + t, Temporal::Kind::date_time)) {
        Node n;
        n.kind = Node::Kind::no_value;
        n.position = l.position;
        n.name = "a time cannot have a time zone: @" + t + " (use a dateTime such as @2020-01-01" + t + ")";
        return n;
      }
    } else if (t.find('T') != std::string::npos)
      value = Temporal::parse(t, Temporal::Kind::date_time);
    else
      value = Temporal::parse(t, Temporal::Kind::date);
    if (!value) syntax_error(l.position, "invalid date/time literal @" + t);
    return literal(Item{*value}, l.position);
  }
};

}  // namespace

Node parse(std::string_view text) {
  return Parser(text).parse_all();
}

std::string type_specifier(const Node& node) {
  if (node.kind != Node::Kind::member) return {};
  if (!node.input) return node.name;
  if (node.input->kind == Node::Kind::member && !node.input->input) return node.input->name + "." + node.name;
  return {};
}

BinaryOp binary_op(std::string_view name) {
  static const std::pair<std::string_view, BinaryOp> table[] = {
      {"implies", BinaryOp::implies}, {"or", BinaryOp::or_},
      {"xor", BinaryOp::xor_},        {"and", BinaryOp::and_},
      {"in", BinaryOp::in},           {"contains", BinaryOp::contains},
      {"=", BinaryOp::equal},         {"~", BinaryOp::equivalent},
      {"!=", BinaryOp::not_equal},    {"!~", BinaryOp::not_equivalent},
      {"<", BinaryOp::less},          {">", BinaryOp::greater},
      {"<=", BinaryOp::less_equal},   {">=", BinaryOp::greater_equal},
      {"|", BinaryOp::union_},        {"+", BinaryOp::plus},
      {"-", BinaryOp::minus},         {"&", BinaryOp::concat},
      {"*", BinaryOp::times},         {"/", BinaryOp::divide},
      {"div", BinaryOp::div},         {"mod", BinaryOp::mod},
  };
  for (const auto& [n, op] : table)
    if (n == name) return op;
  return BinaryOp::none;
}

}  // namespace courier::fhirpath
