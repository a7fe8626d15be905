// Element → FHIR JSON, in definition order, with primitives split into
// `name` and `_name` and repeating primitives as null-padded parallel arrays.
#include <span>

#include "engine/fhir/codec.h"

namespace courier::fhir {

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  std::size_t run = 0;  // start of the pending run of bytes that need no escape
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.substr(run, i - run));
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: {
        static constexpr char hex[] = "0123456789abcdef";
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0xF];
      }
    }
  }
  out.append(s.substr(run));
  out += '"';
}

namespace {

class JsonWriter {
 public:
  explicit JsonWriter(const WriteOptions& options) : pretty_(options.pretty) {}

  std::string take(const Element& resource) {
    write_object(resource, 0);
    if (pretty_) out_ += '\n';
    return std::move(out_);
  }

 private:
  std::string out_;
  bool pretty_;

  void newline(int indent) {
    if (!pretty_) return;
    out_ += '\n';
    out_.append(static_cast<std::size_t>(indent) * 2, ' ');
  }

  void write_key(std::string_view key, bool& first, int indent) {
    if (!first) out_ += ',';
    first = false;
    newline(indent);
    out_ += '"';
    out_ += key;
    out_ += pretty_ ? "\": " : "\":";
  }

  void write_string(std::string_view s) { append_json_string(out_, s); }

  void write_value(const Element& e) {
    if (e.type().json_kind == JsonKind::string)
      write_string(e.value());
    else
      out_ += e.value();
  }

  // An object's members: resourceType for a resource, then its children.
  void write_object(const Element& e, int indent) {
    out_ += '{';
    bool first = true;
    if (e.is_resource()) {
      write_key("resourceType", first, indent + 1);
      write_string(e.type().name);
    }
    write_members(e.children(), first, indent + 1);
    newline(indent);
    out_ += '}';
  }

  void write_members(std::span<const Element> children, bool& first, int indent) {
    std::size_t i = 0;
    while (i < children.size()) {
      // A group: the consecutive children of one element (of one type, but
      // for resource slots such as `contained`).
      std::size_t end = i + 1;
      while (end < children.size() && children[end].info() == children[i].info()) ++end;
      write_group(children.subspan(i, end - i), first, indent);
      i = end;
    }
  }

  void write_group(std::span<const Element> group, bool& first, int indent) {
    const Element& head = group.front();
    const std::string name = wire_name(*head.info(), head.type());
    const bool array = head.info()->repeats();
    if (!head.type().is_primitive()) {
      write_key(name, first, indent);
      if (array) out_ += '[';
      for (std::size_t k = 0; k < group.size(); ++k) {
        if (k > 0) out_ += ',';
        if (array) newline(indent + 1);
        write_object(group[k], array ? indent + 1 : indent);
      }
      if (array) {
        newline(indent);
        out_ += ']';
      }
      return;
    }
    bool any_value = false;
    bool any_extra = false;
    for (const Element& e : group) {
      any_value |= e.has_value();
      any_extra |= !e.children().empty();
    }
    if (any_value) {
      write_key(name, first, indent);
      if (array) out_ += '[';
      for (std::size_t k = 0; k < group.size(); ++k) {
        if (k > 0) out_ += pretty_ ? ", " : ",";
        if (group[k].has_value())
          write_value(group[k]);
        else
          out_ += "null";
      }
      if (array) out_ += ']';
    }
    if (any_extra) {
      write_key("_" + name, first, indent);
      if (array) out_ += '[';
      for (std::size_t k = 0; k < group.size(); ++k) {
        if (k > 0) out_ += ',';
        if (group[k].children().empty()) {
          out_ += "null";
          continue;
        }
        if (array) newline(indent + 1);
        write_object(group[k], array ? indent + 1 : indent);
      }
      if (array) out_ += ']';
    }
  }
};

}  // namespace

std::string write_json(const Element& resource, const WriteOptions& options) {
  return JsonWriter(options).take(resource);
}

}  // namespace courier::fhir
