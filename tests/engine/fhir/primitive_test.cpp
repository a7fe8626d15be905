#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "engine/fhir/primitive.h"

using namespace courier::fhir;

namespace {

struct Case {
  const char* type;
  const char* value;
  bool valid;
};

std::ostream& operator<<(std::ostream& out, const Case& c) {
  return out << c.type << " '" << c.value << "' " << (c.valid ? "valid" : "invalid");
}

const Case kCases[] = {
    {"boolean", "true", true},
    {"boolean", "True", false},
    {"integer", "-2147483648", true},
    {"integer", "2147483648", false},
    {"integer", "007", false},
    {"integer", "1.0", false},
    {"integer", "-0", true},
    {"positiveInt", "0", false},
    {"positiveInt", "1", true},
    {"unsignedInt", "0", true},
    {"unsignedInt", "-1", false},
    {"decimal", "2.00", true},
    {"decimal", "-0.5e-10", true},
    {"decimal", ".5", false},
    {"decimal", "1.", false},
    {"decimal", "NaN", false},
    {"date", "2024", true},
    {"date", "2024-02", true},
    {"date", "2024-02-29", true},
    {"date", "2023-02-29", false},
    {"date", "2024-13", false},
    {"date", "0000", false},
    {"date", "2024-02-01T10:00:00Z", false},
    {"dateTime", "2015-02-07T13:28:17-05:00", true},
    {"dateTime", "2015-02-07T13:28:17.239+02:00", true},
    {"dateTime", "2015-02-07T13:28:17", false},  // a time needs a zone
    {"dateTime", "2015-02T13:28:17Z", false},
    {"dateTime", "2015-02-07T24:00:00Z", false},
    {"dateTime", "2015-02-07T13:28:17+14:30", false},
    {"instant", "2015-02-07T13:28:17.239+02:00", true},
    {"instant", "2015-02-07", false},
    {"time", "23:59:60", true},
    {"time", "24:00:00", false},
    {"time", "12:00", false},
    {"code", "in-progress", true},
    {"code", "two words", true},
    {"code", " lead", false},
    {"code", "double  space", false},
    {"id", "a-Z.09", true},
    {"id", "under_score", false},
    {"id", "x2345678901234567890123456789012345678901234567890123456789012345", false},
    {"oid", "urn:oid:1.2.840.10008", true},
    {"oid", "urn:oid:3.1", false},
    {"oid", "urn:oid:1.02", false},
    {"uuid", "urn:uuid:c757873d-ec9a-4326-a141-556f43239520", true},
    {"uuid", "urn:uuid:C757873D-EC9A-4326-A141-556F43239520", false},
    {"uri", "http://example.org/a b", false},
    {"uri", "urn:x", true},
    {"base64Binary", "SGVsbG8=", true},
    {"base64Binary", "SGVsbG8", false},
    {"base64Binary", "SGVs\nbG8=", true},
    {"string", "", false},
    {"string", "tab\tand\nnewline", true},
    {"string", "bell\x07", false},
    {"markdown", "**bold**", true},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(primitives)

BOOST_DATA_TEST_CASE(values_follow_the_r4_rules, boost::unit_test::data::make(kCases), c) {
  const TypeInfo* type = TypeRegistry::r4().find(c.type);
  BOOST_REQUIRE(type != nullptr);
  const auto problem = check_primitive(*type, c.value);
  BOOST_TEST(!problem.has_value() == c.valid, c << (problem ? ": " + *problem : std::string()));
}

BOOST_AUTO_TEST_CASE(json_kinds_come_from_the_type_hierarchy) {
  const auto& r = TypeRegistry::r4();
  BOOST_TEST((r.find("positiveInt")->json_kind == JsonKind::number));
  BOOST_TEST((r.find("decimal")->json_kind == JsonKind::number));
  BOOST_TEST((r.find("boolean")->json_kind == JsonKind::boolean));
  BOOST_TEST((r.find("code")->json_kind == JsonKind::string));
  BOOST_TEST(r.find("code")->is_a("string"));
  BOOST_TEST(r.find("Patient")->is_a("DomainResource"));
}

BOOST_AUTO_TEST_SUITE_END()
