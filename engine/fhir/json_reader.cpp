// FHIR JSON → Element. A hand-written reader rather than a generic JSON DOM:
// it keeps decimals as their exact text, reports line and column, rejects
// duplicate keys, and builds the model in one pass without an intermediate
// tree.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>

#include "engine/fhir/codec.h"
#include "engine/fhir/path.h"
#include "engine/fhir/reader_support.h"
#include "engine/fhir/xml_support.h"

namespace courier::fhir {

namespace {

// Thrown for input that cannot be read further; caught in parse_json.
struct Unreadable {
  std::string message;
  std::size_t offset;
};

constexpr std::size_t kMaxIssues = 1000;

std::string with_article(const std::string& noun) {
  const bool vowel = !noun.empty() && std::string_view("aeiouAEIOU").find(noun[0]) != std::string_view::npos;
  return (vowel ? "an " : "a ") + noun;
}

class JsonReader {
 public:
  JsonReader(std::string_view text, const ParseLimits& limits, const TypeRegistry& registry, Issues& issues)
      : in_(text), limits_(limits), registry_(registry), issues_(issues), path_("") {}

  std::optional<Element> read_document() {
    skip_ws();
    if (peek() != '{') fail("expected a JSON object holding a FHIR resource");
    const TypeInfo* type = resource_type_at(pos_);
    if (type == nullptr) return std::nullopt;
    path_ = PathBuilder(type->name);
    Element root(nullptr, type);
    root.set_offset(pos_);
    read_members(root, *type, 1, true);
    skip_ws();
    if (pos_ != in_.size()) fail("unexpected text after the resource");
    return root;
  }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
  const ParseLimits& limits_;
  const TypeRegistry& registry_;
  Issues& issues_;
  PathBuilder path_;
  std::vector<std::string_view> keys_;    // keys of the objects being read, for duplicates
  std::deque<std::string> escaped_keys_;  // owners of keys that had escapes
  std::string scratch_;

  // ---- errors ---------------------------------------------------------------

  [[noreturn]] void fail(std::string message, std::size_t offset) {
    throw Unreadable{std::move(message), offset};
  }
  [[noreturn]] void fail(std::string message) { fail(std::move(message), pos_); }

  void report(std::string code, std::string message, std::size_t offset,
              Severity severity = Severity::error) {
    if (issues_.size() >= kMaxIssues) fail("too many errors; stopped reading", offset);
    issues_.push_back(
        Issue{severity, std::move(code), std::move(message), path_.str(), util::line_column(in_, offset)});
  }

  // ---- tokens ---------------------------------------------------------------

  char peek() const { return pos_ < in_.size() ? in_[pos_] : '\0'; }

  void skip_ws() {
    while (pos_ < in_.size()) {
      const char c = in_[pos_];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
      ++pos_;
    }
  }

  void expect(char c) {
    skip_ws();
    if (peek() != c) {
      if (pos_ >= in_.size()) fail(std::string("unexpected end of input, expected '") + c + "'");
      fail(std::string("expected '") + c + "'");
    }
    ++pos_;
  }

  void enter(std::uint32_t depth) {
    if (depth > limits_.max_depth)
      fail("nesting deeper than " + std::to_string(limits_.max_depth) + " levels");
  }

  unsigned hex4() {
    if (pos_ + 4 > in_.size()) fail("incomplete \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = in_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<unsigned>(c - 'A' + 10);
      else
        fail("invalid \\u escape");
    }
    return v;
  }

  // FHIR strings cannot hold control characters other than tab, CR and LF
  // (XML cannot carry them): an escaped one is an error, reading goes on.
  void control_character(unsigned cp, std::size_t at) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "%04X", cp);
    report("value", std::string("control character U+") + hex + " is not allowed in FHIR strings", at);
  }

  // Reads a string token. Returns a view of the input when it has no escapes,
  // else of `buffer` holding the decoded text.
  std::string_view read_string(std::string& buffer) {
    skip_ws();
    if (peek() != '"') fail("expected a string");
    const std::size_t start = ++pos_;
    while (pos_ < in_.size()) {
      const char c = in_[pos_];
      if (c == '"') return in_.substr(start, pos_++ - start);
      if (c == '\\') break;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string must be escaped");
      ++pos_;
    }
    if (pos_ >= in_.size()) fail("unterminated string", start - 1);
    buffer.assign(in_.substr(start, pos_ - start));
    while (true) {
      if (pos_ >= in_.size()) fail("unterminated string", start - 1);
      const char c = in_[pos_++];
      if (c == '"') return buffer;
      if (static_cast<unsigned char>(c) < 0x20)
        fail("control character in a string must be escaped", pos_ - 1);
      if (c != '\\') {
        buffer.push_back(c);
        continue;
      }
      if (pos_ >= in_.size()) fail("unterminated string", start - 1);
      const char e = in_[pos_++];
      switch (e) {
        case '"': buffer.push_back('"'); break;
        case '\\': buffer.push_back('\\'); break;
        case '/': buffer.push_back('/'); break;
        case 'b':
          control_character('\b', pos_ - 2);
          buffer.push_back('\b');
          break;
        case 'f':
          control_character('\f', pos_ - 2);
          buffer.push_back('\f');
          break;
        case 'n': buffer.push_back('\n'); break;
        case 'r': buffer.push_back('\r'); break;
        case 't': buffer.push_back('\t'); break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (pos_ + 2 > in_.size() || in_[pos_] != '\\' || in_[pos_ + 1] != 'u')
              fail("unpaired surrogate in \\u escape");
            pos_ += 2;
            const unsigned low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail("unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("unpaired surrogate in \\u escape");
          }
          if (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') control_character(cp, pos_ - 6);
          util::append_utf8(buffer, cp);
          break;
        }
        default: fail(std::string("invalid escape \\") + e, pos_ - 2);
      }
    }
  }

  // Reads a number token, checking the JSON grammar, and returns its text.
  std::string_view read_number() {
    const std::size_t start = pos_;
    auto digits = [&] {
      const std::size_t from = pos_;
      while (pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9') ++pos_;
      return pos_ - from;
    };
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (digits() == 0) {
      fail("invalid number", start);
    }
    if (peek() == '.') {
      ++pos_;
      if (digits() == 0) fail("invalid number", start);
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (digits() == 0) fail("invalid number", start);
    }
    if (pos_ < in_.size() && (std::isalnum(static_cast<unsigned char>(in_[pos_])) || in_[pos_] == '.'))
      fail("invalid number", start);
    return in_.substr(start, pos_ - start);
  }

  bool read_literal(std::string_view word) {
    if (in_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    if (pos_ < in_.size() && std::isalnum(static_cast<unsigned char>(in_[pos_])))
      fail("invalid literal", pos_ - word.size());
    return true;
  }

  // Skips any JSON value, checking its syntax.
  void skip_value(std::uint32_t depth) {
    skip_ws();
    switch (peek()) {
      case '{': {
        enter(depth);
        ++pos_;
        skip_ws();
        if (peek() == '}') {
          ++pos_;
          return;
        }
        do {
          read_string(scratch_);
          expect(':');
          skip_value(depth + 1);
          skip_ws();
        } while (consume(','));
        expect('}');
        return;
      }
      case '[': {
        enter(depth);
        ++pos_;
        skip_ws();
        if (peek() == ']') {
          ++pos_;
          return;
        }
        do skip_value(depth + 1);
        while (consume(','));
        expect(']');
        return;
      }
      case '"': read_string(scratch_); return;
      case 't':
        if (read_literal("true")) return;
        break;
      case 'f':
        if (read_literal("false")) return;
        break;
      case 'n':
        if (read_literal("null")) return;
        break;
      case '\0':
        if (pos_ >= in_.size()) fail("unexpected end of input");
        break;
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) {
          read_number();
          return;
        }
    }
    fail("expected a JSON value");
  }

  bool consume(char c) {
    skip_ws();
    if (peek() != c) return false;
    ++pos_;
    return true;
  }

  // ---- resources ------------------------------------------------------------

  // The type named by "resourceType" in the object starting at `at`, looked
  // up before reading the object because the key may come last. Reports and
  // returns null when it is missing or unknown.
  const TypeInfo* resource_type_at(std::size_t at) {
    const std::size_t saved = pos_;
    pos_ = at;
    expect('{');
    std::string_view found;
    std::string buffer;
    std::size_t found_at = at;
    skip_ws();
    if (peek() != '}') {
      do {
        const std::string_view key = read_string(buffer);
        expect(':');
        skip_ws();
        if (key == "resourceType") {
          found_at = pos_;
          if (peek() != '"') fail("resourceType must be a string");
          found = read_string(scratch_);
          break;
        }
        skip_value(1);
      } while (consume(','));
    }
    pos_ = saved;
    if (found.empty()) {
      report("structure", "a resource must have a resourceType", at);
      return nullptr;
    }
    const TypeInfo* type = registry_.find_resource(found);
    if (type == nullptr || type->abstract) {
      report("structure", "unknown resourceType '" + std::string(found) + "'", found_at);
      return nullptr;
    }
    return type;
  }

  // ---- objects --------------------------------------------------------------

  void read_members(Element& node, const TypeInfo& type, std::uint32_t depth, bool resource) {
    enter(depth);
    const std::size_t object_start = pos_;
    expect('{');
    const std::size_t first_key = keys_.size();
    skip_ws();
    if (peek() == '}') {
      ++pos_;
      report("structure", "empty objects are not allowed in FHIR JSON", object_start);
      return;
    }
    do {
      skip_ws();
      const std::size_t key_at = pos_;
      std::string key_buffer;
      std::string_view key = read_string(key_buffer);
      if (key.data() == key_buffer.data()) key = escaped_keys_.emplace_back(std::move(key_buffer));
      if (std::find(keys_.begin() + static_cast<std::ptrdiff_t>(first_key), keys_.end(), key) != keys_.end())
        report("structure", "duplicate property '" + std::string(key) + "'", key_at);
      keys_.push_back(key);
      expect(':');
      if (resource && key == "resourceType") {
        skip_value(depth + 1);  // read already by resource_type_at
        continue;
      }
      read_member(node, type, key, key_at, depth);
    } while (consume(','));
    expect('}');
    keys_.resize(first_key);
    if (first_key == 0) escaped_keys_.clear();
    drop_empty_primitives(node, object_start);
    node.sort_children();
    for (const ElementInfo* info : node.drop_extra_singles())
      report("structure", "'" + info->name + (info->choice ? "[x]" : "") + "' may have only one value",
             object_start);
  }

  // A primitive whose item is null in both `name` and `_name` is nothing at
  // all: refused, and left out so that the tree stays writable.
  void drop_empty_primitives(Element& node, std::size_t object_start) {
    auto& children = node.children();
    const auto empty = [](const Element& c) {
      return c.type().is_primitive() && !c.has_value() && c.children().empty();
    };
    for (const Element& c : children)
      if (empty(c)) {
        report("structure",
               "an item of '" + std::string(c.name()) + "' is null in both '" + std::string(c.name()) +
                   "' and '_" + std::string(c.name()) + "'",
               object_start);
        break;
      }
    children.erase(std::remove_if(children.begin(), children.end(), empty), children.end());
  }

  void read_member(Element& node, const TypeInfo& type, std::string_view key, std::size_t key_at,
                   std::uint32_t depth) {
    const bool underscore = key.size() > 1 && key[0] == '_';
    const std::string_view name = underscore ? key.substr(1) : key;
    const PropertyMatch match = registry_.property(type, name);
    if (match.element == nullptr || (underscore && !match.type->is_primitive())) {
      std::string message = "unknown property '" + std::string(key) + "' in " + type.name;
      if (match.element == nullptr) {
        const std::string near = registry_.suggest(type, name);
        if (!near.empty()) message += "; did you mean '" + near + "'?";
      }
      report("structure", std::move(message), key_at);
      skip_value(depth + 1);
      return;
    }
    path_.push(match.element->name, -1, match.element->choice ? std::string_view(match.type->name) : "");
    skip_ws();
    const bool array = peek() == '[';
    if (array != match.element->repeats()) {
      report("structure", "'" + std::string(key) + (array ? "' must not be an array" : "' must be an array"),
             pos_);
      skip_value(depth + 1);
    } else if (array) {
      enter(depth + 1);
      ++pos_;
      skip_ws();
      if (peek() == ']') {
        report("structure", "empty arrays are not allowed in FHIR JSON", pos_);
        ++pos_;
      } else {
        std::size_t index = 0;
        do {
          path_.pop();
          path_.push(match.element->name, static_cast<std::int32_t>(index),
                     match.element->choice ? std::string_view(match.type->name) : "");
          read_item(node, match, underscore, index++, depth + 2, true);
        } while (consume(','));
        expect(']');
      }
    } else {
      read_item(node, match, underscore, 0, depth + 1, false);
    }
    path_.pop();
  }

  // The index-th child for `element`, created when the other half of a
  // primitive ("given" / "_given") has not made it yet.
  Element& primitive_slot(Element& node, const PropertyMatch& match, std::size_t index) {
    std::size_t seen = 0;
    for (Element& c : node.children())
      if (c.info() == match.element && &c.type() == match.type && seen++ == index) return c;
    for (; seen < index; ++seen) node.children().emplace_back(match.element, match.type);
    return node.children().emplace_back(match.element, match.type);
  }

  void read_item(Element& node, const PropertyMatch& match, bool underscore, std::size_t index,
                 std::uint32_t depth, bool in_array) {
    skip_ws();
    const std::size_t at = pos_;
    if (peek() == 'n' && read_literal("null")) {
      if (!in_array || !match.type->is_primitive())
        report("structure", "null is only allowed to pad the arrays of a repeating primitive", at);
      else
        primitive_slot(node, match, index);  // keeps the positions of the two arrays aligned
      return;
    }
    if (underscore) {
      if (peek() != '{') {
        report("structure", "'_" + match.element->name + "' must hold an object", at);
        skip_value(depth);
        return;
      }
      Element& slot = primitive_slot(node, match, in_array ? index : 0);
      slot.set_offset(at);
      read_members(slot, *match.type, depth, false);
      return;
    }
    const TypeInfo& type = *match.type;
    if (type.is_primitive()) {
      read_primitive(primitive_slot(node, match, in_array ? index : 0), type, at, depth);
      return;
    }
    if (peek() != '{') {
      report("structure", "expected an object for " + match.element->name + " (" + type.name + ")", at);
      skip_value(depth);
      return;
    }
    if (type.is_resource()) {  // a resource slot: contained, entry.resource, ...
      const TypeInfo* actual = resource_type_at(pos_);
      if (actual == nullptr) {
        skip_value(depth);
        return;
      }
      Element& child = node.children().emplace_back(match.element, actual);
      child.set_offset(at);
      read_members(child, *actual, depth, true);
      return;
    }
    Element& child = node.children().emplace_back(match.element, &type);
    child.set_offset(at);
    read_members(child, type, depth, false);
  }

  void read_primitive(Element& slot, const TypeInfo& type, std::size_t at, std::uint32_t depth) {
    slot.set_offset(at);
    const char c = peek();
    if (c == '"') {
      std::string buffer;
      const std::string_view text = read_string(buffer);
      if (type.json_kind != JsonKind::string) {
        report("structure",
               with_article(type.name) + " must be a JSON " +
                   (type.json_kind == JsonKind::boolean ? "boolean" : "number") + ", not a string",
               at);
        return;
      }
      if (type.name == "xhtml") {
        if (auto problem = check_xhtml(text)) report("value", "invalid XHTML: " + *problem, at);
      }
      slot.set_value(text.data() == buffer.data() ? std::move(buffer) : std::string(text));
      return;
    }
    if (c == 't' || c == 'f') {
      const bool ok = read_literal("true") || read_literal("false");
      if (!ok) fail("expected a JSON value");
      if (type.json_kind != JsonKind::boolean) {
        report("structure",
               with_article(type.name) + " must be a JSON " +
                   (type.json_kind == JsonKind::number ? "number" : "string") + ", not a boolean",
               at);
        return;
      }
      slot.set_value(c == 't' ? "true" : "false");
      return;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      const std::string_view number = read_number();
      if (type.json_kind != JsonKind::number) {
        report("structure",
               with_article(type.name) + " must be a JSON " +
                   (type.json_kind == JsonKind::boolean ? "boolean" : "string") + ", not a number",
               at);
        return;
      }
      slot.set_value(std::string(number));
      return;
    }
    if (c == '{' || c == '[') {
      report("structure",
             with_article(type.name) + " must be a primitive value, not " +
                 (c == '{' ? "an object" : "an array"),
             at);
      skip_value(depth);
      return;
    }
    skip_value(0);  // reports the syntax error
  }
};

}  // namespace

ParseResult parse_json(std::string_view text, const ParseLimits& limits, const TypeRegistry& registry) {
  ParseResult result;
  auto fatal = [&](std::string message, std::size_t offset) {
    result.issues.push_back(fatal_issue(std::move(message), text, offset));
  };
  if (auto problem = check_input(text, limits)) {
    result.issues.push_back(std::move(*problem));
    return result;
  }
  try {
    JsonReader reader(text, limits, registry, result.issues);
    result.resource = reader.read_document();
  } catch (const Unreadable& e) {
    result.resource.reset();
    fatal("malformed JSON: " + e.message, e.offset);
  }
  return result;
}

}  // namespace courier::fhir
