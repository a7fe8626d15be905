#include "engine/hl7v2/from_fhir.h"

#include <cctype>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/hl7v2/message.h"
#include "engine/util/uuid.h"

namespace courier::hl7v2 {
namespace {

using nlohmann::json;

const Delimiters kDelimiters;

std::string text(const json& object, const char* key) {
  if (!object.is_object()) return {};
  const auto found = object.find(key);
  if (found == object.end()) return {};
  if (found->is_string()) return found->get<std::string>();
  if (found->is_number()) return found->dump();
  if (found->is_boolean()) return found->get<bool>() ? "Y" : "N";
  return {};
}

const json& first(const json& object, const char* key) {
  static const json empty = json::object();
  if (!object.is_object() || !object.contains(key)) return empty;
  const json& value = object[key];
  if (value.is_array()) return value.empty() ? empty : value.front();
  return value;
}

// Components, each escaped, joined by '^' without empty ones at the end.
std::string components(const std::vector<std::string>& parts) {
  std::string value;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) value += kDelimiters.component;
    value += escape(parts[i], kDelimiters);
  }
  while (value.ends_with(kDelimiters.component)) value.pop_back();
  return value;
}

// A segment's fields, escaped and joined.
class SegmentWriter {
 public:
  explicit SegmentWriter(std::string name) { fields_.push_back(std::move(name)); }
  // Sets field n to components (each escaped), joined by '^'.
  SegmentWriter& set(std::size_t n, const std::vector<std::string>& parts) {
    return set_raw(n, components(parts));
  }
  SegmentWriter& set(std::size_t n, const std::string& value) {
    return set(n, std::vector<std::string>{value});
  }
  // Field n as repetitions already written.
  SegmentWriter& set_raw(std::size_t n, std::string value) {
    if (fields_.size() <= n) fields_.resize(n + 1);
    fields_[n] = std::move(value);
    return *this;
  }
  std::string write() const {
    std::string out = fields_.front();
    for (std::size_t i = 1; i < fields_.size(); ++i) {
      out += kDelimiters.field;
      out += fields_[i];
    }
    return out + "\r";
  }

 private:
  std::vector<std::string> fields_;
};

class OruWriter {
 public:
  OruWriter(const json& bundle, const MapSet* maps) : bundle_(bundle), maps_(maps) {
    // Pointers into the Bundle itself (not into copies value() would make).
    if (!bundle_.contains("entry") || !bundle_["entry"].is_array()) return;
    for (const json& entry : bundle_["entry"]) {
      if (!entry.is_object() || !entry.contains("resource") || !entry["resource"].is_object()) continue;
      const json& resource = entry["resource"];
      if (entry.contains("fullUrl") && entry["fullUrl"].is_string()) by_url_[entry["fullUrl"]] = &resource;
      const std::string type = text(resource, "resourceType");
      const std::string id = text(resource, "id");
      if (!id.empty()) by_url_[type + "/" + id] = &resource;
    }
  }

  std::optional<Outgoing> write(std::string& error) {
    const json& header = first(bundle_, "entry").value("resource", json::object());
    if (text(header, "resourceType") != "MessageHeader") {
      error = "the Bundle does not begin with a MessageHeader";
      return std::nullopt;
    }
    const json* report = nullptr;
    for (const json& focus : header.value("focus", json::array())) {
      const json* resource = resolve(focus);
      if (resource != nullptr && text(*resource, "resourceType") == "DiagnosticReport") report = resource;
    }
    if (report == nullptr) {
      error = "courier writes HL7 v2 for results only (a DiagnosticReport as the message's focus)";
      return std::nullopt;
    }
    // The same FHIR message always has the same MSH-10, so a receiver can
    // recognise a retry.
    const std::string control_id =
        util::stable_hash_hex(text(header, "id") + "|" + text(bundle_, "id")).substr(0, 20);
    std::string out = msh(header, control_id);
    if (const json* patient = resolve(first(*report, "subject")); patient != nullptr) out += pid(*patient);
    out += obr(*report);
    std::vector<const json*> observations;
    for (const json& result : report->value("result", json::array())) {
      if (const json* observation = resolve(result)) observations.push_back(observation);
    }
    for (std::size_t i = 0; i < observations.size(); ++i) out += obx(i + 1, *observations[i]);
    return Outgoing{std::move(out), control_id};
  }

 private:
  const json* resolve(const json& reference) const {
    const std::string target = text(reference, "reference");
    const auto found = by_url_.find(target);
    return found == by_url_.end() ? nullptr : found->second;
  }

  // v2 names coding systems by table 0396; the vocabulary that turned those
  // names into URIs turns them back.
  std::string system_name(const std::string& uri) const {
    constexpr std::string_view v2_tables = "http://terminology.hl7.org/CodeSystem/v2-";
    if (uri.starts_with(v2_tables)) return "HL7" + uri.substr(v2_tables.size());
    if (maps_ != nullptr) {
      if (const Vocabulary* systems = maps_->vocabulary("CodingSystem")) {
        for (const auto& [name, coding] : systems->codes) {
          if (coding.code == uri) return name;
        }
      }
    }
    return uri;
  }

  std::vector<std::string> cwe(const json& codeable) const {
    const json& coding = codeable.contains("coding") ? first(codeable, "coding") : codeable;
    std::string display = text(coding, "display");
    if (display.empty()) display = text(codeable, "text");
    return {text(coding, "code"), display, system_name(text(coding, "system"))};
  }

  std::string msh(const json& header, const std::string& control_id) const {
    std::string timestamp = v2_time(text(bundle_, "timestamp"));
    if (timestamp.empty()) timestamp = v2_time_now();
    SegmentWriter segment("MSH");
    segment.set_raw(1, "^~\\&");
    segment.set(2, "COURIER");
    segment.set(4, text(first(header, "destination"), "name"));
    segment.set(6, timestamp);
    segment.set(8, std::vector<std::string>{"ORU", "R01", "ORU_R01"});
    segment.set(9, control_id);
    segment.set(10, "P");
    segment.set(11, "2.5.1");
    // MSH's field numbers are one off: MSH-1 is the separator itself.
    return segment.write();
  }

  std::string pid(const json& patient) const {
    SegmentWriter segment("PID");
    segment.set(1, "1");
    std::string identifiers;
    for (const json& identifier : patient.value("identifier", json::array())) {
      if (!identifiers.empty()) identifiers += kDelimiters.repetition;
      identifiers += components({text(identifier, "value"), "", "", text(identifier, "system"),
                                 text(first(first(identifier, "type"), "coding"), "code")});
    }
    segment.set_raw(3, identifiers);
    const json& name = first(patient, "name");
    std::string given, middle;
    const json& givens = name.value("given", json::array());
    if (givens.is_array()) {
      for (std::size_t i = 0; i < givens.size(); ++i) {
        if (!givens[i].is_string()) continue;
        (i == 0 ? given : middle) += (i > 1 ? " " : "") + givens[i].get<std::string>();
      }
    }
    segment.set(5, std::vector<std::string>{text(name, "family"), given, middle});
    segment.set(7, v2_time(text(patient, "birthDate")));
    static const std::map<std::string, std::string> sexes{
        {"male", "M"}, {"female", "F"}, {"other", "O"}, {"unknown", "U"}};
    const auto sex = sexes.find(text(patient, "gender"));
    if (sex != sexes.end()) segment.set(8, sex->second);
    return segment.write();
  }

  static std::string result_status(const std::string& status) {
    static const std::map<std::string, std::string> codes{
        {"registered", "I"}, {"partial", "P"},   {"preliminary", "P"}, {"final", "F"},
        {"amended", "C"},    {"corrected", "C"}, {"cancelled", "X"},   {"entered-in-error", "W"}};
    const auto found = codes.find(status);
    return found == codes.end() ? "R" : found->second;
  }

  std::string obr(const json& report) const {
    SegmentWriter segment("OBR");
    segment.set(1, "1");
    if (const json* request = resolve(first(report, "basedOn")); request != nullptr) {
      segment.set(2, text(first(*request, "identifier"), "value"));
    }
    segment.set(3, text(first(report, "identifier"), "value"));
    segment.set(4, cwe(report.value("code", json::object())));
    segment.set(7, v2_time(text(report, "effectiveDateTime")));
    segment.set(22, v2_time(text(report, "issued")));
    segment.set(25, result_status(text(report, "status")));
    return segment.write();
  }

  std::string obx(std::size_t n, const json& observation) const {
    SegmentWriter segment("OBX");
    segment.set(1, std::to_string(n));
    segment.set(3, cwe(observation.value("code", json::object())));
    if (observation.contains("valueQuantity")) {
      const json& quantity = observation["valueQuantity"];
      segment.set(2, "NM");
      segment.set(5, text(quantity, "value"));
      const std::string unit =
          text(quantity, "code").empty() ? text(quantity, "unit") : text(quantity, "code");
      segment.set(
          6, std::vector<std::string>{unit, text(quantity, "unit"), system_name(text(quantity, "system"))});
    } else if (observation.contains("valueCodeableConcept")) {
      segment.set(2, "CWE");
      segment.set(5, cwe(observation["valueCodeableConcept"]));
    } else if (observation.contains("valueInteger")) {
      segment.set(2, "NM");
      segment.set(5, text(observation, "valueInteger"));
    } else if (observation.contains("valueDateTime")) {
      segment.set(2, "DTM");
      segment.set(5, v2_time(text(observation, "valueDateTime")));
    } else if (observation.contains("valueString")) {
      const std::string value = text(observation, "valueString");
      segment.set(2, value.find('\n') == std::string::npos && value.size() <= 199 ? "ST" : "TX");
      segment.set(5, value);
    }
    const json& range = first(observation, "referenceRange");
    std::string range_text = text(range, "text");
    if (range_text.empty() && (range.contains("low") || range.contains("high"))) {
      range_text = text(range.value("low", json::object()), "value") + "-" +
                   text(range.value("high", json::object()), "value");
    }
    segment.set(7, range_text);
    segment.set(8, text(first(first(observation, "interpretation"), "coding"), "code"));
    segment.set(11, result_status(text(observation, "status")));
    segment.set(14, v2_time(text(observation, "effectiveDateTime")));
    return segment.write();
  }

  const json& bundle_;
  const MapSet* maps_;
  std::map<std::string, const json*> by_url_;
};

}  // namespace

std::string v2_time(std::string_view fhir) {
  std::string out;
  std::size_t i = 0;
  // Digits of the date and time, dropping '-', 'T' and ':'.
  for (; i < fhir.size(); ++i) {
    const char c = fhir[i];
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      out += c;
    } else if (c == '+' || c == 'Z' || (c == '-' && i > 10)) {
      break;
    }
  }
  if (i < fhir.size()) {
    if (fhir[i] == 'Z') {
      out += "+0000";
    } else {
      for (; i < fhir.size(); ++i) {
        if (fhir[i] != ':') out += fhir[i];
      }
    }
  }
  return out;
}

std::optional<Outgoing> oru_from_fhir(const std::string& bundle_json, const MapSet* maps,
                                      std::string& error) {
  const json bundle = json::parse(bundle_json, nullptr, false);
  if (!bundle.is_object() || text(bundle, "resourceType") != "Bundle") {
    error = "not a FHIR message Bundle";
    return std::nullopt;
  }
  return OruWriter(bundle, maps).write(error);
}

namespace {

// What the response's OperationOutcome (response.details) says of why, or "".
std::string reason_in(const json& message, const json& header) {
  const std::string details = text(header["response"].value("details", json::object()), "reference");
  if (details.empty()) return {};
  for (const json& entry : message.value("entry", json::array())) {
    if (!entry.is_object() || text(entry, "fullUrl") != details) continue;
    const json& issues = entry.value("resource", json::object()).value("issue", json::array());
    if (!issues.is_array() || issues.empty() || !issues[0].is_object()) return {};
    const std::string diagnostics = text(issues[0], "diagnostics");
    return diagnostics.empty() ? text(issues[0].value("details", json::object()), "text") : diagnostics;
  }
  return {};
}

}  // namespace

std::optional<Ack> ack_of_response(std::string_view response_json, std::string& decided_at) {
  const json message = json::parse(response_json, nullptr, false);
  if (!message.is_object() || text(message, "resourceType") != "Bundle") return std::nullopt;
  const json& header = first(message, "entry").value("resource", json::object());
  if (!header.contains("response") || !header["response"].is_object()) return std::nullopt;
  decided_at = text(message, "timestamp");
  const std::string code = text(header["response"], "code");
  Ack ack;
  if (code == "transient-error") {
    ack.code = AckCode::error;
    ack.text = "the destination could not take the message now";
  } else if (code == "fatal-error") {
    ack.code = AckCode::reject;
    ack.text = "the destination refused the message";
  }
  // Why, as the response's OperationOutcome says it (the destination's own
  // words): the sender's team can act on that.
  if (ack.code != AckCode::accept)
    if (std::string why = reason_in(message, header); !why.empty()) ack.text = std::move(why);
  return ack;
}

std::optional<Outgoing> application_ack(std::string_view msh, std::string_view response_json,
                                        std::string& error) {
  std::string decided_at;
  std::optional<Ack> ack = ack_of_response(response_json, decided_at);
  if (!ack) {
    error = "the answer to acknowledge is not a FHIR response message";
    return std::nullopt;
  }
  ack->asks_commit = true;
  // The MSH as it came (components, escapes and all), as the listener's own
  // ACK read it; best effort only when it no longer parses alone.
  ParseError parse_error;
  const std::optional<Message> header = Message::parse(std::string(msh) + "\r", parse_error);
  const AckFacts facts = header ? ack_facts(*header) : ack_facts_of_unreadable(msh);
  if (facts.control_id.empty()) {
    error = "the message to acknowledge has no MSH-10";
    return std::nullopt;
  }
  const std::string control_id =
      util::stable_hash_hex("application ack|" + facts.sending_application + "|" + facts.sending_facility +
                            "|" + facts.control_id + "|" + std::to_string(static_cast<int>(ack->code)));
  const std::string timestamp = decided_at.empty() ? v2_time_now() : v2_time(decided_at);
  return Outgoing{write_ack(facts, *ack, control_id, timestamp), control_id};
}

}  // namespace courier::hl7v2
