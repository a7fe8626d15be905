#include "engine/fhir/xml_support.h"

#include <algorithm>
#include <array>
#include <sstream>

#include <pugixml.hpp>

namespace courier::fhir {

std::optional<XmlProblem> check_xml_safety(std::string_view text) {
  std::size_t i = 0;
  while ((i = text.find_first_of("<&", i)) != std::string_view::npos) {
    const std::string_view rest = text.substr(i);
    if (rest.starts_with("<!--")) {
      const std::size_t end = text.find("-->", i + 4);
      if (end == std::string_view::npos) return XmlProblem{"unterminated comment", i};
      i = end + 3;
    } else if (rest.starts_with("<![CDATA[")) {
      const std::size_t end = text.find("]]>", i + 9);
      if (end == std::string_view::npos) return XmlProblem{"unterminated CDATA section", i};
      i = end + 3;
    } else if (rest.starts_with("<!")) {
      return XmlProblem{"DOCTYPE and entity declarations are not allowed in FHIR XML", i};
    } else if (rest[0] == '&') {
      const std::size_t end = rest.find(';');
      const std::string_view name = rest.substr(1, end == std::string_view::npos ? 0 : end - 1);
      static constexpr std::array<std::string_view, 5> predefined{"amp", "lt", "gt", "quot", "apos"};
      const bool numeric = name.size() > 1 && name[0] == '#';
      if (end == std::string_view::npos || end > 40 ||
          (!numeric && std::find(predefined.begin(), predefined.end(), name) == predefined.end()))
        return XmlProblem{"undeclared entity reference '&" + std::string(name.substr(0, 20)) +
                              ";' (only amp, lt, gt, quot, apos and character references are allowed)",
                          i};
      i += end + 1;
    } else {
      ++i;
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_single_root(const pugi::xml_document& doc) {
  std::size_t elements = 0;
  for (const pugi::xml_node& n : doc.children()) {
    if (n.type() == pugi::node_element)
      ++elements;
    else if ((n.type() == pugi::node_pcdata || n.type() == pugi::node_cdata) &&
             std::string_view(n.value()).find_first_not_of(" \t\r\n") != std::string_view::npos)
      return std::string("text outside the root element");
  }
  if (elements != 1) return elements == 0 ? "no root element" : "more than one root element";
  return std::nullopt;
}

namespace {

constexpr std::array<std::string_view, 14> kForbiddenElements{
    "script", "form",     "input",  "button", "select", "textarea", "iframe",
    "frame",  "frameset", "object", "embed",  "applet", "head",     "body"};

std::optional<std::string> check_xhtml_node(const pugi::xml_node& node, int depth) {
  if (depth > 200) return "nesting too deep";
  for (const pugi::xml_node& child : node.children()) {
    if (child.type() != pugi::node_element) continue;
    std::string_view name = child.name();
    if (const auto colon = name.find(':'); colon != std::string_view::npos) name = name.substr(colon + 1);
    if (std::find(kForbiddenElements.begin(), kForbiddenElements.end(), name) != kForbiddenElements.end())
      return "element <" + std::string(name) + "> is not allowed in narrative";
    for (const pugi::xml_attribute& a : child.attributes()) {
      const std::string_view attr = a.name();
      if (attr.size() > 2 && (attr[0] == 'o' || attr[0] == 'O') && (attr[1] == 'n' || attr[1] == 'N'))
        return "event attribute '" + std::string(attr) + "' is not allowed in narrative";
    }
    if (auto problem = check_xhtml_node(child, depth + 1)) return problem;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> check_xhtml(std::string_view xhtml) {
  if (auto unsafe = check_xml_safety(xhtml)) return unsafe->message;
  pugi::xml_document doc;
  // As a fragment, so that pugixml keeps (and we can refuse) text and
  // elements beside the root.
  const auto result = doc.load_buffer(xhtml.data(), xhtml.size(),
                                      pugi::parse_default | pugi::parse_ws_pcdata | pugi::parse_fragment,
                                      pugi::encoding_utf8);
  if (!result) return std::string("not well-formed XML: ") + result.description();
  if (auto problem = check_single_root(doc)) return *problem;
  const pugi::xml_node root = doc.document_element();
  if (std::string_view(root.name()) != "div") return "the narrative's root element must be <div>";
  if (std::string_view(root.attribute("xmlns").value()) != kXhtmlNamespace)
    return "the <div> must declare xmlns=\"http://www.w3.org/1999/xhtml\"";
  return check_xhtml_node(root, 0);
}

bool xhtml_has_content(std::string_view xhtml) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xhtml.data(), xhtml.size(), pugi::parse_default, pugi::encoding_utf8)) return false;
  struct Finder : pugi::xml_tree_walker {
    bool found = false;
    bool for_each(pugi::xml_node& node) override {
      const std::string_view text = node.value();
      if ((node.type() == pugi::node_pcdata || node.type() == pugi::node_cdata) &&
          text.find_first_not_of(" \t\r\n") != std::string_view::npos)
        found = true;
      if (node.type() == pugi::node_element && std::string_view(node.name()) == "img") found = true;
      return !found;
    }
  } finder;
  doc.traverse(finder);
  return finder.found;
}

std::string canonical_xhtml(std::string_view xhtml) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xhtml.data(), xhtml.size(), pugi::parse_default | pugi::parse_ws_pcdata,
                       pugi::encoding_utf8))
    return std::string(xhtml);
  std::ostringstream out;
  doc.document_element().print(out, "", pugi::format_raw, pugi::encoding_utf8);
  return out.str();
}

}  // namespace courier::fhir
