// FHIRPath evaluations per second for typical route expressions on a 4 KB
// message and a 200 KB Bundle. bench/fhirpath_vs_reference.sh runs this and
// the npm `fhirpath` reference on the same resources and prints the ratios.
// Usage: fhirpath_bench [--quick] [--write-large FILE]
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "bench/support.h"
#include "engine/fhir/codec.h"
#include "engine/fhirpath/fhirpath.h"
#include "tests/support/files.h"

using namespace courier;

// The expressions a route file writes: an event match, the focus resolved,
// a where over the Observations, a date comparison.
const char* const kExpressions[] = {
    "Bundle.entry.first().resource.ofType(MessageHeader).event.ofType(Coding).code = 'order-request'",
    "Bundle.entry.first().resource.ofType(MessageHeader).focus.first().resolve().ofType(ServiceRequest)."
    "status = 'active'",
    "Bundle.entry.resource.ofType(Observation).where(value.ofType(Quantity).value > 100).count()",
    "Bundle.timestamp > @2020-01-01T00:00:00Z",
};

int main(int argc, char** argv) {
  bool quick = false;
  std::string write_large;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick")
      quick = true;
    else if (a == "--write-large" && i + 1 < argc)
      write_large = argv[++i];
  }
  const std::string small_text =
      testing::read_file(testing::source_dir() / "bench" / "data" / "lab-order-message.json");
  const std::string large_text = bench::large_message(200 * 1024);
  if (!write_large.empty()) std::ofstream(write_large) << large_text;
  const struct {
    const char* name;
    const std::string& text;
  } documents[] = {{"message-4k", small_text}, {"bundle-200k", large_text}};
  volatile std::size_t sink = 0;
  for (const auto& doc : documents) {
    const fhir::ParseResult parsed = fhir::parse_json(doc.text);
    if (!parsed.ok()) {
      std::fprintf(stderr, "cannot read %s\n", doc.name);
      return 1;
    }
    for (const char* text : kExpressions) {
      const auto expression = fhirpath::Expression::compile(text);  // once, as a route does
      const double seconds =
          bench::seconds_per_call([&] { sink = sink + expression.evaluate(*parsed.resource).size(); }, quick);
      std::printf("%s\t%s\t%.0f\n", doc.name, text, 1.0 / seconds);
    }
  }
  return 0;
}
