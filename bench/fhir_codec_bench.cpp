// Parsing, validating and writing FHIR message Bundles, as a ratio against
// nlohmann::json::parse of the same JSON bytes measured in the same run.
// Usage: fhir_codec_bench [--quick]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/support.h"
#include "engine/fhir/codec.h"
#include "engine/fhir/validator.h"
#include "tests/support/files.h"

using namespace courier::fhir;

namespace {

using courier::bench::large_message;
using courier::bench::seconds_per_call;

// Results are folded in here so that no measured call can be optimised away.
volatile std::size_t sink = 0;

void must(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "benchmark input failed: %s\n", what);
    std::exit(1);
  }
}

struct Row {
  std::string document, operation;
  double seconds, bytes, reference;
};

void print(const Row& r) {
  std::printf("%-22s %-24s %10.1f us %10.0f msg/s %8.1f MB/s %7.2fx\n", r.document.c_str(),
              r.operation.c_str(), r.seconds * 1e6, 1.0 / r.seconds, r.bytes / r.seconds / 1e6,
              r.seconds / r.reference);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  const ParseResult small_doc = parse_json(courier::testing::read_file(
      courier::testing::source_dir() / "bench" / "data" / "lab-order-message.json"));
  must(small_doc.ok(), "lab-order-message.json");
  const std::string small_json = write_json(*small_doc.resource);
  const std::string large_json = large_message(1u << 20);

  std::printf("%-22s %-24s %13s %16s %13s %8s\n", "document", "operation", "time", "rate", "throughput",
              "vs nlohmann::json::parse");
  double small_ratio = 0;
  for (const auto& [name, json] :
       {std::pair<std::string, std::string>{"message 4 KB", small_json}, {"message 1 MB", large_json}}) {
    const ParseResult parsed = parse_json(json);
    must(parsed.ok(), name.c_str());
    for (const Issue& i : validate(*parsed.resource))
      must(i.severity != Severity::error && i.severity != Severity::fatal,
           (i.expression + ": " + i.diagnostics).c_str());
    const std::string xml = write_xml(*parsed.resource);
    must(parse_xml(xml).ok(), "xml");
    const double bytes = static_cast<double>(json.size());
    const double reference =
        seconds_per_call([&] { sink = sink + nlohmann::json::parse(json).size(); }, quick);
    char label_text[64];
    std::snprintf(label_text, sizeof label_text, "%s (%.1f KiB)", name.c_str(), bytes / 1024);
    const std::string label = label_text;
    print({label, "nlohmann::json::parse", reference, bytes, reference});
    print({label, "parse JSON",
           seconds_per_call([&] { sink = sink + parse_json(json).issues.size(); }, quick), bytes, reference});
    const double parse_validate = seconds_per_call(
        [&] {
          const ParseResult r = parse_json(json);
          sink = sink + validate(*r.resource).size();
        },
        quick);
    print({label, "parse JSON + validate", parse_validate, bytes, reference});
    if (name == "message 4 KB") small_ratio = parse_validate / reference;
    print({label, "validate",
           seconds_per_call([&] { sink = sink + validate(*parsed.resource).size(); }, quick), bytes,
           reference});
    print({label, "write JSON",
           seconds_per_call([&] { sink = sink + write_json(*parsed.resource).size(); }, quick), bytes,
           reference});
    const double xml_bytes = static_cast<double>(xml.size());
    print({label, "parse XML", seconds_per_call([&] { sink = sink + parse_xml(xml).issues.size(); }, quick),
           xml_bytes, reference});
    print({label, "write XML",
           seconds_per_call([&] { sink = sink + write_xml(*parsed.resource).size(); }, quick), xml_bytes,
           reference});
  }
  std::printf(
      "\ntarget: parse+validate of the 4 KB JSON message at no worse than 1.50x nlohmann::json::parse: %.2fx "
      "(%s)\n",
      small_ratio, small_ratio <= 1.5 ? "met" : "NOT met");
  return 0;
}
