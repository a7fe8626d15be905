// HL7 v2 → FHIR conversion alone: parsing the 1.5 KB ADT^A01 of the MLLP
// benchmark and converting it by the shipped maps, in messages/s, beside
// nlohmann::json::parse of the FHIR Bundle it gives (the reference: what
// reading the result alone costs). Usage: v2_convert_bench [--quick]
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/support.h"
#include "engine/hl7v2/maps.h"
#include "engine/hl7v2/message.h"
#include "engine/hl7v2/to_fhir.h"

int main(int argc, char** argv) {
  using namespace courier;
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  std::ifstream in(std::string(COURIER_SOURCE_DIR) + "/bench/data/adt_a01_1k5.hl7");
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  for (std::size_t at; (at = text.find("{ID}")) != std::string::npos;) text.replace(at, 4, "0-123456");
  for (char& c : text) {
    if (c == '\n') c = '\r';
  }
  const hl7v2::MapSet maps = hl7v2::MapSet::load(std::string(COURIER_SOURCE_DIR) + "/schemas/hl7v2/maps");
  const hl7v2::ConvertOptions options{"+01:00"};
  hl7v2::ParseError parse_error;
  hl7v2::ConvertError convert_error;
  const std::string bundle =
      *hl7v2::to_fhir(*hl7v2::Message::parse(text, parse_error), maps, options, convert_error);

  const double parse = bench::seconds_per_call(
      [&] {
        hl7v2::ParseError error;
        if (!hl7v2::Message::parse(text, error)) std::abort();
      },
      quick);
  const double convert = bench::seconds_per_call(
      [&] {
        hl7v2::ParseError error;
        hl7v2::ConvertError why;
        if (!hl7v2::to_fhir(*hl7v2::Message::parse(text, error), maps, options, why)) std::abort();
      },
      quick);
  const double reference = bench::seconds_per_call(
      [&] {
        if (nlohmann::json::parse(bundle).empty()) std::abort();
      },
      quick);
  std::printf("v2 message %zu bytes -> FHIR Bundle %zu bytes\n", text.size(), bundle.size());
  std::printf("%-34s %10.1f us %10.0f msg/s %6.2fx\n", "nlohmann::json::parse of the Bundle", reference * 1e6,
              1 / reference, 1.0);
  std::printf("%-34s %10.1f us %10.0f msg/s %6.2fx\n", "parse v2", parse * 1e6, 1 / parse, parse / reference);
  std::printf("%-34s %10.1f us %10.0f msg/s %6.2fx\n", "parse v2 + convert to FHIR JSON", convert * 1e6,
              1 / convert, convert / reference);
}
