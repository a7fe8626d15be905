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

#include "engine/fhir/codec.h"
#include "engine/fhir/validator.h"
#include "tests/support/files.h"

using namespace courier::fhir;
using Clock = std::chrono::steady_clock;

namespace {

// A results message of about `target_bytes`: a MessageHeader, a Patient and
// as many Observations (with decimals, references, a component) as it takes.
std::string large_message(std::size_t target_bytes) {
  std::string out =
      R"({"resourceType":"Bundle","id":"b-large","type":"message","timestamp":"2026-11-26T10:00:00Z","entry":[)"
      R"({"fullUrl":"urn:uuid:00000000-0000-4000-8000-000000000000","resource":{"resourceType":"MessageHeader",)"
      R"("id":"h-large","eventCoding":{"system":"http://example.org/fhir/message-events","code":"observation-provide"},)"
      R"("source":{"endpoint":"https://lis.example-hospital.org/fhir"},"focus":[{"reference":"urn:uuid:00000000-0000-4000-8000-000000000010"}]}},)"
      R"({"fullUrl":"urn:uuid:00000000-0000-4000-8000-000000000002","resource":{"resourceType":"Patient","id":"p1",)"
      R"("name":[{"family":"Doe","given":["Jane"]}],"gender":"female","birthDate":"1968-04-12"}})";
  for (int i = 10; out.size() < target_bytes; ++i) {
    char id[64];
    std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", i);
    out +=
        R"(,{"fullUrl":"urn:uuid:)" + std::string(id) +
        R"(","resource":{"resourceType":"Observation","id":")" + std::string(id) +
        R"(","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],)"
        R"("code":{"coding":[{"system":"http://loinc.org","code":"2345-7","display":"Glucose [Mass/volume] in Serum or Plasma"}]},)"
        R"("subject":{"reference":"urn:uuid:00000000-0000-4000-8000-000000000002"},"effectiveDateTime":"2026-11-26T09:05:00+01:00",)"
        R"("valueQuantity":{"value":)" +
        std::to_string(90 + i % 40) +
        R"(.50,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"},)"
        R"("referenceRange":[{"low":{"value":70.0,"unit":"mg/dL"},"high":{"value":99.0,"unit":"mg/dL"}}]}})";
  }
  return out + "]}";
}

// Seconds per call of `f`: the best of several batches, each long enough to
// time reliably; the best is the least disturbed by other work on the machine.
double seconds_per_call(const std::function<void()>& f, bool quick) {
  std::size_t calls = 1;
  for (;;) {
    const auto start = Clock::now();
    for (std::size_t i = 0; i < calls; ++i) f();
    if (Clock::now() - start > std::chrono::milliseconds(quick ? 10 : 50)) break;
    calls *= 2;
  }
  double best = 1e30;
  for (int round = 0; round < (quick ? 3 : 7); ++round) {
    const auto start = Clock::now();
    for (std::size_t i = 0; i < calls; ++i) f();
    best = std::min(best,
                    std::chrono::duration<double>(Clock::now() - start).count() / static_cast<double>(calls));
  }
  return best;
}

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
