#!/usr/bin/env python3
"""The embedded FHIR REST store (the queue server of Option C) end to end:
courier on loopback, talked to over HTTP as a FHIR client would, and by npm
fhir-kit-client."""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Courier  # noqa: E402

ROUTES = """
route: nothing-here
when:
  event: never-sent
to:
  - name: out
    pattern: file
    folder: {folder}/outbox
"""
ACTIONABLE = {"system": "http://terminology.hl7.org/CodeSystem/common-tags", "code": "actionable"}


def service_request(order="ORD-1", status="active", performer="Organization/lab", patient="Patient/p1", tag=True):
    resource = {
        "resourceType": "ServiceRequest", "status": status, "intent": "order",
        "identifier": [{"system": "urn:oid:1.2.3", "value": order}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8"}]},
        "subject": {"reference": patient},
        "performer": [{"reference": performer}],
    }
    if tag:
        resource["meta"] = {"tag": [ACTIONABLE]}
    return resource


class RestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.engine = Courier(cls.tmp.name, ROUTES.format(folder=cls.tmp.name))

    @classmethod
    def tearDownClass(cls):
        cls.engine.stop()
        cls.tmp.cleanup()

    def call(self, method, path, body=None, headers=None, content_type="application/fhir+json"):
        connection = http.client.HTTPConnection("127.0.0.1", self.engine.port, timeout=30)
        data = None if body is None else body if isinstance(body, (str, bytes)) else json.dumps(body)
        all_headers = dict(headers or {})
        if data is not None:
            all_headers["Content-Type"] = content_type
        connection.request(method, "/fhir/" + path, body=data, headers=all_headers)
        r = connection.getresponse()
        raw = r.read()
        connection.close()
        parsed = json.loads(raw) if raw and r.getheader("Content-Type", "").startswith("application/fhir+json") \
            else raw
        return r.status, parsed, {k.lower(): v for k, v in r.getheaders()}

    def create(self, resource, headers=None):
        status, body, headers = self.call("POST", resource["resourceType"], resource, headers)
        self.assertIn(status, (200, 201), body)
        return body

    def search(self, query, headers=None):
        status, body, _ = self.call("GET", query, headers=headers)
        self.assertEqual(status, 200, body)
        return body

    def ids(self, bundle):
        return sorted(e["resource"]["id"] for e in bundle.get("entry", []))

    # ---- the interactions ------------------------------------------------

    def test_create_read_vread_update_delete_history(self):
        status, created, headers = self.call("POST", "ServiceRequest", service_request("ORD-CRUD"))
        self.assertEqual(status, 201)
        rid = created["id"]
        self.assertEqual(created["meta"]["versionId"], "1")
        self.assertEqual(headers["etag"], 'W/"1"')
        self.assertTrue(headers["location"].endswith(f"/fhir/ServiceRequest/{rid}/_history/1"), headers)
        self.assertIn("last-modified", headers)

        status, read, headers = self.call("GET", f"ServiceRequest/{rid}")
        self.assertEqual((status, read), (200, created))
        read["status"] = "on-hold"
        status, updated, headers = self.call("PUT", f"ServiceRequest/{rid}", read, {"If-Match": 'W/"1"'})
        self.assertEqual((status, updated["meta"]["versionId"], headers["etag"]), (200, "2", 'W/"2"'))
        # A second writer that still has version 1 is refused, and nothing changes.
        status, outcome, _ = self.call("PUT", f"ServiceRequest/{rid}", read, {"If-Match": 'W/"1"'})
        self.assertEqual((status, outcome["resourceType"]), (412, "OperationOutcome"))
        self.assertIn("the current version is 2", outcome["issue"][0]["diagnostics"])
        status, first, _ = self.call("GET", f"ServiceRequest/{rid}/_history/1")
        self.assertEqual((status, first["status"]), (200, "active"))

        status, _, headers = self.call("DELETE", f"ServiceRequest/{rid}")
        self.assertEqual((status, headers["etag"]), (204, 'W/"3"'))
        self.assertEqual(self.call("GET", f"ServiceRequest/{rid}")[0], 410)
        self.assertEqual(self.call("DELETE", f"ServiceRequest/{rid}")[0], 204)  # idempotent
        status, history, _ = self.call("GET", f"ServiceRequest/{rid}/_history")
        self.assertEqual((status, history["type"], history["total"]), (200, "history", 3))
        self.assertEqual([e["request"]["method"] for e in history["entry"]], ["DELETE", "PUT", "POST"])
        self.assertNotIn(rid, self.ids(self.search("ServiceRequest?identifier=urn:oid:1.2.3|ORD-CRUD")))

    def test_update_as_create_and_xml(self):
        resource = service_request("ORD-PUT")
        resource["id"] = "client-chosen-1"
        status, body, headers = self.call("PUT", "ServiceRequest/client-chosen-1", resource)
        self.assertEqual((status, body["id"], headers["etag"]), (201, "client-chosen-1", 'W/"1"'))
        status, xml, headers = self.call("GET", "ServiceRequest/client-chosen-1?_format=xml")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("application/fhir+xml"))
        self.assertIn(b'<id value="client-chosen-1"/>', xml)

    def test_conditional_create_and_update(self):
        headers = {"If-None-Exist": "identifier=urn:oid:1.2.3|ORD-COND"}
        status, first, _ = self.call("POST", "ServiceRequest", service_request("ORD-COND"), headers)
        self.assertEqual(status, 201)
        status, again, _ = self.call("POST", "ServiceRequest", service_request("ORD-COND"), headers)
        self.assertEqual((status, again["id"], again["meta"]["versionId"]), (200, first["id"], "1"))

        # Conditional update: no match creates, one match updates that one.
        query = "ServiceRequest?identifier=" + urllib.parse.quote("urn:oid:1.2.3|ORD-UPSERT")
        status, created, _ = self.call("PUT", query, service_request("ORD-UPSERT"))
        self.assertEqual(status, 201)
        status, updated, _ = self.call("PUT", query, dict(service_request("ORD-UPSERT", status="completed"),
                                                          id=created["id"]))
        self.assertEqual((status, updated["id"], updated["meta"]["versionId"]), (200, created["id"], "2"))
        self.create(service_request("ORD-TWICE"))
        self.create(service_request("ORD-TWICE"))
        status, outcome, _ = self.call("POST", "ServiceRequest", service_request("ORD-TWICE"),
                                       {"If-None-Exist": "identifier=urn:oid:1.2.3|ORD-TWICE"})
        self.assertEqual((status, outcome["issue"][0]["code"]), (412, "multiple-matches"))
        status, outcome, _ = self.call("POST", "ServiceRequest", service_request("ORD-X"),
                                       {"If-None-Exist": "nonsense=1"})
        self.assertEqual(status, 400)

    def test_conditional_updates_at_once_write_one_resource(self):
        # Ten clients upsert the same new order at the same moment: one
        # creates it and the rest update it; none makes a second.
        from concurrent.futures import ThreadPoolExecutor
        query = "ServiceRequest?identifier=" + urllib.parse.quote("urn:oid:1.2.3|ORD-RACE")
        with ThreadPoolExecutor(10) as pool:
            statuses = list(pool.map(lambda _: self.call("PUT", query, service_request("ORD-RACE"))[0], range(10)))
        self.assertEqual(sorted(set(statuses)), [200, 201], statuses)
        self.assertEqual(statuses.count(201), 1, statuses)
        self.assertEqual(self.search("ServiceRequest?identifier=ORD-RACE")["total"], 1)
        # A value with a comma is one value when escaped, as FHIR escapes it.
        escaped = "ServiceRequest?identifier=" + urllib.parse.quote("urn:oid:1.2.3|ORD\\,77")
        for expected in (201, 200):
            self.assertEqual(self.call("PUT", escaped, service_request("ORD,77"))[0], expected)
        self.assertEqual(self.search(escaped)["total"], 1)
        # The same in transactions: one creates; any other that searched
        # before that create was written fails whole (409, to send again)
        # instead of making a second.
        transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [{
            "fullUrl": "urn:uuid:0f5c7d5e-56a3-4d8b-9f0b-2b9f6a1c0001",
            "resource": service_request("ORD-RACE-T"),
            "request": {"method": "PUT", "url": "ServiceRequest?identifier=urn:oid:1.2.3|ORD-RACE-T"}}]}
        with ThreadPoolExecutor(10) as pool:
            statuses = list(pool.map(lambda _: self.call("POST", "", transaction)[0], range(10)))
        self.assertEqual(set(statuses) - {200, 409}, set(), statuses)
        self.assertEqual(self.search("ServiceRequest?identifier=ORD-RACE-T")["total"], 1)

    # ---- search ----------------------------------------------------------

    def test_search_by_the_parameters_workflows_use(self):
        mine = [self.create(service_request("ORD-S1", performer="Organization/lab-s")),
                self.create(service_request("ORD-S2", performer="Organization/lab-s", status="completed")),
                self.create(service_request("ORD-S3", performer="Organization/lab-s", tag=False))]
        self.create(service_request("ORD-S4", performer="Organization/other-lab"))
        ids = [r["id"] for r in mine]
        actionable = urllib.parse.quote(ACTIONABLE["system"] + "|" + ACTIONABLE["code"])
        found = self.search(f"ServiceRequest?_tag={actionable}&performer=Organization/lab-s&status=active")
        self.assertEqual((found["type"], found["total"], self.ids(found)), ("searchset", 1, [ids[0]]))
        self.assertEqual(self.ids(self.search("ServiceRequest?performer=lab-s")), sorted(ids))  # bare id
        self.assertEqual(self.ids(self.search("ServiceRequest?performer:Organization=lab-s&status=completed")),
                         [ids[1]])
        self.assertEqual(self.ids(self.search("ServiceRequest?identifier=ORD-S3")), [ids[2]])
        self.assertEqual(self.ids(self.search(f"ServiceRequest?_id={ids[0]},{ids[2]}")), sorted([ids[0], ids[2]]))
        self.assertEqual(self.search("ServiceRequest?code=http://loinc.org|24323-8&identifier=ORD-S2")["total"], 1)
        self.assertEqual(self.search("ServiceRequest?status=active,completed&performer=lab-s")["total"], 3)
        absolute = urllib.parse.quote("http://elsewhere.example/fhir/Organization/lab-s")
        self.assertEqual(self.ids(self.search(f"ServiceRequest?performer={absolute}")), sorted(ids))
        # POST _search with a form body, as some clients prefer.
        status, body, _ = self.call("POST", "ServiceRequest/_search", "identifier=ORD-S1&performer=lab-s",
                                    content_type="application/x-www-form-urlencoded")
        self.assertEqual((status, self.ids(body)), (200, [ids[0]]))
        # A FHIR body is no search: refused, not read as "everything".
        status, body, _ = self.call("POST", "ServiceRequest/_search", {"resourceType": "Parameters"})
        self.assertEqual(status, 415, body)
        # An update keeps the index to the new version: the old performer no
        # longer finds it, the new one does, the unchanged status still does.
        moved = dict(mine[0], performer=[{"reference": "Organization/lab-moved"}])
        status, _, _ = self.call("PUT", f"ServiceRequest/{ids[0]}", json.dumps(moved))
        self.assertEqual(status, 200)
        self.assertEqual(self.ids(self.search("ServiceRequest?performer=lab-s")), sorted(ids[1:]))
        self.assertEqual(self.ids(self.search("ServiceRequest?performer=Organization/lab-moved&status=active")),
                         [ids[0]])

    def test_paging_follows_next_links(self):
        for n in range(5):
            self.create(service_request(f"ORD-PAGE-{n}", performer="Organization/pager"))
        seen = []
        page = self.search("ServiceRequest?performer=pager&_count=2")
        self.assertEqual(page["total"], 5)
        while True:
            seen += [e["resource"]["identifier"][0]["value"] for e in page.get("entry", [])]
            following = [link["url"] for link in page["link"] if link["relation"] == "next"]
            if not following:
                break
            page = self.search(following[0].split("/fhir/", 1)[1])
        self.assertEqual(seen, [f"ORD-PAGE-{n}" for n in range(5)])  # oldest change first, none twice

    def test_broad_searches_page_without_counting_everything(self):
        # 2,100 orders for one performer (too many to list: a broad search),
        # every other one active (few enough: that criterion drives).
        entries = [{"resource": service_request(f"ORD-BROAD-{n}", status="active" if n % 2 else "completed",
                                                performer="Organization/broad"),
                    "request": {"method": "POST", "url": "ServiceRequest"}} for n in range(2100)]
        status, _, _ = self.call("POST", "", {"resourceType": "Bundle", "type": "transaction", "entry": entries})
        self.assertEqual(status, 200)
        page = self.search("ServiceRequest?performer=broad&_count=50")
        self.assertFalse("total" in page, "a broad search is not counted unless asked")
        self.assertEqual(len(page["entry"]), 50)
        self.assertIn("next", [link["relation"] for link in page["link"]])
        self.assertEqual(self.search("ServiceRequest?performer=broad&_total=accurate&_count=1")["total"], 2100)
        self.assertEqual(self.search("ServiceRequest?performer=broad&_count=0")["total"], 2100)
        self.assertFalse("total" in self.search("ServiceRequest?performer=broad&_total=none&_count=1"))
        # With no search parameter at all, a type with few resources is counted; a large one is not.
        self.assertIn("total", self.search("Patient?_count=1"))
        self.assertFalse("total" in self.search("ServiceRequest?_count=1"))

        active = self.search("ServiceRequest?performer=broad&status=active&_count=50")
        self.assertFalse("total" in active, "two criteria: counting means checking every match")
        self.assertEqual(self.search("ServiceRequest?status=active&performer=broad&_total=accurate")["total"], 1050)
        self.assertTrue(all(e["resource"]["status"] == "active" for e in active["entry"]))
        self.assertEqual([e["resource"]["identifier"][0]["value"] for e in active["entry"][:2]],
                         ["ORD-BROAD-1", "ORD-BROAD-3"])  # oldest change first
        last = self.search("ServiceRequest?performer=broad&status=active&_count=50&_offset=1000")
        self.assertEqual((len(last["entry"]), [link["relation"] for link in last["link"]]), (50, ["self"]))

    def test_polling_by_last_updated_misses_nothing(self):
        start = self.search("ServiceRequest?performer=poller&_count=0")
        self.assertEqual(start["total"], 0)
        first = self.create(service_request("ORD-P1", performer="Organization/poller"))
        since = first["meta"]["lastUpdated"]
        time.sleep(0.01)
        second = self.create(service_request("ORD-P2", performer="Organization/poller"))
        newer = self.search("ServiceRequest?performer=poller&_lastUpdated=" + urllib.parse.quote("gt" + since))
        self.assertEqual(self.ids(newer), [second["id"]])
        self.assertEqual(len(self.ids(self.search("ServiceRequest?performer=poller&_lastUpdated=ge2020-01-01"))), 2)
        # eq (or no prefix) names the whole day, second or millisecond written.
        day, second = since[:10], since[:19] + since[23:]
        for value in (day, "eq" + day, "eq" + since):
            found = self.search("ServiceRequest?performer=poller&_lastUpdated=" + urllib.parse.quote(value))
            self.assertIn(first["id"], self.ids(found), value)
        self.assertEqual(self.search("ServiceRequest?performer=poller&_lastUpdated=eq2020-01-01")["total"], 0)
        self.assertIn(first["id"], self.ids(self.search(
            "ServiceRequest?performer=poller&_lastUpdated=" + urllib.parse.quote(second))))
        status, outcome, _ = self.call("GET", "ServiceRequest?_lastUpdated=gtyesterday")
        self.assertEqual((status, outcome["resourceType"]), (400, "OperationOutcome"))

    def test_unknown_parameters_follow_the_handling_preference(self):
        self.create(service_request("ORD-H", performer="Organization/handling"))
        lenient = self.search("ServiceRequest?performer=handling&colour=blue")
        self.assertEqual(lenient["total"], 1)
        self_link = [link["url"] for link in lenient["link"] if link["relation"] == "self"][0]
        self.assertNotIn("colour", self_link)
        self.assertIn("performer=handling", self_link)
        status, outcome, _ = self.call("GET", "ServiceRequest?performer=handling&colour=blue",
                                       headers={"Prefer": "handling=strict"})
        self.assertEqual(status, 400)
        self.assertEqual(outcome["issue"][0]["diagnostics"],
                         "colour is not a search parameter courier supports for ServiceRequest")
        status, _, _ = self.call("GET", "ServiceRequest?status:not=active", headers={"Prefer": "handling=strict"})
        self.assertEqual(status, 400)

    # ---- batch and transaction -------------------------------------------------

    def transaction(self, entries, kind="transaction"):
        return self.call("POST", "", {"resourceType": "Bundle", "type": kind, "entry": entries})

    def test_transaction_rewrites_references_and_is_all_or_nothing(self):
        patient = {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "TX-1"}]}
        order = dict(service_request("ORD-TX"), subject={"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"})
        status, answer, _ = self.transaction([
            {"fullUrl": "urn:uuid:22222222-2222-4222-8222-222222222222", "resource": order,
             "request": {"method": "POST", "url": "ServiceRequest"}},
            {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111", "resource": patient,
             "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:mrn|TX-1"}},
        ])
        self.assertEqual((status, answer["type"]), (200, "transaction-response"), answer)
        self.assertEqual([e["response"]["status"] for e in answer["entry"]], ["201 Created", "201 Created"])
        patient_id = answer["entry"][1]["response"]["location"].split("/Patient/")[1].split("/")[0]
        stored = self.search("ServiceRequest?identifier=ORD-TX")["entry"][0]["resource"]
        self.assertEqual(stored["subject"]["reference"], "Patient/" + patient_id)
        self.assertEqual(self.search(f"ServiceRequest?subject=Patient/{patient_id}")["total"], 1)

        # The same patient again: the conditional create finds it, and the new
        # order points at the one that exists.
        order2 = dict(service_request("ORD-TX2"), subject={"reference": "urn:uuid:33333333-3333-4333-8333-333333333333"})
        status, answer, _ = self.transaction([
            {"fullUrl": "urn:uuid:33333333-3333-4333-8333-333333333333", "resource": patient,
             "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:mrn|TX-1"}},
            {"resource": order2, "request": {"method": "POST", "url": "ServiceRequest"}},
        ])
        self.assertEqual([e["response"]["status"] for e in answer["entry"]], ["200 OK", "201 Created"])
        self.assertEqual(self.search("ServiceRequest?identifier=ORD-TX2")["entry"][0]["resource"]["subject"],
                         {"reference": "Patient/" + patient_id})

        # One resource written twice: FHIR says the transaction fails.
        twice = {"resourceType": "Patient", "id": "dup1"}
        status, outcome, _ = self.transaction([
            {"resource": twice, "request": {"method": "PUT", "url": "Patient/dup1"}},
            {"resource": dict(twice, active=True), "request": {"method": "PUT", "url": "Patient/dup1"}}])
        self.assertEqual(status, 400, outcome)
        self.assertIn("writes Patient/dup1, as entry 0 does", outcome["issue"][0]["diagnostics"])
        self.assertEqual(self.call("GET", "Patient/dup1")[0], 404)

        # A dangling urn, or a version conflict in a later entry: nothing is written.
        before = self.search("ServiceRequest?_count=0")["total"]
        dangling = dict(service_request("ORD-TX3"), subject={"reference": "urn:uuid:44444444-4444-4444-8444-444444444444"})
        status, outcome, _ = self.transaction([{"resource": dangling, "request": {"method": "POST", "url": "ServiceRequest"}}])
        self.assertEqual(status, 400)
        self.assertIn("names no entry", outcome["issue"][0]["diagnostics"])
        stale = dict(stored, status="revoked")
        status, outcome, _ = self.transaction([
            {"resource": service_request("ORD-TX4"), "request": {"method": "POST", "url": "ServiceRequest"}},
            {"resource": stale, "request": {"method": "PUT", "url": "ServiceRequest/" + stored["id"], "ifMatch": 'W/"7"'}},
        ])
        self.assertEqual(status, 412, outcome)
        status, outcome, _ = self.transaction([
            {"resource": stale, "request": {"method": "PUT", "url": "ServiceRequest/someone-else"}}])
        self.assertEqual(status, 400, outcome)
        self.assertIn("is not its url's", outcome["issue"][0]["diagnostics"])
        self.assertEqual(self.search("ServiceRequest?_count=0")["total"], before)
        self.assertEqual(self.search("ServiceRequest?identifier=ORD-TX4")["total"], 0)

    def test_batch_entries_stand_alone(self):
        status, answer, _ = self.transaction([
            {"resource": service_request("ORD-B1"), "request": {"method": "POST", "url": "ServiceRequest"}},
            {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "ServiceRequest"}},
            {"request": {"method": "GET", "url": "ServiceRequest/does-not-exist"}},
        ], kind="batch")
        self.assertEqual((status, answer["type"]), (200, "batch-response"), answer)
        self.assertEqual([e["response"]["status"] for e in answer["entry"]],
                         ["201 Created", "400 Bad Request", "404 Not Found"])
        self.assertEqual(answer["entry"][1]["response"]["outcome"]["resourceType"], "OperationOutcome")
        self.assertEqual(self.search("ServiceRequest?identifier=ORD-B1")["total"], 1)
        status, _, _ = self.call("POST", "", {"resourceType": "Bundle", "type": "collection"})
        self.assertEqual(status, 400)

    # ---- bad input ---------------------------------------------------------

    def test_bad_requests_get_an_outcome_and_write_nothing(self):
        count = lambda: self.search("ServiceRequest?identifier=ORD-BAD&_count=0")["total"]
        cases = [
            ("POST", "ServiceRequest", "{not json", 400),
            ("POST", "ServiceRequest", {"resourceType": "Patient"}, 400),                 # wrong type for the URL
            ("POST", "ServiceRequest", {k: v for k, v in service_request("ORD-BAD").items() if k != "intent"},
             400),                                                                            # intent is 1..1
            ("POST", "ServiceRequest", dict(service_request("ORD-BAD"), colour="blue"), 400),      # unknown element
            ("PUT", "ServiceRequest/abc", dict(service_request("ORD-BAD"), id="xyz"), 400),        # id mismatch
            ("PUT", "ServiceRequest/abc", service_request("ORD-BAD"), 400),                        # no id
            ("POST", "NoSuchType", {"resourceType": "NoSuchType"}, 404),
            ("GET", "ServiceRequest/does-not-exist", None, 404),
            ("PATCH", "ServiceRequest/abc", "{}", 405),
            ("POST", "ServiceRequest", "", 400),                                                   # no body at all
            ("GET", "ServiceRequest/_history", None, 405),                                     # only a resource's
        ]
        for method, path, body, expected in cases:
            status, outcome, _ = self.call(method, path, body)
            self.assertEqual(status, expected, (method, path, outcome))
            self.assertEqual(outcome["resourceType"], "OperationOutcome", (method, path))
        status, _, _ = self.call("POST", "ServiceRequest", service_request("ORD-BAD"),
                                 content_type="text/plain")
        self.assertEqual(status, 415)
        self.assertEqual(count(), 0)

    # ---- a client others wrote -----------------------------------------------

    def test_fhir_kit_client(self):
        run = os.path.join(ROOT, "tests", "interop", "run_node_check.sh")
        r = subprocess.run([run, "fhirkit_rest.js", f"http://127.0.0.1:{self.engine.port}/fhir"],
                           capture_output=True, timeout=120)
        if r.returncode == 77:
            self.skipTest("npm could not install fhir-kit-client")
        self.assertEqual(r.returncode, 0, r.stderr)
        seen = json.loads(r.stdout)
        self.assertEqual(seen["created"]["version"], "1")
        self.assertEqual(seen["read"], "Lovelace")
        self.assertEqual(seen["updated"], {"version": "2", "birthDate": "1815-12-10"})
        self.assertEqual(seen["found"], {"total": 1, "ids": [seen["created"]["id"]]})
        self.assertEqual(seen["history"], ["2", "1"])
        self.assertEqual(seen["gone"], 410)


if __name__ == "__main__":
    unittest.main(verbosity=1)
