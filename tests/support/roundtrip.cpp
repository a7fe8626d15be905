#include "tests/support/roundtrip.h"

#include <nlohmann/json.hpp>

#include "engine/fhir/codec.h"
#include "engine/fhir/xml_support.h"

namespace courier::testing {

namespace {

using nlohmann::json;

// Builds a json value with every number stored as its source text, so that
// 2.00 and 2 stay different (nlohmann would make both the double 2).
class ExactNumbers : public nlohmann::json_sax<json> {
 public:
  json result;

  bool null() override { return put(nullptr); }
  bool boolean(bool v) override { return put(v); }
  // Whole numbers have one spelling; only decimals carry precision in text.
  bool number_integer(number_integer_t v) override { return put("#" + std::to_string(v)); }
  bool number_unsigned(number_unsigned_t v) override { return put("#" + std::to_string(v)); }
  bool number_float(number_float_t, const string_t& text) override { return put("#" + text); }
  bool string(string_t& v) override { return put(v); }
  bool binary(binary_t&) override { return false; }
  bool start_object(std::size_t) override { return open(json::object()); }
  bool key(string_t& k) override {
    key_ = k;
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    throw std::runtime_error(e.what());
  }

 private:
  std::vector<json*> stack_;
  std::string key_;

  json* place(json v) {
    if (stack_.empty()) {
      result = std::move(v);
      return &result;
    }
    json& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    json& slot = top[key_];
    if (key_ == "div" && v.is_string()) v = fhir::canonical_xhtml(v.get<std::string>());
    slot = std::move(v);
    return &slot;
  }
  bool put(json v) {
    place(std::move(v));
    return true;
  }
  bool open(json v) {
    stack_.push_back(place(std::move(v)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }
};

}  // namespace

std::string normalised_json(std::string_view text) {
  ExactNumbers sax;
  json::sax_parse(text.begin(), text.end(), &sax);
  return sax.result.dump();
}

std::string roundtrip_difference(std::string_view original) {
  auto failed = [](std::string_view step, const fhir::ParseResult& r) {
    std::string out(step);
    for (const auto& i : r.issues) out += " [" + i.expression + ": " + i.diagnostics + "]";
    return out;
  };
  const fhir::ParseResult from_json = fhir::parse_json(original);
  if (!from_json.ok()) return failed("JSON parse:", from_json);
  const fhir::ParseResult from_xml = fhir::parse_xml(fhir::write_xml(*from_json.resource));
  if (!from_xml.ok()) return failed("XML parse:", from_xml);
  const std::string back = fhir::write_json(*from_xml.resource);
  const std::string expected = normalised_json(original);
  const std::string actual = normalised_json(back);
  if (expected == actual) return {};
  std::size_t at = 0;
  while (at < expected.size() && at < actual.size() && expected[at] == actual[at]) ++at;
  const std::size_t from = at > 60 ? at - 60 : 0;
  return "differs at " + std::to_string(at) + ": expected ..." + expected.substr(from, 160) + "... got ..." +
         actual.substr(from, 160) + "...";
}

}  // namespace courier::testing
