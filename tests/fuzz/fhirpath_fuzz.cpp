// libFuzzer target: the FHIRPath parser, checker and evaluator. Any input
// must compile or give a fhirpath::Error, and evaluate (against a small
// message Bundle holding value sets that include each other) or give a
// fhirpath::Error; never crash or hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/fhir/codec.h"
#include "engine/fhirpath/fhirpath.h"

namespace {

const courier::fhir::Element& bundle() {
  static const courier::fhir::Element resource =
      *courier::fhir::parse_json(
           R"({"resourceType":"Bundle","type":"message","timestamp":"2024-05-01T10:00:00Z","entry":[
        {"fullUrl":"urn:uuid:1","resource":{"resourceType":"MessageHeader","eventCoding":{"code":"order"},
          "source":{"endpoint":"urn:s"},"focus":[{"reference":"urn:uuid:2"}]}},
        {"fullUrl":"urn:uuid:2","resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},
          "valueQuantity":{"value":4.50,"unit":"mg"},"effectiveDateTime":"2024-05-01"}},
        {"fullUrl":"urn:uuid:3","resource":{"resourceType":"ValueSet","url":"urn:vs","status":"active",
          "compose":{"include":[{"system":"urn:cs","concept":[{"code":"x"}]},{"valueSet":["urn:vs2"]}]}}},
        {"fullUrl":"urn:uuid:4","resource":{"resourceType":"ValueSet","url":"urn:vs2","status":"active",
          "compose":{"include":[{"valueSet":["urn:vs"]}]}}}]})")
           .resource;
  return resource;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    // Half the inputs compile with every check on; traces go to a sink.
    courier::fhirpath::CompileOptions options;
    options.strict = options.check_ordered_functions = size % 2 == 0;
    options.context_type = options.strict ? "Bundle" : "";
    const auto expression = courier::fhirpath::Expression::compile(text, options);
    courier::fhirpath::Environment environment;
    std::size_t traced = 0;
    environment.trace = [&](std::string_view, const courier::fhirpath::Collection& items) {
      traced += items.size();
    };
    (void)expression.evaluate(bundle(), environment);
  } catch (const courier::fhirpath::Error&) {
  }
  return 0;
}
