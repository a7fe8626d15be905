#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "engine/fhir/validator.h"
#include "engine/hl7v2/ack.h"
#include "engine/hl7v2/from_fhir.h"
#include "engine/hl7v2/maps.h"
#include "engine/hl7v2/message.h"
#include "engine/hl7v2/to_fhir.h"

using namespace courier;
using nlohmann::json;

namespace {

// A sample from tests/data/hl7v2, its lines ended with CR as on the wire.
std::string sample(const std::string& name) {
  std::ifstream in(std::string(COURIER_SOURCE_DIR) + "/tests/data/hl7v2/" + name);
  std::stringstream text;
  text << in.rdbuf();
  std::string body = text.str();
  for (char& c : body) {
    if (c == '\n') c = '\r';
  }
  return body;
}

hl7v2::Message parse(const std::string& text) {
  hl7v2::ParseError error;
  std::optional<hl7v2::Message> message = hl7v2::Message::parse(text, error);
  BOOST_TEST_REQUIRE(message.has_value(), error.reason);
  return std::move(*message);
}

const hl7v2::MapSet& maps() {
  static const hl7v2::MapSet set =
      hl7v2::MapSet::load(std::string(COURIER_SOURCE_DIR) + "/schemas/hl7v2/maps");
  return set;
}

json convert_text(const std::string& text, const std::string& name) {
  hl7v2::ConvertError error;
  const std::optional<std::string> bundle =
      hl7v2::to_fhir(parse(text), maps(), hl7v2::ConvertOptions{"+01:00"}, error);
  BOOST_TEST_REQUIRE(bundle.has_value(), error.reason);
  // Whatever the maps make must be valid FHIR R4.
  const fhir::ParseResult parsed = fhir::parse_valid(*bundle, fhir::Format::json, {});
  BOOST_TEST_REQUIRE(parsed.resource.has_value());
  for (const auto& issue : parsed.issues) BOOST_TEST_MESSAGE(issue.expression << ": " << issue.diagnostics);
  BOOST_TEST(parsed.issues.empty(), name << " gives invalid FHIR: " << *bundle);
  return json::parse(*bundle);
}

json convert(const std::string& name) {
  return convert_text(sample(name), name);
}

std::vector<json> resources_of(const json& bundle, const std::string& type) {
  std::vector<json> found;
  for (const json& entry : bundle["entry"]) {
    if (entry["resource"]["resourceType"] == type) found.push_back(entry["resource"]);
  }
  return found;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hl7v2_message)

BOOST_AUTO_TEST_CASE(reads_fields_components_repetitions_and_escapes) {
  const hl7v2::Message message = parse(sample("adt_a01.hl7"));
  BOOST_TEST(message.control_id() == "MSG00001");
  BOOST_TEST(message.structure() == "ADT_A01");
  BOOST_TEST(message.version() == "2.5.1");
  const hl7v2::Segment& pid = *message.find("PID");
  BOOST_TEST(message.repetitions(pid, 3) == 2u);
  BOOST_TEST(message.value(pid, 3, 2, 1) == "123-45-6789");
  BOOST_TEST(message.value(pid, 3, 1, 4, 2) == "1.2.3.4.5");
  BOOST_TEST(message.value(pid, 5, 1, 1) == "Müller");
  BOOST_TEST(message.header(1) == "|");
  BOOST_TEST(message.header(2) == "^~\\&");
  BOOST_TEST(message.find("ZPD") != nullptr);  // Z-segments are kept
}

BOOST_AUTO_TEST_CASE(decodes_every_escape) {
  const hl7v2::Delimiters d;
  BOOST_TEST(hl7v2::unescape("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f", d) == "a|b^c&d~e\\f");
  BOOST_TEST(hl7v2::unescape("line\\.br\\next", d) == "line\nnext");
  BOOST_TEST(hl7v2::unescape("\\X4869\\!", d) == "Hi!");
  BOOST_TEST(hl7v2::unescape("\\H\\bold\\N\\", d) == "bold");
  BOOST_TEST(hl7v2::unescape("\\Q\\ and a lone \\", d) == "\\Q\\ and a lone \\");
  BOOST_TEST(hl7v2::escape("a|b^c&d~e\\f", d) == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f");
}

BOOST_AUTO_TEST_CASE(writes_back_exactly_what_it_read) {
  for (const std::string name : {"adt_a01.hl7", "oru_r01.hl7", "orm_o01.hl7"}) {
    const std::string cr = sample(name);
    BOOST_TEST(parse(cr).write() == cr);
    std::string lf = cr, crlf;
    for (char& c : lf) {
      if (c == '\r') c = '\n';
    }
    for (const char c : cr) crlf += c == '\r' ? std::string("\r\n") : std::string(1, c);
    BOOST_TEST(parse(lf).write() == lf);
    BOOST_TEST(parse(crlf).write() == crlf);
    // Trailing empty fields and an unterminated last segment are kept too.
    const std::string untidy = cr.substr(0, cr.size() - 1) + "|||";
    BOOST_TEST(parse(untidy).write() == untidy);
  }
}

BOOST_AUTO_TEST_CASE(other_delimiters_come_from_msh) {
  const hl7v2::Message message =
      parse("MSH#$*%!#A#B#C#D#20240101##ADT$A01#X1#P#2.4\rPID#1##ID1$$$AUTH!SUB*ID2#\r");
  const hl7v2::Segment& pid = *message.find("PID");
  BOOST_TEST(message.value(pid, 3, 1, 4, 2) == "SUB");
  BOOST_TEST(message.value(pid, 3, 2, 1) == "ID2");
  BOOST_TEST(message.trigger_event() == "A01");
}

BOOST_AUTO_TEST_CASE(latin1_names_become_utf8) {
  std::string text = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5||||||8859/1\rPID|1||1||M";
  text += static_cast<char>(0xFC);  // ü in ISO 8859-1
  text += "ller\r";
  const hl7v2::Message message = parse(text);
  BOOST_TEST(message.value(*message.find("PID"), 5) == "Müller");
  BOOST_TEST(message.write() == text);
}

BOOST_AUTO_TEST_CASE(refuses_what_is_not_a_message) {
  const std::pair<std::string, std::string> cases[] = {
      {"PID|1||X\r", "does not begin with an MSH"},
      {"MSH|^~\r", "too short"},
      {"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5\rP\x01D|x\r", "three-character name"},
      {"MSH|^^\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5\r", "distinct"},
      {"MSH|^~\\&|A|B|C|D|20240101||ADT^A01||P|2.5\r", "MSH-10"},
      {"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|3.0\r", "MSH-12"},
      {"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5\rPID|\xff\xfe\r", "UTF-8"},
  };
  for (const auto& [text, expected] : cases) {
    hl7v2::ParseError error;
    BOOST_TEST(!hl7v2::Message::parse(text, error).has_value());
    BOOST_TEST(error.reason.find(expected) != std::string::npos, error.reason << " should say " << expected);
  }
}

BOOST_AUTO_TEST_CASE(batches_split_into_messages_and_write_back) {
  const std::string text = sample("batch.hl7");
  BOOST_TEST(hl7v2::is_batch(text));
  hl7v2::ParseError error;
  const std::optional<hl7v2::Batch> batch = hl7v2::parse_batch(text, error);
  BOOST_TEST_REQUIRE(batch.has_value(), error.reason);
  BOOST_TEST(batch->messages.size() == 2u);
  BOOST_TEST(batch->messages[1].control_id() == "B0002");
  BOOST_TEST(hl7v2::write_batch(*batch) == text);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(hl7v2_ack)

BOOST_AUTO_TEST_CASE(acks_echo_the_control_id_and_swap_sender_and_receiver) {
  const hl7v2::Message message = parse(sample("adt_a01.hl7"));
  const std::string text =
      hl7v2::write_ack(hl7v2::ack_facts(message), hl7v2::Ack{}, "ACK1", "20240131124501+0100");
  const hl7v2::Message ack = parse(text);
  BOOST_TEST(ack.header(3) == "COURIER");
  BOOST_TEST(ack.header(5) == "ADT1");
  BOOST_TEST(ack.header(9, 1) == "ACK");
  BOOST_TEST(ack.header(9, 2) == "A01");
  BOOST_TEST(ack.control_id() == "ACK1");
  BOOST_TEST(hl7v2::read_ack(ack).code == "AA");
  BOOST_TEST(hl7v2::read_ack(ack).acknowledged_id == "MSG00001");
  BOOST_TEST(ack.find("ERR") == nullptr);
  BOOST_TEST(text.starts_with("MSH|^~\\&|"));
  // A 2.7 message's truncation character comes back in the ACK's MSH-2.
  std::string v27 = sample("adt_a01.hl7");
  v27.replace(0, 8, "MSH|^~\\&#");
  const std::string ack27 = hl7v2::write_ack(hl7v2::ack_facts(parse(v27)), hl7v2::Ack{}, "ACK1", "20240131");
  BOOST_TEST(ack27.starts_with("MSH|^~\\&#|COURIER|"));
}

BOOST_AUTO_TEST_CASE(errors_say_where_and_why) {
  const hl7v2::Message message = parse(sample("adt_a01.hl7"));
  const hl7v2::ParseError where{"bad date", 3, "PID", 7, 102};
  const hl7v2::Ack nak{hl7v2::AckCode::reject, true, "bad date", &where};
  const hl7v2::Message ack =
      parse(hl7v2::write_ack(hl7v2::ack_facts(message), nak, "ACK2", "20240131124501"));
  BOOST_TEST(hl7v2::read_ack(ack).code == "CR");
  const hl7v2::Segment& err = *ack.find("ERR");
  BOOST_TEST(ack.value(err, 2, 1, 1) == "PID");
  BOOST_TEST(ack.value(err, 2, 1, 3) == "7");
  BOOST_TEST(ack.value(err, 3, 1, 1) == "102");
  BOOST_TEST(ack.value(err, 8) == "bad date");
  // 2.3 and 2.4 carry it all in ERR-1.
  hl7v2::AckFacts old = hl7v2::ack_facts(message);
  old.version = "2.3";
  const hl7v2::Message old_ack = parse(hl7v2::write_ack(old, nak, "ACK3", "20240131124501"));
  BOOST_TEST(old_ack.value(*old_ack.find("ERR"), 1, 1, 4, 1) == "102");
}

BOOST_AUTO_TEST_CASE(unreadable_messages_still_get_an_ack_with_their_id) {
  const hl7v2::AckFacts facts =
      hl7v2::ack_facts_of_unreadable("MSH|^~\\&|APP|FAC|ME|HERE|2024||ADT^A01|ID-9|P|9.9\r");
  BOOST_TEST(facts.control_id == "ID-9");
  BOOST_TEST(facts.trigger == "A01");
  BOOST_TEST(hl7v2::ack_facts_of_unreadable("garbage").control_id.empty());
}

BOOST_AUTO_TEST_CASE(msh15_and_16_choose_enhanced_mode) {
  BOOST_TEST(hl7v2::ack_request(parse(sample("adt_a01.hl7"))).enhanced);
  BOOST_TEST((hl7v2::ack_request(parse(sample("adt_a01.hl7"))).accept == hl7v2::AckCondition::always));
  BOOST_TEST(!hl7v2::ack_request(parse(sample("adt_a08.hl7"))).enhanced);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(hl7v2_to_fhir)

BOOST_AUTO_TEST_CASE(times_keep_their_precision_and_zone) {
  using hl7v2::TimeKind;
  BOOST_TEST(hl7v2::fhir_time("19610615", TimeKind::date, "") == "1961-06-15");
  BOOST_TEST(hl7v2::fhir_time("196106", TimeKind::date_time, "") == "1961-06");
  BOOST_TEST(hl7v2::fhir_time("20240131124500.123+0100", TimeKind::date_time, "") ==
             "2024-01-31T12:45:00.123+01:00");
  BOOST_TEST(hl7v2::fhir_time("202401311245", TimeKind::date_time, "-05:00") == "2024-01-31T12:45:00-05:00");
  BOOST_TEST(hl7v2::fhir_time("20240131", TimeKind::instant, "Z") == "2024-01-31T00:00:00Z");
  BOOST_TEST(hl7v2::fhir_time("20241331", TimeKind::date, "") == "");
  BOOST_TEST(hl7v2::fhir_time("tomorrow", TimeKind::date, "") == "");
}

BOOST_AUTO_TEST_CASE(adt_a01_becomes_patient_encounter_and_more) {
  const json bundle = convert("adt_a01.hl7");
  BOOST_TEST(bundle["type"] == "message");
  BOOST_TEST(bundle["timestamp"] == "2024-01-31T12:45:00+01:00");
  const json& header = bundle["entry"][0]["resource"];
  BOOST_TEST(header["eventCoding"]["code"] == "A01");
  BOOST_TEST(header["eventCoding"]["system"] == "http://terminology.hl7.org/CodeSystem/v2-0003");
  BOOST_TEST(header["source"]["name"] == "ADT1");

  const json patient = resources_of(bundle, "Patient").at(0);
  BOOST_TEST(patient["gender"] == "male");
  BOOST_TEST(patient["birthDate"] == "1961-06-15");
  BOOST_TEST(patient["name"][0]["family"] == "Müller");
  BOOST_TEST(patient["name"][0]["given"] == json({"Jürgen", "Q"}));
  BOOST_TEST(patient["identifier"].size() == 2u);  // PID-3 repeats
  BOOST_TEST(patient["identifier"][0]["value"] == "PATID1234");
  BOOST_TEST(patient["identifier"][0]["system"] == "GHH");
  BOOST_TEST(patient["identifier"][0]["type"]["coding"][0]["code"] == "MR");
  BOOST_TEST(patient["address"][0]["city"] == "GREENSBORO");
  BOOST_TEST(patient["address"][0]["use"] == "home");
  BOOST_TEST(patient["maritalStatus"]["coding"][0]["system"] ==
             "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus");
  BOOST_TEST(patient["telecom"][0]["value"] == "(919)379-1212");

  const json encounter = resources_of(bundle, "Encounter").at(0);
  BOOST_TEST(encounter["class"]["code"] == "IMP");
  BOOST_TEST(encounter["subject"]["reference"] == "urn:uuid:" + patient["id"].get<std::string>());
  BOOST_TEST(encounter["identifier"][0]["value"] == "VN0001");
  // PV1-7's attending doctor is a Practitioner of its own, referred to.
  const json practitioner = resources_of(bundle, "Practitioner").at(0);
  BOOST_TEST(practitioner["name"][0]["family"] == "ATTEND");
  BOOST_TEST(practitioner["identifier"][0]["value"] == "004777");
  BOOST_TEST(encounter["participant"][0]["individual"]["reference"] ==
             "urn:uuid:" + practitioner["id"].get<std::string>());
  BOOST_TEST(encounter["participant"][0]["type"][0]["coding"][0]["code"] == "ATND");

  BOOST_TEST(resources_of(bundle, "RelatedPerson").at(0)["name"][0]["family"] == "Müller");
  const json observation = resources_of(bundle, "Observation").at(0);
  BOOST_TEST(observation["valueQuantity"]["value"] == 180);
  BOOST_TEST(observation["status"] == "final");
  BOOST_TEST(resources_of(bundle, "AllergyIntolerance").at(0)["patient"]["reference"] ==
             "urn:uuid:" + patient["id"].get<std::string>());
  BOOST_TEST(header["focus"].size() == bundle["entry"].size() - 1);
}

BOOST_AUTO_TEST_CASE(the_same_patient_is_one_patient_and_a_repeat_is_the_same_message) {
  const json first = convert("adt_a01.hl7");
  const json update = convert("adt_a08.hl7");
  BOOST_TEST(resources_of(first, "Patient").at(0)["id"] == resources_of(update, "Patient").at(0)["id"]);
  BOOST_TEST(resources_of(first, "Encounter").at(0)["id"] == resources_of(update, "Encounter").at(0)["id"]);
  BOOST_TEST(first["id"] != update["id"]);
  BOOST_TEST(convert("adt_a01.hl7")["id"] == first["id"]);
}

BOOST_AUTO_TEST_CASE(oru_r01_becomes_a_report_with_its_observations) {
  const json bundle = convert("oru_r01.hl7");
  const json report = resources_of(bundle, "DiagnosticReport").at(0);
  const std::vector<json> observations = resources_of(bundle, "Observation");
  BOOST_TEST_REQUIRE(observations.size() == 3u);
  BOOST_TEST(report["result"].size() == 3u);
  BOOST_TEST(report["code"]["coding"][0]["code"] == "24331-1");
  BOOST_TEST(report["status"] == "final");
  const json request = resources_of(bundle, "ServiceRequest").at(0);
  BOOST_TEST(report["basedOn"][0]["reference"] == "urn:uuid:" + request["id"].get<std::string>());
  BOOST_TEST(observations[1]["interpretation"][0]["coding"][0]["code"] == "H");
  BOOST_TEST(observations[0]["valueQuantity"]["value"] == 196);
  // OBX-6: the unit as written, and UCUM's code and system.
  BOOST_TEST(observations[0]["valueQuantity"]["unit"] == "milligram per deciliter");
  BOOST_TEST(observations[0]["valueQuantity"]["code"] == "mg/dL");
  BOOST_TEST(observations[0]["valueQuantity"]["system"] == "http://unitsofmeasure.org");
  BOOST_TEST(observations[2]["valueString"] == "Fasting sample\nrepeat in 3 months & review");
  BOOST_TEST(observations[0]["effectiveDateTime"] == "2024-01-31T14:00:00+01:00");
}

BOOST_AUTO_TEST_CASE(a_field_sent_as_null_is_named_for_a_merge_to_clear) {
  // PID-11 and PID-16 deleted; PID-13 deleted but PID-14 gives a phone, so
  // the telecom element has a value and is not to be cleared.
  std::string text = sample("adt_a08.hl7");
  text.replace(text.find("|1300 S OAK ROAD^^GREENSBORO^NC^27401^USA^H||(919)555-0100^PRN^PH|||M"), 66,
               "|\"\"||\"\"|(919)555-0199^WPN^PH||\"\"");
  const json patient = resources_of(convert_text(text, "adt_a08 with nulls"), "Patient").at(0);
  BOOST_TEST(!patient.contains("address"));
  BOOST_TEST(patient["telecom"].size() == 1u);
  std::vector<std::string> nulled;
  for (const json& extension : patient["extension"]) {
    if (extension["url"] == hl7v2::v2_null_extension) nulled.push_back(extension["valueString"]);
  }
  BOOST_TEST(nulled == (std::vector<std::string>{"address", "maritalStatus"}),
             boost::test_tools::per_element());
  // Without nulls, no such extension.
  for (const json& extension :
       resources_of(convert("adt_a08.hl7"), "Patient").at(0).value("extension", json::array()))
    BOOST_TEST(extension["url"] != hl7v2::v2_null_extension);
}

BOOST_AUTO_TEST_CASE(values_that_do_not_convert_are_left_out_and_said) {
  // PID-7 no date, PID-8 a sex no map lists: taken without them (an invalid
  // gender would make the Patient invalid FHIR), and each is a warning that
  // says where and why, and becomes an ERR of severity W in the ACK.
  std::string text = sample("adt_a01.hl7");
  text.replace(text.find("|19610615|M|"), 12, "|19611399|X|");
  const hl7v2::Message message = parse(text);
  hl7v2::ConvertError error;
  std::vector<hl7v2::ParseError> warnings;
  const std::optional<std::string> bundle =
      hl7v2::to_fhir(message, maps(), hl7v2::ConvertOptions{"+01:00"}, error, &warnings);
  BOOST_TEST_REQUIRE(bundle.has_value());
  const json patient = resources_of(json::parse(*bundle), "Patient").at(0);
  BOOST_TEST(!patient.contains("birthDate"));
  BOOST_TEST(!patient.contains("gender"));
  BOOST_TEST_REQUIRE(warnings.size() == 2u);
  BOOST_TEST(warnings[0].segment_name == "PID");
  BOOST_TEST(warnings[0].field == 7u);
  BOOST_TEST(warnings[0].code == 102);
  BOOST_TEST(warnings[1].field == 8u);
  BOOST_TEST(warnings[1].code == 103);
  BOOST_TEST(warnings[0].reason.find("1399") == std::string::npos);  // where and why, not what

  hl7v2::Ack ack;
  ack.warnings = warnings;
  const hl7v2::Message written = parse(hl7v2::write_ack(hl7v2::ack_facts(message), ack, "ACK9", "20240131"));
  std::vector<const hl7v2::Segment*> errs;
  for (const hl7v2::Segment& segment : written.segments())
    if (segment.name() == "ERR") errs.push_back(&segment);
  BOOST_TEST_REQUIRE(errs.size() == 2u);
  BOOST_TEST(written.value(*written.find("MSA"), 1) == "AA");
  BOOST_TEST(errs[0]->raw(2) == "PID^1^7");
  BOOST_TEST(written.value(*errs[0], 4) == "W");
  BOOST_TEST(written.value(*errs[1], 3, 1, 1) == "103");
}

BOOST_AUTO_TEST_CASE(a_control_character_is_refused_where_it_is) {
  // FHIR cannot hold it, and the name it spoils cannot just be dropped: AR,
  // naming PID-5.
  std::string text = sample("adt_a01.hl7");
  text.replace(text.find("Müller"), 1, "M\x01");
  hl7v2::ConvertError error;
  BOOST_TEST(!hl7v2::to_fhir(parse(text), maps(), hl7v2::ConvertOptions{"+01:00"}, error).has_value());
  BOOST_TEST(error.code == 102);
  BOOST_TEST(error.segment == "PID");
  BOOST_TEST(error.sequence == 1u);
  BOOST_TEST(error.field == 5u);
  // A segment whose name is no name: the reason says which one it is.
  hl7v2::ParseError parse_error;
  BOOST_TEST(
      !hl7v2::Message::parse("MSH|^~\\&|A|B|C|D|2024||ADT^A01|X1|P|2.5\rEVN|A01\rp1d|x\r", parse_error));
  BOOST_TEST(parse_error.reason.find("segment 3 ") == 0u);
}

BOOST_AUTO_TEST_CASE(an_identifier_type_code_comes_with_its_system) {
  // CX.5 MR maps to Identifier.type.coding.code by a vocabulary: the system
  // the vocabulary names comes with it.
  const json patient = resources_of(convert("adt_a01.hl7"), "Patient").at(0);
  const json& coding = patient["identifier"][0]["type"]["coding"][0];
  BOOST_TEST(coding["code"] == "MR");
  BOOST_TEST(coding["system"] == "http://terminology.hl7.org/CodeSystem/v2-0203");
}

BOOST_AUTO_TEST_CASE(the_event_sets_the_encounter_status) {
  // PV1 says an inpatient (in progress) in each; the event says more.
  BOOST_TEST(resources_of(convert("adt_a01.hl7"), "Encounter").at(0)["status"] == "in-progress");
  BOOST_TEST(resources_of(convert("adt_a03.hl7"), "Encounter").at(0)["status"] == "finished");
  BOOST_TEST(resources_of(convert("adt_a11.hl7"), "Encounter").at(0)["status"] == "cancelled");
  BOOST_TEST(resources_of(convert("adt_a13.hl7"), "Encounter").at(0)["status"] == "in-progress");
}

BOOST_AUTO_TEST_CASE(an_order_and_its_results_name_one_service_request) {
  // ORC-2 and OBR-2 both hold the placer number (the usual case): it is the
  // ServiceRequest's identifier, and the order and its report share it.
  const json order = resources_of(convert("orm_o01.hl7"), "ServiceRequest").at(0);
  const json reported = resources_of(convert("oru_r01.hl7"), "ServiceRequest").at(0);
  BOOST_TEST_REQUIRE(order["identifier"].size() >= 1u);
  BOOST_TEST(order["identifier"][0]["value"] == "ORD448811");
  BOOST_TEST(order["identifier"][0]["type"]["coding"][0]["code"] == "PLAC");
  BOOST_TEST(reported["identifier"][1]["value"] == "R-991133");
  BOOST_TEST(order["id"] == reported["id"]);
}

BOOST_AUTO_TEST_CASE(a_corrected_report_updates_its_results) {
  // The same report sent again under a new control id, one value corrected:
  // the same Observations (by id), so that upserts update them.
  std::string text = sample("oru_r01.hl7");
  text.replace(text.find("LAB000123"), 9, "LAB000124");
  text.replace(text.find("||196|"), 6, "||199|");
  hl7v2::ConvertError error;
  const std::optional<std::string> corrected =
      hl7v2::to_fhir(parse(text), maps(), hl7v2::ConvertOptions{"+01:00"}, error);
  BOOST_TEST_REQUIRE(corrected.has_value());
  const std::vector<json> before = resources_of(convert("oru_r01.hl7"), "Observation");
  const std::vector<json> after = resources_of(json::parse(*corrected), "Observation");
  BOOST_TEST_REQUIRE(before.size() == after.size());
  std::set<std::string> ids;
  for (std::size_t i = 0; i < before.size(); ++i) {
    BOOST_TEST(before[i]["id"] == after[i]["id"]);
    ids.insert(before[i]["id"].get<std::string>());
  }
  BOOST_TEST(ids.size() == before.size());  // each result still its own
  BOOST_TEST(after[0]["valueQuantity"]["value"] == 199);
}

BOOST_AUTO_TEST_CASE(every_listed_message_type_converts_to_valid_fhir) {
  for (const std::string name : {"adt_a02.hl7", "adt_a03.hl7", "adt_a04.hl7", "adt_a08.hl7", "adt_a11.hl7",
                                 "adt_a13.hl7", "adt_a31.hl7", "orm_o01.hl7", "oml_o21.hl7"}) {
    BOOST_TEST_CONTEXT(name) {
      const json bundle = convert(name);
      BOOST_TEST(resources_of(bundle, "Patient").size() == 1u);
    }
  }
  // The same doctor named twice in one message is one Practitioner.
  hl7v2::ConvertError error;
  std::string twice = sample("adt_a08.hl7");
  twice.replace(twice.find("004777^ATTEND^AARON^A|||"), 24, "004777^ATTEND^AARON^A||004777^ATTEND^AARON^A|");
  const std::optional<std::string> bundle = hl7v2::to_fhir(parse(twice), maps(), {}, error);
  BOOST_TEST_REQUIRE(bundle.has_value());
  BOOST_TEST(resources_of(json::parse(*bundle), "Practitioner").size() == 1u);
  const json order = convert("orm_o01.hl7");
  BOOST_TEST(resources_of(order, "ServiceRequest").size() == 1u);  // ORC and OBR are one request
}

BOOST_AUTO_TEST_CASE(a02_moves_the_encounter_between_locations_chained_bed_to_facility) {
  const json bundle = convert("adt_a02.hl7");
  const std::vector<json> locations = resources_of(bundle, "Location");
  // The new bed, room and point of care, the old bed and room, and the
  // point of care and facility the two share, once each.
  BOOST_TEST_REQUIRE(locations.size() == 6u);
  std::map<std::string, json> by_reference;
  for (const json& location : locations)
    by_reference["urn:uuid:" + location["id"].get<std::string>()] = location;
  const auto chain = [&](const json& reference) {
    std::vector<std::string> names;  // "bd 02", "ro 2013", ...
    for (std::string at = reference["reference"]; !at.empty();) {
      const json& location = by_reference.at(at);
      names.push_back(location.value("/physicalType/coding/0/code"_json_pointer, std::string("?")) + " " +
                      location["identifier"][0]["value"].get<std::string>());
      at = location.contains("partOf") ? location["partOf"]["reference"].get<std::string>() : "";
    }
    return names;
  };
  const json encounter = resources_of(bundle, "Encounter").at(0);
  BOOST_TEST_REQUIRE(encounter["location"].size() == 2u);
  BOOST_TEST(encounter["location"][0]["status"] == "active");  // PV1-3, where the patient is now
  BOOST_TEST(chain(encounter["location"][0]["location"]) ==
                 (std::vector<std::string>{"bd 02", "ro 2013", "? 2000", "si GHH"}),
             boost::test_tools::per_element());
  BOOST_TEST(encounter["location"][1]["status"] == "completed");  // PV1-6, where they were
  BOOST_TEST(chain(encounter["location"][1]["location"]) ==
                 (std::vector<std::string>{"bd 01", "ro 2012", "? 2000", "si GHH"}),
             boost::test_tools::per_element());
  // A bed code is unique only within its ward: its identifier's system says
  // which, so that upserts by identifier find this bed and no other.
  const json& bed = by_reference.at(encounter["location"][0]["location"]["reference"]);
  BOOST_TEST(bed["identifier"][0]["system"] == "urn:hl7v2:location:GHH/2000/2013");
  BOOST_TEST(bed["mode"] == "instance");
  const json& facility = by_reference.at(by_reference.at(
      by_reference.at(bed["partOf"]["reference"])["partOf"]["reference"])["partOf"]["reference"]);
  BOOST_TEST(facility["identifier"][0]["system"] == "urn:hl7v2:location");
  // Whatever levels a PL gives, the chain is valid FHIR and the Encounter
  // names its most granular level.
  for (const std::string pl :
       {"^^^GHH", "^^01", "2000", "^2012^^^^^^^West Wing", "4E&x&y^401~5E^501", "\"\""}) {
    BOOST_TEST_CONTEXT(pl) {
      std::string text = sample("adt_a02.hl7");
      text.replace(text.find("2000^2013^02^GHH"), 16, pl);
      hl7v2::ConvertError error;
      const std::optional<std::string> converted = hl7v2::to_fhir(parse(text), maps(), {}, error);
      BOOST_TEST_REQUIRE(converted.has_value());
      const fhir::ParseResult parsed = fhir::parse_valid(*converted, fhir::Format::json, {});
      BOOST_TEST(parsed.issues.empty(), *converted);
    }
  }
  // The same place in another message is the same resource.
  const json admit = convert("adt_a01.hl7");
  std::set<std::string> ids;
  for (const json& location : resources_of(admit, "Location")) ids.insert(location["id"]);
  BOOST_TEST(
      ids.count(
          by_reference.at(encounter["location"][1]["location"]["reference"])["id"].get<std::string>()) == 0u,
      "adt_a01's bed 01 names no facility: another chain");
}

BOOST_AUTO_TEST_CASE(names_with_spaces_make_valid_uris) {
  // HL7's own examples name applications "GHH LAB" and assigning
  // authorities "GOOD HEALTH HOSPITAL".
  std::string text = sample("adt_a01.hl7");
  text.replace(text.find("MSH|^~\\&|ADT1|"), 14, "MSH|^~\\&|ADT 1|");
  text.replace(text.find("|COURIER|"), 9, "|GHH LAB|");
  text.replace(text.find("^^^USSSA^SS"), 11, "^^^SOCIAL SECURITY^SS");
  hl7v2::ConvertError error;
  const std::optional<std::string> bundle = hl7v2::to_fhir(parse(text), maps(), {}, error);
  BOOST_TEST_REQUIRE(bundle.has_value(), error.reason);
  const fhir::ParseResult parsed = fhir::parse_valid(*bundle, fhir::Format::json, {});
  for (const auto& issue : parsed.issues) BOOST_TEST_MESSAGE(issue.expression << ": " << issue.diagnostics);
  BOOST_TEST(parsed.issues.empty());
  const nlohmann::json converted = nlohmann::json::parse(*bundle);
  const nlohmann::json& header = converted["entry"][0]["resource"];
  BOOST_TEST(header["source"]["name"] == "ADT 1");
  BOOST_TEST(header["source"]["endpoint"] == "urn:hl7v2:ADT%201");
  BOOST_TEST(header["destination"][0]["name"] == "GHH LAB");
  BOOST_TEST(header["destination"][0]["endpoint"] == "urn:hl7v2:GHH%20LAB");
  bool found = false;
  for (const auto& entry : converted["entry"]) {
    if (entry["resource"]["resourceType"] != "Patient") continue;
    for (const auto& identifier : entry["resource"]["identifier"])
      found = found || identifier.value("system", "") == "SOCIAL%20SECURITY";
  }
  BOOST_TEST(found);
}

BOOST_AUTO_TEST_CASE(a40_marks_the_merged_record_replaced) {
  const json bundle = convert("adt_a40.hl7");
  const std::vector<json> patients = resources_of(bundle, "Patient");
  BOOST_TEST_REQUIRE(patients.size() == 2u);
  BOOST_TEST(patients[1]["active"] == false);
  BOOST_TEST(patients[1]["link"][0]["type"] == "replaced-by");
  BOOST_TEST(patients[1]["link"][0]["other"]["reference"] ==
             "urn:uuid:" + patients[0]["id"].get<std::string>());
}

// Why loading maps from a folder holding these files (path → text) fails,
// or "" when it loads.
std::string load_failure(const std::string& name, const std::map<std::string, std::string>& files) {
  const std::filesystem::path folder = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder / "messages");
  for (const auto& [path, text] : files) {
    std::filesystem::create_directories((folder / path).parent_path());
    std::ofstream(folder / path) << text;
  }
  std::string why;
  try {
    hl7v2::MapSet::load(folder.string());
  } catch (const std::runtime_error& error) {
    why = error.what();
  }
  std::filesystem::remove_all(folder);
  return why;
}

BOOST_AUTO_TEST_CASE(a_map_naming_an_element_fhir_lacks_is_refused_at_load) {
  const std::string what =
      load_failure("courier-bad-maps",
                   {{"segments/PID.yaml",
                     "map: \"PID[Patient]\"\nresource: \"Patient\"\nrows:\n  - {from: 8, to: \"gendr\"}\n"},
                    {"messages/ADT_A01.yaml",
                     "message: ADT_A01\nsegments:\n  - {segment: PID, map: \"PID[Patient]\"}\n"}});
  BOOST_TEST(what.find("PID.yaml") != std::string::npos, what);
  BOOST_TEST(what.find("Patient has no element 'gendr'; did you mean 'gender'?") != std::string::npos, what);
}

BOOST_AUTO_TEST_CASE(a_chain_row_must_say_which_resource_it_writes) {
  const std::string what =
      load_failure("courier-bad-chain", {{"datatypes/PL[Location].yaml",
                                          "map: \"PL[Location]\"\nchain: \"partOf\"\nrows:\n"
                                          "  - {from: 1, to: \"[4].mode\", assign: instance}\n"
                                          "  - {from: 2, to: \"mode\", assign: instance}\n"}});
  BOOST_TEST(what.find("begins with the number of its resource") != std::string::npos, what);
}

BOOST_AUTO_TEST_CASE(a_message_missing_a_required_segment_is_refused_with_code_100) {
  hl7v2::ConvertError error;
  // ADT_A01 needs PV1; a Z-segment and an NTE out of place are stepped over.
  const hl7v2::Message no_visit = parse(
      "MSH|^~\\&|A|B|C|D|20240101||ADT^A01^ADT_A01|X1|P|2.5\rEVN|A01\rZXX|1\rPID|1||P1^^^H^MR\rNTE|1\r");
  BOOST_TEST(!hl7v2::to_fhir(no_visit, maps(), {}, error).has_value());
  BOOST_TEST(error.code == 100);
  BOOST_TEST(error.reason == "the required segment PV1 is missing");
  BOOST_TEST(error.segment == "PV1");
  // ORU_R01 needs an order group beginning with OBR.
  const hl7v2::Message no_order =
      parse("MSH|^~\\&|A|B|C|D|20240101||ORU^R01^ORU_R01|X2|P|2.5\rPID|1||P1^^^H^MR\r");
  BOOST_TEST(!hl7v2::to_fhir(no_order, maps(), {}, error).has_value());
  BOOST_TEST(error.reason == "the required group ORDER_OBSERVATION (beginning with OBR) is missing");
  // A segment out of its place is tolerated: PV1 before PID.
  const hl7v2::Message untidy = parse(
      "MSH|^~\\&|A|B|C|D|20240101||ADT^A01^ADT_A01|X3|P|2.5\rEVN|A01\rPV1|1|I\rPID|1||P1^^^H^MR\rPV1|1|I\r");
  BOOST_TEST(hl7v2::to_fhir(untidy, maps(), {}, error).has_value(), error.reason);
}

BOOST_AUTO_TEST_CASE(a_structure_without_a_map_is_refused_with_code_200) {
  hl7v2::ConvertError error;
  const hl7v2::Message message = parse("MSH|^~\\&|A|B|C|D|20240101||SIU^S12^SIU_S12|X1|P|2.5\r");
  BOOST_TEST(!hl7v2::to_fhir(message, maps(), {}, error).has_value());
  BOOST_TEST(error.code == 200);
  BOOST_TEST(error.reason.find("SIU_S12") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(hl7v2_from_fhir)

BOOST_AUTO_TEST_CASE(fhir_times_become_v2_times) {
  BOOST_TEST(hl7v2::v2_time("2024-01-31T14:00:00+01:00") == "20240131140000+0100");
  BOOST_TEST(hl7v2::v2_time("2024-01-31T14:00:00.250-05:00") == "20240131140000.250-0500");
  BOOST_TEST(hl7v2::v2_time("2024-01-31T14:00:00Z") == "20240131140000+0000");
  BOOST_TEST(hl7v2::v2_time("1961-06-15") == "19610615");
  BOOST_TEST(hl7v2::v2_time("1961-06") == "196106");
}

BOOST_AUTO_TEST_CASE(results_go_to_fhir_and_back_to_oru) {
  hl7v2::ConvertError error;
  const std::optional<std::string> bundle =
      hl7v2::to_fhir(parse(sample("oru_r01.hl7")), maps(), hl7v2::ConvertOptions{"+01:00"}, error);
  BOOST_TEST_REQUIRE(bundle.has_value());
  std::string why;
  const std::optional<hl7v2::Outgoing> oru = hl7v2::oru_from_fhir(*bundle, &maps(), why);
  BOOST_TEST_REQUIRE(oru.has_value(), why);
  const hl7v2::Message back = parse(oru->text);
  BOOST_TEST(back.structure() == "ORU_R01");
  std::vector<const hl7v2::Segment*> results;
  for (const hl7v2::Segment& segment : back.segments()) {
    if (segment.name() == "OBX") results.push_back(&segment);
  }
  BOOST_TEST_REQUIRE(results.size() == 3u);
  BOOST_TEST(back.value(*results[1], 3, 1, 1) == "2571-8");
  BOOST_TEST(back.value(*results[1], 3, 1, 3) == "LN");  // the LOINC URI named as v2 names it
  BOOST_TEST(back.value(*results[1], 5) == "246");
  BOOST_TEST(back.value(*results[1], 8) == "H");
  BOOST_TEST(back.value(*results[2], 5) == "Fasting sample\nrepeat in 3 months & review");
  BOOST_TEST(back.value(*back.find("PID"), 5, 1, 1) == "Müller");
  BOOST_TEST(back.value(*back.find("OBR"), 25) == "F");
}

BOOST_AUTO_TEST_CASE(a_response_message_becomes_enhanced_modes_application_ack) {
  const std::string original = parse(sample("adt_a01.hl7")).write();
  const std::string msh = original.substr(0, original.find('\r'));
  auto response = [](const std::string& code) {
    return R"({"resourceType":"Bundle","type":"message","timestamp":"2024-01-31T12:45:03+01:00","entry":[)"
           R"({"resource":{"resourceType":"MessageHeader","response":{"identifier":"h1","code":")" +
           code + R"("}}}]})";
  };
  std::string why;
  const std::optional<hl7v2::Outgoing> accepted = hl7v2::application_ack(msh, response("ok"), why);
  BOOST_TEST_REQUIRE(accepted.has_value(), why);
  const hl7v2::Message ack = parse(accepted->text);
  BOOST_TEST(ack.header(5) == "ADT1");  // back to the sender
  BOOST_TEST(ack.header(9, 1) == "ACK");
  BOOST_TEST(ack.header(7) == "20240131124503+0100");  // when the answer was decided
  BOOST_TEST(ack.control_id() == accepted->control_id);
  BOOST_TEST(ack.header(15) == "AL");  // a message of its own: its receiver commits to it
  BOOST_TEST(ack.header(16) == "NE");
  BOOST_TEST(hl7v2::read_ack(ack).code == "AA");
  BOOST_TEST(hl7v2::read_ack(ack).acknowledged_id == "MSG00001");

  const std::optional<hl7v2::Outgoing> refused = hl7v2::application_ack(msh, response("fatal-error"), why);
  BOOST_TEST_REQUIRE(refused.has_value(), why);
  BOOST_TEST(hl7v2::read_ack(parse(refused->text)).code == "AR");
  BOOST_TEST(parse(refused->text).find("ERR") != nullptr);
  BOOST_TEST(
      hl7v2::read_ack(parse(hl7v2::application_ack(msh, response("transient-error"), why)->text)).code ==
      "AE");
  // Fields as they came: components in MSH-3, characters beyond letters and digits in MSH-10.
  const std::string odd =
      "MSH|^~\\&|EPIC^1.2.840.114350^ISO|GHH|COURIER|LAB|20240131124500||ADT^A01|A+B#1|P|2.5.1|||AL|AL";
  const hl7v2::Message odd_ack = parse(hl7v2::application_ack(odd, response("ok"), why)->text);
  BOOST_TEST(odd_ack.header(5, 1) == "EPIC");
  BOOST_TEST(odd_ack.header(5, 2) == "1.2.840.114350");
  BOOST_TEST(hl7v2::read_ack(odd_ack).acknowledged_id == "A+B#1");
  // The same answer sent again is the same ACK, which its receiver can recognise.
  BOOST_TEST(hl7v2::application_ack(msh, response("ok"), why)->control_id == accepted->control_id);
  BOOST_TEST(refused->control_id != accepted->control_id);
  BOOST_TEST(!hl7v2::application_ack(msh, R"({"resourceType":"Patient"})", why).has_value());
}

BOOST_AUTO_TEST_CASE(msh16_becomes_the_messages_response_request) {
  const std::string extension = "http://hl7.org/fhir/StructureDefinition/messageheader-response-request";
  auto response_request = [&](const std::string& text) {
    hl7v2::ConvertError error;
    hl7v2::ConvertOptions options;
    options.response_request = true;
    const std::optional<std::string> bundle = hl7v2::to_fhir(parse(text), maps(), options, error);
    BOOST_TEST_REQUIRE(bundle.has_value());
    const nlohmann::json header = nlohmann::json::parse(*bundle)["entry"][0]["resource"];
    for (const auto& e : header.value("extension", nlohmann::json::array()))
      if (e["url"] == extension) return e["valueCode"].get<std::string>();
    return std::string("(none)");
  };
  const std::string enhanced = sample("adt_a01.hl7");  // MSH-15 AL, MSH-16 NE
  BOOST_TEST(response_request(enhanced) == "never");
  std::string on_error = enhanced;
  on_error.replace(on_error.find("|AL|NE|"), 7, "|AL|ER|");
  BOOST_TEST(response_request(on_error) == "on-error");
  BOOST_TEST(response_request(sample("adt_a08.hl7")) == "(none)");  // original mode asks nothing
  // Without a listener that sends application ACKs, nothing is added.
  hl7v2::ConvertError error;
  const std::optional<std::string> plain = hl7v2::to_fhir(parse(enhanced), maps(), {}, error);
  BOOST_TEST_REQUIRE(plain.has_value());
  BOOST_TEST(plain->find("messageheader-response-request") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(messages_without_a_report_have_no_v2_form) {
  hl7v2::ConvertError error;
  const std::optional<std::string> bundle = hl7v2::to_fhir(parse(sample("adt_a01.hl7")), maps(), {}, error);
  std::string why;
  BOOST_TEST(!hl7v2::oru_from_fhir(*bundle, &maps(), why).has_value());
  BOOST_TEST(why.find("DiagnosticReport") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
