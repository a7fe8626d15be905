// Shared by the benchmarks: the messages they measure and the timing loop.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>

namespace courier::bench {

using Clock = std::chrono::steady_clock;

// A results message of about `target_bytes`: a MessageHeader, a Patient and
// as many Observations (with decimals, references, a component) as it takes.
inline std::string large_message(std::size_t target_bytes) {
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
inline double seconds_per_call(const std::function<void()>& f, bool quick) {
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

}  // namespace courier::bench
