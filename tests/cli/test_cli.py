#!/usr/bin/env python3
"""The courier command line as a user runs it: real processes, real files,
exit codes and output checked. Usage: test_cli.py COURIER_BINARY"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

COURIER = None
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "tests", "data", "fhir-examples")
VALIDATOR_CASES = os.path.join(os.path.dirname(ROOT), "shared", "conformance", "fhir-test-cases-validator")


def courier(*args, stdin=None):
    return subprocess.run([COURIER, *args], input=stdin, capture_output=True, timeout=60)


def exact_json(text):
    # Decimals compared by their text, as FHIR requires.
    return json.loads(text, parse_float=lambda s: ("decimal", s), parse_int=lambda s: ("decimal", s))


class Validate(unittest.TestCase):
    def test_valid_resource_exits_0_with_an_informational_outcome(self):
        r = courier("validate", os.path.join(EXAMPLES, "Patient-example.json"))
        self.assertEqual(r.returncode, 0, r.stderr)
        outcome = json.loads(r.stdout)
        self.assertEqual(outcome["resourceType"], "OperationOutcome")
        self.assertEqual([i["severity"] for i in outcome["issue"]], ["information"])

    def test_invalid_message_exits_1_naming_rule_and_place(self):
        r = courier("validate", os.path.join(VALIDATOR_CASES, "message-empty-entry.xml"))
        self.assertEqual(r.returncode, 1)
        errors = [i for i in json.loads(r.stdout)["issue"] if i["severity"] == "error"]
        self.assertEqual(len(errors), 1)
        self.assertEqual(errors[0]["expression"], ["Bundle.entry[5]"])
        self.assertTrue(errors[0]["diagnostics"].startswith("bdl-5"))
        self.assertEqual(errors[0]["code"], "invariant")

    def test_outcome_in_xml(self):
        r = courier("validate", "--format", "xml", "-", stdin=b'{"resourceType":"Patient","active":"yes"}')
        self.assertEqual(r.returncode, 1)
        root = ET.fromstring(r.stdout)
        self.assertEqual(root.tag, "{http://hl7.org/fhir}OperationOutcome")
        diagnostics = root.find("{http://hl7.org/fhir}issue/{http://hl7.org/fhir}diagnostics").get("value")
        self.assertEqual(diagnostics, "a boolean must be a JSON boolean, not a string")

    def test_malformed_input_reports_line_and_column(self):
        r = courier("validate", "-", stdin=b'{\n "resourceType": "Patient",\n "active": tru\n}')
        self.assertEqual(r.returncode, 1)
        issue = json.loads(r.stdout)["issue"][0]
        self.assertEqual(issue["severity"], "fatal")
        ext = {e["url"].rsplit("-", 1)[1]: e["valueInteger"] for e in issue["extension"]}
        self.assertEqual(ext, {"line": 3, "col": 12})

    def test_missing_file_exits_1(self):
        r = courier("validate", "/nonexistent/x.json")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"/nonexistent/x.json: No such file or directory", r.stderr)

    def test_usage_errors_exit_2(self):
        self.assertEqual(courier("validate", "--format", "yaml", "x").returncode, 2)
        self.assertEqual(courier("validate", "--bogus").returncode, 2)
        self.assertEqual(courier().returncode, 2)
        self.assertEqual(courier("frobnicate").returncode, 2)

    def test_help_and_version_exit_0(self):
        for args in (("--help",), ("validate", "--help"), ("convert", "--help"), ("run", "--help"), ("--version",)):
            r = courier(*args)
            self.assertEqual(r.returncode, 0, args)
            self.assertTrue(r.stdout, args)


class Convert(unittest.TestCase):
    def test_json_to_xml_and_back_keeps_the_meaning(self):
        for name in ("Observation-decimal.json", "Patient-example.json", "Bundle-10bb101f-a121-4264-a920-67be9cb82c74.json"):
            path = os.path.join(EXAMPLES, name)
            xml = courier("convert", "--to", "xml", path)
            self.assertEqual(xml.returncode, 0, xml.stderr)
            ET.fromstring(xml.stdout)  # well-formed XML
            back = courier("convert", "--to", "json", "-", stdin=xml.stdout)
            self.assertEqual(back.returncode, 0, back.stderr)
            with open(path, "rb") as f:
                original = exact_json(f.read())
            again = exact_json(back.stdout)
            # Narrative may be re-spelt by the XML layer; compare all else exactly.
            for doc in (original, again):
                doc.pop("text", None)
            self.assertEqual(again, original, name)

    def test_decimal_precision_survives(self):
        r = courier("convert", "--to", "xml", "--compact", "-",
                    stdin=b'{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":2.00}}')
        self.assertIn(b'<value value="2.00"/>', r.stdout)

    def test_bad_input_exits_1_with_file_line_column(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write('{"resourceType":"Patient",\n"birthdate":"1970"}')
        try:
            r = courier("convert", "--to", "xml", f.name)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stdout, b"")
            self.assertIn(f"{f.name}:2:1: unknown property 'birthdate' in Patient; did you mean 'birthDate'?".encode(), r.stderr)
        finally:
            os.unlink(f.name)

    def test_dtd_is_refused(self):
        r = courier("convert", "--to", "json", "-",
                    stdin=b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir"><id value="&e;"/></Patient>')
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"DOCTYPE and entity declarations are not allowed", r.stderr)
        self.assertNotIn(b"root:", r.stdout + r.stderr)

    def test_to_is_required(self):
        self.assertEqual(courier("convert", "-", stdin=b"{}").returncode, 2)


class Fhirpath(unittest.TestCase):
    MESSAGE = os.path.join(ROOT, "bench", "data", "lab-order-message.json")

    def test_result_items_have_type_and_value(self):
        r = courier("fhirpath", "--input", self.MESSAGE,
                    "Bundle.entry[0].resource.focus.resolve().ofType(ServiceRequest).authoredOn | Bundle.entry.count()")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), [{"type": "dateTime", "value": "@2026-11-26T09:14:47+01:00"},
                                                {"type": "integer", "value": 7}])

    def test_decimals_keep_their_text_and_complex_values_are_fhir_json(self):
        r = courier("fhirpath", "--input", self.MESSAGE, "Bundle.entry.resource.ofType(Specimen).collection.quantity")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b'"value":5.0,', r.stdout)
        self.assertEqual(json.loads(r.stdout)[0]["type"], "Quantity")

    def test_reads_xml_and_stdin(self):
        xml = courier("convert", "--to", "xml", self.MESSAGE).stdout
        r = courier("fhirpath", "--input", "-", "Bundle.entry[2].resource.name.family", stdin=xml)
        self.assertEqual(json.loads(r.stdout), [{"type": "string", "value": "Doe"}])

    def test_invalid_expressions_exit_1_with_the_kind(self):
        r = courier("fhirpath", "1 +")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith(b"syntax: "), r.stderr)
        r = courier("fhirpath", "--input", self.MESSAGE, "Bundle.entry.resource.nosuch()")
        self.assertTrue(r.stderr.startswith(b"semantic: unknown function nosuch()"), r.stderr)
        r = courier("fhirpath", "--input", self.MESSAGE, "Bundle.entry.single()")
        self.assertTrue(r.stderr.startswith(b"execution: "), r.stderr)
        self.assertEqual(courier("fhirpath").returncode, 2)

    def test_member_of_uses_the_terminology_given(self):
        value_sets = os.path.join(ROOT, "valuesets", "lab-orderable-tests.json")
        expression = ("Bundle.entry.resource.ofType(ServiceRequest).code"
                      ".memberOf('http://example.org/fhir/ValueSet/lab-orderable-tests')")
        r = courier("fhirpath", "--input", self.MESSAGE, "--terminology", value_sets, expression)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), [{"type": "boolean", "value": True}])
        r = courier("fhirpath", "--input", self.MESSAGE, expression)
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith(b"execution: value set http://example.org/fhir/ValueSet/lab-orderable-tests"
                                            b" is not available locally"), r.stderr)
        r = courier("fhirpath", "--input", self.MESSAGE, "--terminology", self.MESSAGE, "true")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"holds no ValueSet or CodeSystem", r.stderr)

    def test_trace_goes_to_stderr_only_when_asked(self):
        expression = "Bundle.entry.resource.ofType(Patient).name.trace('names', family).given.count()"
        r = courier("fhirpath", "--input", self.MESSAGE, "--trace", expression)
        self.assertEqual(json.loads(r.stdout), [{"type": "integer", "value": 2}])
        self.assertEqual(r.stderr, b'trace names: [{"type":"string","value":"Doe"}]\n')
        r = courier("fhirpath", "--input", self.MESSAGE, expression)
        self.assertEqual(r.stderr, b"")


def read_until_ready(process):
    lines = []
    while not lines or lines[-1] != "courier: ready\n":
        line = process.stderr.readline().decode()
        if not line:
            raise AssertionError("courier stopped before it was ready: " + "".join(lines))
        lines.append(line)
    return lines


class Run(unittest.TestCase):
    def write_config(self, folder, text):
        path = os.path.join(folder, "courier.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_runs_until_sigterm_and_creates_its_data_directory(self):
        with tempfile.TemporaryDirectory() as folder:
            config = self.write_config(folder, "data-dir: ${TEST_DATA:-" + folder + "/default}/var\n")
            env = dict(os.environ, TEST_DATA=os.path.join(folder, "chosen"))
            p = subprocess.Popen([COURIER, "run", "--config", config], env=env, stderr=subprocess.PIPE)
            lines = read_until_ready(p)
            self.assertIn("courier: no listeners are configured, so no messages are received\n", lines)
            self.assertTrue(os.path.isdir(os.path.join(folder, "chosen", "var")))
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=10), 0)
            p.stderr.close()

    def test_default_config_starts(self):
        with tempfile.TemporaryDirectory() as folder:
            env = dict(os.environ, COURIER_DATA_DIR=os.path.join(folder, "data"), COURIER_HTTP_PORT="0")
            p = subprocess.Popen([COURIER, "run"], cwd=ROOT, env=env, stderr=subprocess.PIPE)
            lines = read_until_ready(p)
            self.assertTrue(lines[0].startswith("courier: running with conf/courier.yaml"), lines)
            self.assertTrue(any(line.startswith("courier: listener fhir: http on 0.0.0.0:") for line in lines), lines)
            p.send_signal(signal.SIGINT)
            self.assertEqual(p.wait(timeout=10), 0)
            p.stderr.close()

    def test_unknown_key_names_place_and_suggestion(self):
        with tempfile.TemporaryDirectory() as folder:
            config = self.write_config(folder, "data-dir: x\nlistener: []\n")
            r = courier("run", "--config", config)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stderr.decode().strip(),
                             f"courier run: {config}:2:1: unknown key 'listener' in the configuration; did you mean 'listeners'?")

    def test_unset_variable_without_default_is_an_error(self):
        with tempfile.TemporaryDirectory() as folder:
            config = self.write_config(folder, "data-dir: ${COURIER_TEST_SURELY_UNSET}\n")
            r = courier("run", "--config", config)
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"COURIER_TEST_SURELY_UNSET is not set and has no default", r.stderr)


class Check(unittest.TestCase):
    def test_shipped_config_and_routes_are_clean(self):
        r = subprocess.run([COURIER, "check"], cwd=ROOT, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(b"courier check: ok: 2 listener(s)", r.stderr)

    def test_every_problem_in_config_and_routes_is_printed(self):
        with tempfile.TemporaryDirectory() as folder:
            route = os.path.join(folder, "r.yaml")
            with open(route, "w") as f:
                f.write("route: r\nfrom: web\nto:\n  - name: out\n    pattern: file\n    foldr: /tmp\n")
            config = os.path.join(folder, "courier.yaml")
            with open(config, "w") as f:
                f.write("data-dir: " + folder + "\nlisteners:\n  - name: fhir\n    type: htp\n"
                        "  - name: api\n    type: http\n    port: 99999\nroutes: [" + route + "]\n")
            r = courier("check", "--config", config)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stdout.decode().splitlines(), [
                f"{config}:4:11: listeners[0].type: unknown listener type 'htp' (known: http, mllp); did you mean 'http'?",
                f"{config}:7:11: listener 'api'.port must be a whole number from 0 to 65535, not '99999'",
                f"{route}:6:5: unknown key 'foldr' in route 'r'.to[0]; did you mean 'folder'?",
                f"{route}:4:5: route 'r'.to[0] needs a folder to write the messages to",
                f"{route}:1:1: route 'r' takes messages from listener 'web', which the configuration does not define",
            ])
            self.assertEqual(r.stderr, b"courier check: 5 problems\n")
            # courier run refuses to start on the same errors.
            self.assertEqual(courier("run", "--config", config).returncode, 1)


    def test_a_value_set_that_is_not_loaded_is_a_problem(self):
        with tempfile.TemporaryDirectory() as folder:
            route = os.path.join(folder, "r.yaml")
            with open(route, "w") as f:
                f.write("route: r\nwhen:\n  expression: >-\n    Bundle.entry.resource.ofType(ServiceRequest)\n"
                        "      .code.memberOf('http://example.org/vs/nowhere')\n"
                        "to: [{name: out, pattern: file, folder: /tmp}]\n")
            config = os.path.join(folder, "courier.yaml")
            with open(config, "w") as f:
                f.write("data-dir: " + folder + "\nroutes: [" + route + "]\nvalue-sets: [" + folder + "/*.json]\n")
            r = courier("check", "--config", config)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stdout.decode().splitlines(), [
                f"{route}:5:22: route 'r'.when.expression: memberOf('http://example.org/vs/nowhere') names a value set "
                "that is not loaded (list its file under value-sets: in the configuration)"])
            with open(os.path.join(folder, "vs.json"), "w") as f:
                json.dump({"resourceType": "ValueSet", "url": "http://example.org/vs/nowhere", "status": "active",
                           "compose": {"include": [{"system": "http://loinc.org", "concept": [{"code": "1-8"}]}]}}, f)
            r = courier("check", "--config", config)
            self.assertEqual(r.returncode, 0, r.stdout)


class Test(unittest.TestCase):
    def test_shipped_route_tests_pass(self):
        r = subprocess.run([COURIER, "test"], cwd=ROOT, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(b"courier test: 8 passed, 0 failed", r.stderr)
        self.assertIn(b"ok    routes/v2-feeds.test.yaml: lab results go to the FHIR store", r.stdout)

    def test_a_failing_case_says_what_differed(self):
        with tempfile.TemporaryDirectory() as folder:
            cases = os.path.join(folder, "t.test.yaml")
            with open(cases, "w") as f:
                f.write("- name: wrong expectations\n  input: " + os.path.join(ROOT, "routes", "samples", "lab-order.json") +
                        "\n  expect: { route: other, destinations: [lis], status: 202 }\n")
            r = subprocess.run([COURIER, "test", cases], cwd=ROOT, capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stdout.decode(), f"FAIL  {cases}: wrong expectations: route expected other, got lab-orders; "
                             "destinations expected [lis], got [lab-inbox]; status expected 202, got 200\n")

    def test_a_v2_case_that_cannot_be_converted_says_why(self):
        with tempfile.TemporaryDirectory() as folder:
            cases = os.path.join(folder, "t.test.yaml")
            with open(cases, "w") as f:
                f.write("- name: an unmapped structure\n  input: " +
                        os.path.join(ROOT, "routes", "samples", "siu_s12.hl7") + "\n  expect: { route: v2-feeds }\n")
            r = subprocess.run([COURIER, "test", cases], cwd=ROOT, capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stdout.decode(), f"FAIL  {cases}: an unmapped structure: route none, status 400: "
                             "refused (AR): courier has no map for message structure SIU_S12\n")


if __name__ == "__main__":
    COURIER = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
