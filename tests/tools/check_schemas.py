#!/usr/bin/python3
"""The shipped configuration, route files and route test cases validate
against the JSON Schemas in schemas/courier (the ones editors use), and the
schemas refuse the mistakes `courier check` refuses. Debian's python3
(python3-jsonschema, python3-yaml). Usage: check_schemas.py [ROOT]"""
import glob
import json
import os
import sys
import unittest

import jsonschema
import yaml

ROOT = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SCHEMAS = os.path.join(ROOT, "schemas", "courier")


def load_schemas():
    schemas = {}
    for path in glob.glob(os.path.join(SCHEMAS, "*.schema.json")):
        with open(path) as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        schemas[os.path.basename(path)] = schema
    return schemas


SCHEMA_SET = load_schemas()


def validator(name):
    schema = SCHEMA_SET[name]
    store = {s["$id"]: s for s in SCHEMA_SET.values()}
    resolver = jsonschema.RefResolver(schema["$id"], schema, store=store)
    return jsonschema.Draft202012Validator(schema, resolver=resolver)


def errors(name, document):
    return [e.message for e in validator(name).iter_errors(document)]


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


class ShippedFiles(unittest.TestCase):
    def test_config(self):
        self.assertEqual(errors("config.schema.json", load_yaml(os.path.join(ROOT, "conf", "courier.yaml"))), [])

    def test_routes_and_their_tests(self):
        routes = [p for p in glob.glob(os.path.join(ROOT, "routes", "*.yaml")) if not p.endswith(".test.yaml")]
        tests = glob.glob(os.path.join(ROOT, "routes", "*.test.yaml"))
        self.assertTrue(routes and tests)
        for path in routes:
            self.assertEqual(errors("route.schema.json", load_yaml(path)), [], path)
        for path in tests:
            self.assertEqual(errors("route-test.schema.json", load_yaml(path)), [], path)


class Mistakes(unittest.TestCase):
    ROUTE = {"route": "r", "to": [{"name": "out", "pattern": "file", "folder": "/tmp"}]}

    def route_with(self, **changes):
        route = json.loads(json.dumps(self.ROUTE))
        for key, value in changes.items():
            if key.startswith("to_"):
                route["to"][0][key[3:].replace("_", "-")] = value
            else:
                route[key.replace("_", "-")] = value
        return route

    def test_a_good_route_and_a_list_of_them(self):
        self.assertEqual(errors("route.schema.json", self.ROUTE), [])
        self.assertEqual(errors("route.schema.json", [self.ROUTE, self.ROUTE]), [])
        self.assertEqual(errors("route.schema.json", self.route_with(to_ack_timeout="${ACK:-30s}")), [])

    def test_refused(self):
        for bad in [self.route_with(whem={}),                      # unknown key
                    self.route_with(to_foldr="/x"),                 # unknown destination key
                    self.route_with(to_pattern="ftp"),              # unknown pattern
                    self.route_with(to_ack_timeout="soon"),         # not a duration
                    self.route_with(to_retry={"attempts": 0}),      # attempts from 1
                    self.route_with(to_retry={"backoff": "1s-5m"}),  # INITIAL..MAX
                    {"route": "r", "to": [{"name": "out", "pattern": "messaging"}]},  # no endpoint
                    {"route": "r"}]:                                # no destinations
            self.assertNotEqual(errors("route.schema.json", bad), [], bad)

    def test_config_mistakes(self):
        self.assertNotEqual(errors("config.schema.json", {"listener": []}), [])
        self.assertNotEqual(errors("config.schema.json", {"listeners": [{"name": "a", "type": "htp"}]}), [])
        self.assertNotEqual(errors("config.schema.json", {"listeners": [{"name": "a", "type": "http",
                                                                         "port": 99999}]}), [])
        self.assertEqual(errors("config.schema.json", {"listeners": [{"name": "a", "type": "http",
                                                                      "port": "${PORT:-8080}"}]}), [])


if __name__ == "__main__":
    unittest.main(verbosity=1)
