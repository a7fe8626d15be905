// HL7 v2 → FHIR R4: turns a v2 message into a FHIR message Bundle by the
// maps in schemas/hl7v2/maps (the V2-to-FHIR IG's tables as data).
//
// The Bundle's and MessageHeader's ids follow from the sender (MSH-3, MSH-4)
// and MSH-10, so a repeated message is the same FHIR message and is
// recognised as a duplicate. A resource with an identifier gets an id that
// follows from its first identifier, so the same patient in two messages is
// one Patient.
#pragma once

#include <optional>
#include <string>

#include "engine/hl7v2/maps.h"
#include "engine/hl7v2/message.h"

namespace courier::hl7v2 {

struct ConvertOptions {
  // The UTC offset ("+01:00") for v2 times that carry none; empty: the
  // host's offset at that time.
  std::string default_offset;
  // MSH-16 as the MessageHeader's messageheader-response-request, for a
  // listener that sends enhanced mode's application ACKs; otherwise the
  // extension would tell downstream receivers what only the ACK path needs.
  bool response_request = false;
};

// The extension the converter gives a resource for each element that a
// field sent as v2's explicit null ("", "delete the value") maps to and the
// message leaves without a value; valueString names the element
// ("address"). A rest destination's merge clears that element at the
// server (engine/rest/merging_sender.h); other writes drop the extension.
inline constexpr std::string_view v2_null_extension =
    "http://courier.example/fhir/StructureDefinition/v2-null";

struct ConvertError {
  std::string reason;
  int code = 200;  // HL7 table 0357: 200 unsupported message type, 100 segment sequence
  // Where: MSH-9 for a type courier has no map for; the segment expected
  // for one missing.
  std::string segment = "MSH";
  std::size_t sequence = 1;
  std::size_t field = 9;
};

// The message Bundle as FHIR JSON, or why the message cannot be converted.
// `warnings`, when given, gets the values the Bundle was made without: where
// each is and why it could not be converted (table 0357: 102 a data type
// error, 103 a code no vocabulary map lists).
std::optional<std::string> to_fhir(const Message& message, const MapSet& maps, const ConvertOptions& options,
                                   ConvertError& error, std::vector<ParseError>* warnings = nullptr);

// "20240131124500.123+0100" → "2024-01-31T12:45:00.123+01:00"; the kind of
// FHIR value says how much is kept ("date" keeps the date). Empty when the
// text is not a v2 date/time.
enum class TimeKind { date, date_time, instant, time };
std::string fhir_time(std::string_view v2, TimeKind kind, const std::string& default_offset);

}  // namespace courier::hl7v2
