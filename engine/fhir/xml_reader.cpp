// FHIR XML → Element, through pugixml. Namespaces are resolved by hand since
// pugixml does not: FHIR elements must be in the FHIR namespace, the
// narrative in XHTML's.
#include <sstream>

#include <pugixml.hpp>

#include "engine/fhir/codec.h"
#include "engine/fhir/path.h"
#include "engine/fhir/primitive.h"
#include "engine/fhir/reader_support.h"
#include "engine/fhir/xml_support.h"

namespace courier::fhir {

namespace {

constexpr std::size_t kMaxIssues = 1000;

struct TooManyIssues {};

class XmlReader {
 public:
  XmlReader(std::string_view text, const ParseLimits& limits, const TypeRegistry& registry, Issues& issues)
      : in_(text), limits_(limits), registry_(registry), issues_(issues), path_("") {}

  std::optional<Element> read(const pugi::xml_node& root) {
    Scope scope(*this, root);
    const std::string_view local = local_name(root);
    path_ = PathBuilder(local);
    if (namespace_of(root) != kFhirNamespace) {
      report("structure", "the root element must be in the FHIR namespace " + std::string(kFhirNamespace),
             root);
      return std::nullopt;
    }
    const TypeInfo* type = registry_.find_resource(local);
    if (type == nullptr || type->abstract) {
      report("structure", "unknown resource type '" + std::string(local) + "'", root);
      return std::nullopt;
    }
    Element resource(nullptr, type);
    resource.set_offset(offset(root));
    read_content(resource, root, *type, 1);
    return resource;
  }

 private:
  std::string_view in_;
  const ParseLimits& limits_;
  const TypeRegistry& registry_;
  Issues& issues_;
  PathBuilder path_;
  // In-scope namespace declarations: (prefix, uri); "" is the default.
  std::vector<std::pair<std::string_view, std::string_view>> namespaces_;

  // Pushes an element's namespace declarations for as long as it is read.
  struct Scope {
    Scope(XmlReader& r, const pugi::xml_node& node) : reader(r), size(r.namespaces_.size()) {
      for (const pugi::xml_attribute& a : node.attributes()) {
        const std::string_view name = a.name();
        if (name == "xmlns")
          reader.namespaces_.emplace_back("", a.value());
        else if (name.starts_with("xmlns:"))
          reader.namespaces_.emplace_back(name.substr(6), a.value());
      }
    }
    ~Scope() { reader.namespaces_.resize(size); }
    XmlReader& reader;
    std::size_t size;
  };

  static std::string_view local_name(const pugi::xml_node& node) {
    const std::string_view name = node.name();
    const auto colon = name.find(':');
    return colon == std::string_view::npos ? name : name.substr(colon + 1);
  }

  std::string_view resolve(std::string_view prefix) const {
    for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it)
      if (it->first == prefix) return it->second;
    return {};
  }

  std::string_view namespace_of(const pugi::xml_node& node) const {
    const std::string_view name = node.name();
    const auto colon = name.find(':');
    return resolve(colon == std::string_view::npos ? std::string_view() : name.substr(0, colon));
  }

  std::size_t offset(const pugi::xml_node& node) const {
    // pugixml gives the offset of an element's name; the element starts at its '<'.
    const std::ptrdiff_t o = node.offset_debug() - (node.type() == pugi::node_element ? 1 : 0);
    return o < 0 ? 0 : static_cast<std::size_t>(o);
  }

  void report(std::string code, std::string message, const pugi::xml_node& node) {
    if (issues_.size() >= kMaxIssues) throw TooManyIssues{};
    issues_.push_back(Issue{Severity::error, std::move(code), std::move(message), path_.str(),
                            util::line_column(in_, offset(node))});
  }

  // Reads an element's attributes and child elements into `node`.
  void read_content(Element& node, const pugi::xml_node& xml, const TypeInfo& type, std::uint32_t depth) {
    if (depth > limits_.max_depth) {
      report("too-costly", "nesting deeper than " + std::to_string(limits_.max_depth) + " levels", xml);
      return;
    }
    read_attributes(node, xml, type);
    std::string_view previous_name;
    std::int32_t index = 0;
    for (const pugi::xml_node& child : xml.children()) {
      if (child.type() == pugi::node_pcdata || child.type() == pugi::node_cdata) {
        if (std::string_view(child.value()).find_first_not_of(" \t\r\n") != std::string_view::npos)
          report("structure", "text content is not allowed here; FHIR values go in value attributes", xml);
        continue;
      }
      if (child.type() != pugi::node_element) continue;  // comments, processing instructions
      Scope scope(*this, child);
      const std::string_view name = local_name(child);
      index = name == previous_name ? index + 1 : 0;
      previous_name = name;
      read_child(node, child, type, name, index, depth);
    }
    node.sort_children();
    for (const ElementInfo* info : node.drop_extra_singles())
      report("structure", "'" + info->name + (info->choice ? "[x]" : "") + "' may appear only once", xml);
    if (!type.is_resource() && !node.has_value() && node.children().empty())
      report("structure", "element has neither a value nor children", xml);
  }

  void read_attributes(Element& node, const pugi::xml_node& xml, const TypeInfo& type) {
    for (const pugi::xml_attribute& a : xml.attributes()) {
      const std::string_view name = a.name();
      const std::string_view value = a.value();
      if (name == "xmlns" || name.starts_with("xmlns:")) continue;
      if (const auto colon = name.find(':'); colon != std::string_view::npos) {
        if (resolve(name.substr(0, colon)) == kFhirNamespace)
          report("structure", "unknown attribute '" + std::string(name) + "'", xml);
        continue;  // attributes of other namespaces (xsi:schemaLocation) carry no FHIR content
      }
      if (value.empty()) {
        report("value", "attribute '" + std::string(name) + "' is empty; FHIR XML has no empty attributes",
               xml);
        continue;
      }
      if (name == "value" && type.is_primitive()) {
        set_primitive_value(node, type, value, xml);
        continue;
      }
      const PropertyMatch match = registry_.property(type, name);
      if (match.element == nullptr || !match.element->xml_attribute) {
        report("structure", "unknown attribute '" + std::string(name) + "' on " + type.name, xml);
        continue;
      }
      node.children().emplace_back(match.element, match.type).set_value(std::string(value));
    }
  }

  void set_primitive_value(Element& node, const TypeInfo& type, std::string_view value,
                           const pugi::xml_node& xml) {
    // Values that JSON writes as numbers or booleans must be such, or they
    // could not be written back; the full rules are the validator's.
    const bool representable =
        type.json_kind == JsonKind::string ||
        (type.json_kind == JsonKind::boolean && (value == "true" || value == "false")) ||
        (type.json_kind == JsonKind::number && is_json_number(value));
    if (!representable) {
      report("value", "'" + std::string(value.substr(0, 40)) + "' is not a valid " + type.name, xml);
      return;
    }
    node.set_value(std::string(value));
  }

  void read_child(Element& node, const pugi::xml_node& child, const TypeInfo& type, std::string_view name,
                  std::int32_t index, std::uint32_t depth) {
    const PropertyMatch match = registry_.property(type, name);
    if (match.element == nullptr || match.element->xml_attribute) {
      std::string message = "unknown element '" + std::string(name) + "' in " + type.name;
      if (match.element != nullptr) {
        message = "'" + std::string(name) + "' must be an attribute, not an element";
      } else if (const std::string near = registry_.suggest(type, name); !near.empty()) {
        message += "; did you mean '" + near + "'?";
      }
      report("structure", std::move(message), child);
      return;
    }
    path_.push(match.element->name, match.element->repeats() ? index : -1,
               match.element->choice ? std::string_view(match.type->name) : "");
    const std::string_view ns = namespace_of(child);
    if (match.type->name == "xhtml") {
      read_xhtml(node, match, child);
    } else if (ns != kFhirNamespace) {
      report("structure", "element '" + std::string(name) + "' must be in the FHIR namespace", child);
    } else if (match.type->is_resource()) {
      read_resource_slot(node, match, child, depth);
    } else {
      Element& e = node.children().emplace_back(match.element, match.type);
      e.set_offset(offset(child));
      read_content(e, child, *match.type, depth + 1);
    }
    path_.pop();
  }

  void read_resource_slot(Element& node, const PropertyMatch& match, const pugi::xml_node& slot,
                          std::uint32_t depth) {
    pugi::xml_node inner;
    for (const pugi::xml_node& c : slot.children()) {
      if (c.type() == pugi::node_element) {
        if (inner) {
          report("structure", "'" + match.element->name + "' must hold exactly one resource", slot);
          return;
        }
        inner = c;
      }
    }
    if (!inner) {
      report("structure", "'" + match.element->name + "' must hold a resource element", slot);
      return;
    }
    Scope scope(*this, inner);
    const std::string_view type_name = local_name(inner);
    const TypeInfo* type = registry_.find_resource(type_name);
    if (type == nullptr || type->abstract || namespace_of(inner) != kFhirNamespace) {
      report("structure", "unknown resource type '" + std::string(type_name) + "'", inner);
      return;
    }
    Element& e = node.children().emplace_back(match.element, type);
    e.set_offset(offset(inner));
    read_content(e, inner, *type, depth + 2);
  }

  void read_xhtml(Element& node, const PropertyMatch& match, const pugi::xml_node& div) {
    if (std::string_view(div.name()) != "div" || namespace_of(div) != kXhtmlNamespace ||
        std::string_view(div.attribute("xmlns").value()) != kXhtmlNamespace) {
      report("structure", "the narrative must be <div xmlns=\"http://www.w3.org/1999/xhtml\">", div);
      return;
    }
    std::ostringstream out;
    div.print(out, "", pugi::format_raw, pugi::encoding_utf8);
    Element& e = node.children().emplace_back(match.element, match.type);
    e.set_offset(offset(div));
    e.set_value(out.str());
    if (auto problem = check_xhtml(e.value())) report("value", "invalid XHTML: " + *problem, div);
  }
};

}  // namespace

ParseResult parse_xml(std::string_view text, const ParseLimits& limits, const TypeRegistry& registry) {
  ParseResult result;
  auto fatal = [&](std::string message, std::size_t offset) {
    result.issues.push_back(fatal_issue(std::move(message), text, offset));
  };
  if (auto problem = check_input(text, limits)) {
    result.issues.push_back(std::move(*problem));
    return result;
  }
  if (auto unsafe = check_xml_safety(text)) {
    fatal(unsafe->message, unsafe->offset);
    return result;
  }
  pugi::xml_document doc;
  const pugi::xml_parse_result parsed = doc.load_buffer(
      text.data(), text.size(),
      pugi::parse_default | pugi::parse_ws_pcdata | pugi::parse_declaration | pugi::parse_fragment,
      pugi::encoding_utf8);
  if (!parsed) {
    fatal(std::string("malformed XML: ") + parsed.description(), static_cast<std::size_t>(parsed.offset));
    return result;
  }
  for (const pugi::xml_node& n : doc.children()) {
    if (n.type() != pugi::node_declaration) continue;
    const std::string_view encoding = n.attribute("encoding").value();
    if (!encoding.empty() && encoding != "UTF-8" && encoding != "utf-8") {
      fatal("FHIR XML must be UTF-8, not " + std::string(encoding), 0);
      return result;
    }
  }
  if (auto problem = check_single_root(doc)) {
    fatal("malformed XML: " + *problem, 0);
    return result;
  }
  const pugi::xml_node root = doc.document_element();
  try {
    XmlReader reader(text, limits, registry, result.issues);
    result.resource = reader.read(root);
  } catch (const TooManyIssues&) {
    result.resource.reset();
    fatal("too many errors; stopped reading", 0);
  }
  return result;
}

std::optional<Format> detect_format(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 byte order mark
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return std::nullopt;
  if (text[first] == '{') return Format::json;
  if (text[first] == '<') return Format::xml;
  return std::nullopt;
}

ParseResult parse_as(std::string_view text, Format format, const ParseLimits& limits,
                     const TypeRegistry& registry) {
  return format == Format::xml ? parse_xml(text, limits, registry) : parse_json(text, limits, registry);
}

ParseResult parse(std::string_view text, const ParseLimits& limits, const TypeRegistry& registry) {
  const auto format = detect_format(text);
  if (format == Format::json) return parse_json(text, limits, registry);
  if (format == Format::xml) return parse_xml(text, limits, registry);
  ParseResult result;
  result.issues.push_back(
      Issue{Severity::fatal, "structure",
            text.find_first_not_of(" \t\r\n") == std::string_view::npos
                ? "the input is empty"
                : "the input is neither FHIR JSON (starting with '{') nor FHIR XML (starting with '<')",
            "", util::LineColumn{1, 1}});
  return result;
}

}  // namespace courier::fhir
