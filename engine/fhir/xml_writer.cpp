// Element → FHIR XML: elements in definition order, `value`, `url` and
// element `id` as attributes, resources wrapped in an element named after
// their type, the narrative as XHTML.
#include "engine/fhir/codec.h"
#include "engine/fhir/xml_support.h"

namespace courier::fhir {

namespace {

class XmlWriter {
 public:
  explicit XmlWriter(const WriteOptions& options) : pretty_(options.pretty) {}

  std::string take(const Element& resource) {
    out_ += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
    newline(0);
    write_resource(resource, 0, true);
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

  void write_escaped(std::string_view s) {
    std::size_t run = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const char* replacement;
      switch (s[i]) {
        case '&': replacement = "&amp;"; break;
        case '<': replacement = "&lt;"; break;
        case '>': replacement = "&gt;"; break;
        case '"': replacement = "&quot;"; break;
        // Kept as references: a parser turns literal ones into spaces.
        case '\n': replacement = "&#xA;"; break;
        case '\r': replacement = "&#xD;"; break;
        case '\t': replacement = "&#x9;"; break;
        default: continue;
      }
      out_.append(s.substr(run, i - run));
      out_ += replacement;
      run = i + 1;
    }
    out_.append(s.substr(run));
  }

  void write_attribute(std::string_view name, std::string_view value) {
    out_ += ' ';
    out_ += name;
    out_ += "=\"";
    write_escaped(value);
    out_ += '"';
  }

  void write_resource(const Element& resource, int indent, bool root) {
    out_ += '<';
    out_ += resource.type().name;
    if (root) write_attribute("xmlns", kFhirNamespace);
    write_body(resource, resource.type().name, indent);
  }

  // After the start tag's name: attributes, then children or "/>".
  void write_body(const Element& e, std::string_view tag, int indent) {
    bool has_elements = false;
    for (const Element& c : e.children()) {
      if (c.info()->xml_attribute)
        write_attribute(c.info()->name, c.value());
      else
        has_elements = true;
    }
    if (e.has_value()) write_attribute("value", e.value());
    if (!has_elements) {
      out_ += "/>";
      return;
    }
    out_ += '>';
    for (const Element& c : e.children())
      if (!c.info()->xml_attribute) write_child(c, indent + 1);
    newline(indent);
    out_ += "</";
    out_ += tag;
    out_ += '>';
  }

  void write_child(const Element& e, int indent) {
    newline(indent);
    if (e.type().name == "xhtml") {
      out_ += e.value();  // checked XHTML with its own xmlns
      return;
    }
    const std::string name = wire_name(*e.info(), e.type());
    out_ += '<';
    out_ += name;
    if (e.is_resource()) {
      out_ += '>';
      newline(indent + 1);
      write_resource(e, indent + 1, false);
      newline(indent);
      out_ += "</";
      out_ += name;
      out_ += '>';
      return;
    }
    write_body(e, name, indent);
  }
};

}  // namespace

std::string write_xml(const Element& resource, const WriteOptions& options) {
  return XmlWriter(options).take(resource);
}

std::string write(const Element& resource, Format format, const WriteOptions& options) {
  return format == Format::json ? write_json(resource, options) : write_xml(resource, options);
}

std::string_view to_string(Format format) {
  return format == Format::json ? "json" : "xml";
}

}  // namespace courier::fhir
