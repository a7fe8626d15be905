#!/usr/bin/env python3
"""Messages bridged to FHIR REST, end to end on loopback: a placer (this test,
and a Peer that receives its asynchronous responses), courier, and a filler's
FHIR server (a second courier, through its embedded store).

- Option A (`rest`): the message's resources written to a FHIR base.
- Option B (`request`): the request POSTed to the filler's FHIR base; the
  filler reports back by writing event resources to courier's FHIR base.
- Option C (`queue`): the request written to courier's own store for the
  filler to poll; the filler reports back the same way."""
import json
import os
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import EVENT_SYSTEM, Courier, Peer, call, free_port, header_of, response_to, wait_for  # noqa: E402

ACTIONABLE = "http://terminology.hl7.org/CodeSystem/common-tags|actionable"
ORDERS = "urn:oid:1.2.3.4"

ROUTES = """
- route: results-to-ehr
  when: {{event: {system}|record-order}}
  to:
    - name: ehr
      pattern: rest
      endpoint: {filler}
      interaction: upsert
      retry: {{attempts: 1}}
- route: admission-to-store
  when: {{event: {system}|record-admission}}
  to:
    - name: store
      pattern: rest
      interaction: transaction
- route: to-nowhere
  when: {{event: {system}|record-lost}}
  to:
    - name: gone
      pattern: rest
      endpoint: http://127.0.0.1:{closed}/fhir
      retry: {{attempts: 2, backoff: 50ms..50ms}}
      on-exhausted: fail
- route: lab-by-rest
  when: {{event: {system}|order-b}}
  to:
    - name: lab
      pattern: request
      endpoint: {filler}
- route: lab-queue
  when: {{event: {system}|order-c}}
  to:
    - name: queue
      pattern: queue
- route: lab-messaging
  when: {{event: {system}|order-d}}
  to:
    - name: lis
      pattern: messaging
      endpoint: {messaging_filler}
- route: orders-by-rest
  trigger:
    on: ServiceRequest?_tag={actionable}
    event: {system}|order-t
  to:
    - name: lis
      pattern: messaging
      endpoint: {messaging_filler}
- route: validate-code
  when: {{event: "urn:ietf:rfc:3986|http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code"}}
  to:
    - name: terminology
      pattern: operation
      endpoint: {terminology}
      operation: $validate-code
      target: ValueSet
- route: order-status
  when: {{event: {system}|order-status}}
  to:
    - name: status
      pattern: status
- route: lab-down
  when: {{event: {system}|order-down}}
  to:
    - name: lis
      pattern: messaging
      endpoint: http://127.0.0.1:{closed}/fhir
      retry: {{attempts: 5, backoff: 30s..30s}}
"""

FILLER_ROUTES = """
route: unused
when: {event: never-sent}
to:
  - name: out
    pattern: file
    folder: /nonexistent
"""


def order_message(event, order, placer, extra_entries=(), focus_patient=False, performer=None):
    """A message whose focus is a ServiceRequest with business identifier `order`."""
    header_id, request_id, patient_id = (str(uuid.uuid4()) for _ in range(3))
    request = {"resourceType": "ServiceRequest", "id": request_id, "status": "active", "intent": "order",
               "identifier": [{"system": ORDERS, "value": order}],
               "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8"}]},
               "subject": {"reference": "urn:uuid:" + patient_id}}
    if performer:
        request["performer"] = [{"reference": performer}]
    patient = {"resourceType": "Patient", "id": patient_id,
               "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "MRN-" + order}]}
    focus = [{"reference": "urn:uuid:" + request_id}]
    if focus_patient:
        focus.append({"reference": "urn:uuid:" + patient_id})
    return {
        "resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "message",
        "entry": [
            {"fullUrl": "urn:uuid:" + header_id, "resource": {
                "resourceType": "MessageHeader", "id": header_id,
                "eventCoding": {"system": EVENT_SYSTEM, "code": event},
                "source": {"endpoint": placer}, "focus": focus}},
            {"fullUrl": "urn:uuid:" + request_id, "resource": request},
            {"fullUrl": "urn:uuid:" + patient_id, "resource": patient},
        ] + list(extra_entries),
    }


def report(status, based_on, code="24323-8"):
    return {"resourceType": "DiagnosticReport", "status": status, "basedOn": [based_on],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}}


def response_header(bundle):
    return header_of(bundle)["response"]


def focus_resources(bundle):
    urls = [f["reference"] for f in header_of(bundle).get("focus", [])]
    return [e["resource"] for e in bundle["entry"] if e.get("fullUrl") in urls]


class BridgeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        filler_dir = os.path.join(cls.tmp.name, "filler")
        engine_dir = os.path.join(cls.tmp.name, "courier")
        os.makedirs(filler_dir)
        os.makedirs(engine_dir)
        cls.filler = Courier(filler_dir, FILLER_ROUTES)
        cls.placer = Peer(lambda bundle, query: (200, None))
        cls.messaging_filler = Peer(cls.lis)
        cls.terminology = Peer(cls.validate_code)
        cls.engine = Courier(engine_dir, ROUTES.format(system=EVENT_SYSTEM, filler=cls.filler_base(),
                                                       messaging_filler=cls.messaging_filler.base,
                                                       actionable=ACTIONABLE, terminology=cls.terminology.base,
                                                       closed=free_port()),
                             extra_config="notification-retry: {attempts: 2, backoff: 50ms..50ms}\n")

    @staticmethod
    def lis(bundle, query):
        """A messaging filler: takes orders, and cancellations of orders other than "D-KEEP"."""
        request = bundle["entry"][1]["resource"]
        refuse = request["status"] == "revoked" and request["identifier"][0]["value"] == "D-KEEP"
        return 200, response_to(bundle, "fatal-error" if refuse else "ok")

    @staticmethod
    def validate_code(parameters, query):
        """A terminology server's $validate-code: knows LOINC 24323-8 only; refuses a call without a code."""
        given = {p["name"]: p for p in parameters.get("parameter", [])}
        if "code" not in given:
            return 400, {"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "required", "diagnostics": "$validate-code needs a code"}]}
        known = given["code"].get("valueCode") == "24323-8"
        return 200, {"resourceType": "Parameters", "parameter": [{"name": "result", "valueBoolean": known}]}

    @classmethod
    def filler_base(cls):
        return f"http://127.0.0.1:{cls.filler.port}/fhir"

    @classmethod
    def tearDownClass(cls):
        cls.engine.stop()
        cls.filler.stop()
        cls.placer.close()
        cls.messaging_filler.close()
        cls.terminology.close()
        cls.tmp.cleanup()

    def send(self, bundle, query=""):
        status, body = self.engine.process_message(bundle, query)
        return status, (json.loads(body) if body else None)

    def placer_got(self, request, count):
        """The placer's inbox, for responses to `request`, once it has `count`."""
        header_id = header_of(request)["id"]

        def answers():
            got = [m for m in self.placer.messages()
                   if header_of(m).get("response", {}).get("identifier") == header_id]
            return got if len(got) >= count else None
        return wait_for(answers, what=f"{count} responses at the placer")

    def conversation_of(self, request):
        header_id = header_of(request)["id"]
        for c in self.engine.conversations(limit=200):
            if c["messageHeaderId"] == header_id:
                return self.engine.conversation(c["id"])
        raise AssertionError("no conversation for " + header_id)

    def wait_state(self, request, state):
        return wait_for(lambda: self.conversation_of(request)["state"] == state and self.conversation_of(request),
                        what="conversation state " + state)

    def task_of(self, message):
        """The Task that answers "what is the status of this order", found as a placer would."""
        request_id = message["entry"][1]["resource"]["id"]
        # Other Tasks may focus on the request too (one asking to cancel it).
        tasks = [t for t in self.search(self.engine.port, "Task?focus=ServiceRequest/" + request_id)
                 if t["id"].startswith("conversation-")]
        self.assertEqual(len(tasks), 1, tasks)
        order = message["entry"][1]["resource"]["identifier"][0]
        by_identifier = self.search(self.engine.port, "Task?identifier=" +
                                    urllib.parse.quote(order["system"] + "|" + order["value"]))
        self.assertIn(tasks[0]["id"], [t["id"] for t in by_identifier])
        return tasks[0]

    def search(self, port, query):
        status, bundle, _ = call(port, "GET", query)
        self.assertEqual(status, 200, bundle)
        return [e["resource"] for e in bundle.get("entry", [])]

    # ---- Option A ---------------------------------------------------------

    def test_option_a_upserts_by_identifier_at_the_filler(self):
        placer = self.placer.base
        first = order_message("record-order", "A-1", placer)
        status, answer = self.send(first)
        self.assertEqual((status, response_header(answer)["code"]), (200, "ok"), answer)
        stored = self.search(self.filler.port, "ServiceRequest?identifier=" + urllib.parse.quote(ORDERS + "|A-1"))
        self.assertEqual(len(stored), 1)
        self.assertNotEqual(stored[0]["id"], first["entry"][1]["resource"]["id"])  # the server's id

        # The same order again, changed: the same resource, a new version.
        second = order_message("record-order", "A-1", placer)
        second["entry"][1]["resource"]["status"] = "completed"
        status, answer = self.send(second)
        self.assertEqual((status, response_header(answer)["code"]), (200, "ok"), answer)
        again = self.search(self.filler.port, "ServiceRequest?identifier=" + urllib.parse.quote(ORDERS + "|A-1"))
        self.assertEqual([(r["id"], r["meta"]["versionId"], r["status"]) for r in again],
                         [(stored[0]["id"], "2", "completed")])
        self.assertEqual(self.wait_state(second, "completed")["state"], "completed")

    def test_option_a_refusal_is_a_fatal_error_with_the_servers_outcome(self):
        # Two resources with the same identifier at the filler: its
        # conditional update refuses to choose (412).
        for _ in range(2):
            resource = order_message("x", "A-TWICE", "")["entry"][1]["resource"]
            resource["subject"] = {"reference": "Patient/p1"}
            status, body, _ = call(self.filler.port, "POST", "ServiceRequest", resource)
            self.assertEqual(status, 201, body)
        message = order_message("record-order", "A-TWICE", self.placer.base)
        status, answer = self.send(message)
        self.assertEqual((status, response_header(answer)["code"]), (200, "fatal-error"), answer)
        outcome = [e["resource"] for e in answer["entry"] if e["resource"]["resourceType"] == "OperationOutcome"][0]
        texts = " ".join(i.get("diagnostics", "") for i in outcome["issue"])
        self.assertIn("HTTP 412", texts)
        self.assertIn("its condition matches more than one", texts)  # the server's own words
        self.assertEqual(self.wait_state(message, "rejected")["state"], "rejected")

    def test_option_a_transaction_to_courier_own_store_rewrites_references(self):
        message = order_message("record-admission", "A-TX", self.placer.base)
        status, answer = self.send(message)
        self.assertEqual((status, response_header(answer)["code"]), (200, "ok"), answer)
        requests = self.search(self.engine.port, "ServiceRequest?identifier=" + urllib.parse.quote(ORDERS + "|A-TX"))
        patients = self.search(self.engine.port, "Patient?identifier=" +
                               urllib.parse.quote("urn:oid:1.2.36.146.595.217.0.1|MRN-A-TX"))
        self.assertEqual((len(requests), len(patients)), (1, 1))
        self.assertEqual(requests[0]["subject"]["reference"], "Patient/" + patients[0]["id"])

    def test_the_task_is_based_on_the_request_not_everything_in_focus(self):
        message = order_message("record-admission", "A-TASK", self.placer.base, focus_patient=True)
        header_of(message)["focus"].reverse()  # the Patient first, the ServiceRequest after it
        status, answer = self.send(message)
        self.assertEqual((status, response_header(answer)["code"]), (200, "ok"), answer)
        task = wait_for(lambda: (t := self.task_of(message))["status"] == "completed" and t, what="Task completed")
        request_id = message["entry"][1]["resource"]["id"]
        self.assertEqual(task["focus"], {"reference": "ServiceRequest/" + request_id})
        self.assertEqual(task["basedOn"], [{"reference": "ServiceRequest/" + request_id}])
        identifiers = {(i.get("system"), i["value"]) for i in task["identifier"]}
        self.assertIn((ORDERS, "A-TASK"), identifiers)
        self.assertNotIn(("urn:oid:1.2.36.146.595.217.0.1", "MRN-A-TASK"), identifiers)  # the Patient's

    def test_option_a_unreachable_server_is_a_transient_error_after_retries(self):
        message = order_message("record-lost", "A-LOST", self.placer.base)
        status, answer = self.send(message)
        self.assertEqual((status, response_header(answer)["code"]), (200, "transient-error"), answer)
        conversation = self.wait_state(message, "failed")
        attempts = [e for e in conversation["timeline"] if e["kind"] == "attempt"]
        self.assertEqual(len(attempts), 1, conversation["timeline"])  # one retry noted, then given up
        self.assertEqual([d["state"] for d in conversation["deliveries"]], ["failed"])

    # ---- Option B ---------------------------------------------------------

    def test_option_b_request_at_the_filler_and_its_reports_relayed(self):
        message = order_message("order-b", "B-1", self.placer.base)
        status, ack = self.send(message)
        self.assertEqual((status, response_header(ack)["code"]), (200, "ok"), ack)
        # The filler's server has the request, tagged actionable.
        found = self.search(self.filler.port, "ServiceRequest?_tag=" + urllib.parse.quote(ACTIONABLE) +
                            "&identifier=" + urllib.parse.quote(ORDERS + "|B-1"))
        self.assertEqual(len(found), 1)
        request_url = self.filler_base() + "/ServiceRequest/" + found[0]["id"]
        # The state is written just after the answer, with the next commit.
        self.wait_state(message, "accepted")
        task = wait_for(lambda: (t := self.task_of(message))["status"] == "accepted" and t, what="Task accepted")
        self.assertEqual(task["basedOn"], [{"reference": "ServiceRequest/" + message["entry"][1]["resource"]["id"]}])
        self.assertEqual(task["code"]["coding"][0]["code"], "order-b")

        # The filler reports on it at courier's FHIR base, naming the request by its URL.
        status, preliminary, _ = call(self.engine.port, "POST", "DiagnosticReport",
                                      report("preliminary", {"reference": request_url}))
        self.assertEqual(status, 201)
        relayed = self.placer_got(message, 1)
        self.assertEqual(response_header(relayed[0])["code"], "ok")
        self.assertEqual([r["status"] for r in focus_resources(relayed[0])], ["preliminary"])
        self.assertEqual(self.wait_state(message, "in-progress")["state"], "in-progress")

        # The final report, naming the request by its identifier this time.
        final = report("final", {"identifier": {"system": ORDERS, "value": "B-1"}})
        self.assertEqual(call(self.engine.port, "POST", "DiagnosticReport", final)[0], 201)
        relayed = self.placer_got(message, 2)
        self.assertEqual([focus_resources(m)[0]["status"] for m in relayed], ["preliminary", "final"])
        self.assertEqual(self.wait_state(message, "completed")["state"], "completed")
        task = wait_for(lambda: (t := self.task_of(message))["status"] == "completed" and t, what="Task completed")
        reports = [o["valueReference"]["reference"] for o in task["output"]]
        self.assertEqual(len(reports), 2)
        self.assertTrue(all(r.startswith("DiagnosticReport/") for r in reports), reports)
        self.assertIn("(final)", task["businessStatus"]["text"])

        # A late report is relayed, but a finished request stays finished,
        # and its placer can no longer cancel it.
        late = report("cancelled", {"identifier": {"system": ORDERS, "value": "B-1"}})
        self.assertEqual(call(self.engine.port, "POST", "DiagnosticReport", late)[0], 201)
        self.placer_got(message, 3)
        task = wait_for(lambda: len((t := self.task_of(message))["output"]) == 3 and t, what="the late report")
        self.assertEqual(task["status"], "completed")
        task["status"] = "cancelled"
        status, outcome, _ = call(self.engine.port, "PUT", "Task/" + task["id"], task)
        self.assertEqual(status, 422, outcome)
        self.assertIn("completed already", outcome["issue"][0]["diagnostics"])

    # ---- Option C ---------------------------------------------------------

    def test_option_c_queue_polled_by_the_filler(self):
        since = self.search(self.engine.port, "ServiceRequest?_count=1")  # warm up
        del since
        poll_from = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
        message = order_message("order-c", "C-1", self.placer.base)
        status, body = self.send(message, "?async=true")
        self.assertEqual((status, body), (202, None))
        ack = self.placer_got(message, 1)[0]
        self.assertEqual(response_header(ack)["code"], "ok")

        # The filler polls the queue for actionable requests.
        queued = self.search(self.engine.port, "ServiceRequest?_tag=" + urllib.parse.quote(ACTIONABLE) +
                             "&_lastUpdated=gt" + poll_from + "&identifier=" + urllib.parse.quote(ORDERS + "|C-1"))
        self.assertEqual(len(queued), 1)
        reference = "ServiceRequest/" + queued[0]["id"]
        # Its subject is the patient the message carried, stored with it.
        subject = queued[0]["subject"]["reference"]
        self.assertTrue(subject.startswith("Patient/"), subject)
        status, patient, _ = call(self.engine.port, "GET", subject)
        self.assertEqual((status, patient["identifier"]), (200, message["entry"][2]["resource"]["identifier"]))

        self.assertEqual(call(self.engine.port, "POST", "DiagnosticReport",
                              report("final", {"reference": reference}))[0], 201)
        relayed = self.placer_got(message, 2)
        self.assertEqual(focus_resources(relayed[1])[0]["basedOn"], [{"reference": reference}])
        self.assertEqual(self.wait_state(message, "completed")["state"], "completed")

    # ---- Option C with subscriptions -----------------------------------------

    def subscribe(self, endpoint, criteria, payload="application/fhir+json", headers=()):
        subscription = {"resourceType": "Subscription", "status": "requested", "reason": "work for the lab",
                        "criteria": criteria,
                        "channel": {"type": "rest-hook", "endpoint": endpoint}}
        if headers:
            subscription["channel"]["header"] = list(headers)
        if payload:
            subscription["channel"]["payload"] = payload
        status, body, _ = call(self.engine.port, "POST", "Subscription", subscription)
        self.assertEqual(status, 201, body)
        wait_for(lambda: self.subscription(body["id"])["status"] == "active", what="an active subscription")
        return body["id"]

    def subscription(self, subscription_id):
        return call(self.engine.port, "GET", "Subscription/" + subscription_id)[1]

    def test_option_c_subscription_notifies_the_filler_of_its_work_only(self):
        hook, bare_hook = Peer(lambda b, q: (200, None)), Peer(lambda b, q: (204, None))
        try:
            criteria = "ServiceRequest?_tag=" + ACTIONABLE + "&performer=Organization/lab"
            self.subscribe(hook.base, criteria, headers=["Authorization: Bearer lab-token"])
            self.subscribe(bare_hook.base, criteria, payload=None)
            ours = order_message("order-c", "C-SUB", self.placer.base, performer="Organization/lab")
            theirs = order_message("order-c", "C-OTHER", self.placer.base, performer="Organization/elsewhere")
            for message in (theirs, ours):
                status, ack = self.send(message)
                self.assertEqual((status, response_header(ack)["code"]), (200, "ok"), ack)

            wait_for(lambda: hook.received and bare_hook.received, what="notifications")
            time.sleep(0.3)  # time enough for a wrong notification to arrive too
            self.assertEqual(len(hook.received), 1, [r["path"] for r in hook.received])
            notification = hook.received[0]
            request = notification["bundle"]
            self.assertEqual((notification["method"], notification["path"]),
                             ("PUT", "/fhir/ServiceRequest/" + request["id"]))
            self.assertEqual(request["identifier"][0]["value"], "C-SUB")
            self.assertIn({"system": ACTIONABLE.split("|")[0], "code": "actionable"}, request["meta"]["tag"])
            self.assertEqual(notification["headers"].get("Authorization"), "Bearer lab-token")
            self.assertEqual([(r["method"], r["path"], r["raw"]) for r in bare_hook.received], [("POST", "/fhir", b"")])

            # The filler does the work and reports; the placer hears of it.
            self.assertEqual(call(self.engine.port, "POST", "DiagnosticReport",
                                  report("final", {"reference": "ServiceRequest/" + request["id"]}))[0], 201)
            self.assertEqual(focus_resources(self.placer_got(ours, 1)[0])[0]["status"], "final")
        finally:
            hook.close()
            bare_hook.close()

    def test_a_placer_subscribed_to_its_tasks_hears_each_step(self):
        hook = Peer(lambda b, q: (200, None))
        try:
            self.subscribe(hook.base, "Task?identifier=" + ORDERS + "|D-WATCH")
            message = order_message("order-d", "D-WATCH", self.placer.base)
            self.assertEqual(self.send(message)[0], 200)
            task = self.wait_task(message, "accepted")
            wait_for(lambda: len(hook.received) >= 2, what="a notification for each version")
            self.assertEqual([(r["method"], r["path"]) for r in hook.received],
                             [("PUT", "/fhir/Task/" + task["id"])] * len(hook.received))
            self.assertEqual([r["bundle"]["status"] for r in hook.received][:2], ["received", "accepted"])
            self.assertEqual(hook.received[-1]["bundle"]["meta"]["versionId"], task["meta"]["versionId"])
        finally:
            hook.close()

    def test_a_subscription_that_keeps_failing_is_set_to_error(self):
        subscription_id = self.subscribe(f"http://127.0.0.1:{free_port()}/fhir",
                                         "ServiceRequest?identifier=" + ORDERS + "|C-FAIL")
        status, _ = self.send(order_message("order-c", "C-FAIL", self.placer.base))
        self.assertEqual(status, 200)
        failed = wait_for(lambda: (s := self.subscription(subscription_id))["status"] == "error" and s,
                          what="the subscription in error")
        self.assertIn("failed 2 times in a row", failed["error"])

    def test_subscriptions_courier_cannot_serve_are_refused(self):
        for criteria, channel, header, why in [
                ("ServiceRequest?colour=blue", "rest-hook", None, "cannot search ServiceRequest by 'colour'"),
                ("Nonsense?status=active", "rest-hook", None, "'Nonsense' is not a FHIR R4 resource type"),
                ("ServiceRequest?status=active", "websocket", None, "courier offers rest-hook"),
                ("ServiceRequest?status=active", "rest-hook:self", None, "it would loop"),
                # A header may not smuggle in headers (or a request) of its own.
                ("ServiceRequest?status=active", "rest-hook", "X-A: b\r\nX-Injected: 1", "must be one HTTP header"),
                ("ServiceRequest?status=active", "rest-hook", "Bad Name: 1", "must be one HTTP header"),
                ("ServiceRequest?status=active", "rest-hook", "Content-Length: 0", "courier writes it")]:
            endpoint = "http://127.0.0.1:9/fhir"
            if channel == "rest-hook:self":
                channel, endpoint = "rest-hook", f"http://127.0.0.1:{self.engine.port}/fhir"
            subscription = {"resourceType": "Subscription", "status": "requested", "reason": "r",
                            "criteria": criteria, "channel": {"type": channel, "endpoint": endpoint}}
            if header:
                subscription["channel"]["header"] = [header]
            status, outcome, _ = call(self.engine.port, "POST", "Subscription", subscription)
            self.assertEqual(status, 422, outcome)
            self.assertIn(why, outcome["issue"][0]["diagnostics"])

    def test_a_subscription_past_its_end_is_turned_off(self):
        hook = Peer(lambda b, q: (200, None))
        try:
            status, expired, _ = call(self.engine.port, "POST", "Subscription", {
                "resourceType": "Subscription", "status": "requested", "reason": "r", "end": "2020-01-01T00:00:00Z",
                "criteria": "ServiceRequest?identifier=" + ORDERS + "|C-END",
                "channel": {"type": "rest-hook", "endpoint": hook.base}})
            self.assertEqual(status, 201, expired)
            wait_for(lambda: self.subscription(expired["id"])["status"] == "off", what="the subscription off")
            self.assertEqual(self.send(order_message("order-c", "C-END", self.placer.base))[0], 200)
            time.sleep(0.5)
            self.assertEqual(hook.received, [])
        finally:
            hook.close()

    # ---- status and cancellation through Task ------------------------------

    def cancel(self, message):
        """The placer cancels its order: its Task, set to cancelled."""
        task = self.task_of(message)
        task["status"] = "cancelled"
        status, body, _ = call(self.engine.port, "PUT", "Task/" + task["id"], task)
        self.assertEqual(status, 200, body)

    def wait_task(self, message, status, business=""):
        return wait_for(lambda: (t := self.task_of(message))["status"] == status and
                        business in t.get("businessStatus", {}).get("text", "") and t,
                        what=f"Task {status} ({business})")

    def test_status_asked_by_message_is_answered_with_the_task(self):
        order = order_message("order-d", "D-STATUS", self.placer.base)
        self.assertEqual(self.send(order)[0], 200)
        # The query names the order by its identifier (its focus is a
        # ServiceRequest of its own, with the same identifier).
        query = order_message("order-status", "D-STATUS", self.placer.base)
        status, answer = self.send(query)
        self.assertEqual((status, response_header(answer)["code"]), (200, "ok"), answer)
        task = focus_resources(answer)[0]
        self.assertEqual((task["resourceType"], task["status"]), ("Task", "accepted"))
        self.assertEqual(task["basedOn"], [{"reference": "ServiceRequest/" + order["entry"][1]["resource"]["id"]}])

        status, answer = self.send(order_message("order-status", "NEVER-ORDERED", self.placer.base))
        self.assertEqual((status, response_header(answer)["code"]), (200, "fatal-error"), answer)
        outcome = [e["resource"] for e in answer["entry"] if e["resource"]["resourceType"] == "OperationOutcome"][0]
        self.assertIn("not-found", [i["code"] for i in outcome["issue"]])

    def test_cancelling_a_queued_request_revokes_it_in_the_queue(self):
        message = order_message("order-c", "C-CANCEL", self.placer.base)
        self.assertEqual(self.send(message)[0], 200)
        self.wait_task(message, "accepted")
        self.cancel(message)
        task = self.wait_task(message, "cancelled")
        self.assertIn("every destination honoured it", task["businessStatus"]["text"])
        queued = self.search(self.engine.port, "ServiceRequest?identifier=" + urllib.parse.quote(ORDERS + "|C-CANCEL"))
        self.assertEqual([r["status"] for r in queued], ["revoked"])

    def test_cancelling_through_messaging_tells_the_filler(self):
        message = order_message("order-d", "D-CANCEL", self.placer.base)
        status, answer = self.send(message)
        self.assertEqual((status, response_header(answer)["code"]), (200, "ok"))
        self.wait_task(message, "accepted")
        self.cancel(message)
        self.wait_task(message, "cancelled")
        got = [m for m in self.messaging_filler.messages()
               if m["entry"][1]["resource"]["identifier"][0]["value"] == "D-CANCEL"]
        self.assertEqual([m["entry"][1]["resource"]["status"] for m in got], ["active", "revoked"])
        self.assertNotEqual(header_of(got[1])["id"], header_of(got[0])["id"])  # a message of its own

    def test_a_filler_that_refuses_the_cancellation_is_reported(self):
        message = order_message("order-d", "D-KEEP", self.placer.base)
        self.assertEqual(self.send(message)[0], 200)
        self.wait_task(message, "accepted")
        self.cancel(message)
        task = self.wait_task(message, "accepted", "cancellation not honoured")
        self.assertIn("fatal-error", task["businessStatus"]["text"])

    def test_a_conversations_task_is_courier_s_own_but_its_placer_may_cancel(self):
        message = order_message("order-d", "D-OWN", self.placer.base)
        self.assertEqual(self.send(message)[0], 200)
        task = self.wait_task(message, "accepted")
        path = "Task/" + task["id"]
        # Its versions are the conversation's steps.
        status, history, _ = call(self.engine.port, "GET", path + "/_history")
        self.assertEqual(status, 200, history)
        self.assertEqual([e["resource"]["status"] for e in history["entry"]][-1], "received")
        self.assertEqual(history["entry"][0]["resource"]["meta"]["versionId"], task["meta"]["versionId"])
        # Anything but a cancellation is refused, in FHIR's terms.
        changed = dict(task, priority="urgent", status="in-progress")
        status, outcome, _ = call(self.engine.port, "PUT", path, changed)
        self.assertEqual((status, outcome["issue"][0]["code"]), (422, "business-rule"), outcome)
        # A cancellation that changes something else too is refused whole.
        status, outcome, _ = call(self.engine.port, "PUT", path,
                                  dict(task, status="cancelled", note=[{"text": "please hurry"}]))
        self.assertEqual(status, 422, outcome)
        self.assertIn("changes note too", outcome["issue"][0]["diagnostics"])
        status, outcome, _ = call(self.engine.port, "DELETE", path)
        self.assertEqual((status, outcome["issue"][0]["code"]), (422, "business-rule"), outcome)
        transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": dict(task, status="cancelled"), "request": {"method": "PUT", "url": path}}]}
        status, outcome, _ = call(self.engine.port, "POST", "", transaction)
        self.assertEqual(status, 422, outcome)
        # An update as the placer last read it, or not at all.
        stale = 'W/"%d"' % (int(task["meta"]["versionId"]) - 1)
        status, outcome, _ = call(self.engine.port, "PUT", path, dict(task, status="cancelled"), {"If-Match": stale})
        self.assertEqual(status, 412, outcome)
        current = 'W/"%s"' % task["meta"]["versionId"]
        status, noted, headers = call(self.engine.port, "PUT", path, dict(task, status="cancelled"),
                                      {"If-Match": current})
        self.assertEqual(status, 200, noted)
        self.assertGreater(int(noted["meta"]["versionId"]), int(task["meta"]["versionId"]))
        self.assertIn("cancellation requested", noted["businessStatus"]["text"])
        self.assertEqual(headers["etag"], 'W/"%s"' % noted["meta"]["versionId"])
        self.wait_task(message, "cancelled")

    def test_cancelling_before_delivery_withdraws_the_message(self):
        message = order_message("order-down", "D-DOWN", self.placer.base)
        self.assertEqual(self.send(message, "?async=true")[0], 202)
        self.wait_task(message, "received")
        wait_for(lambda: any(e["kind"] == "attempt" for e in self.conversation_of(message)["timeline"]),
                 what="a first failed attempt")
        self.cancel(message)
        self.wait_task(message, "cancelled")
        conversation = self.conversation_of(message)
        self.assertEqual([d["state"] for d in conversation["deliveries"] if d["kind"] == "forward"], ["failed"])
        self.assertTrue(any("withdrawn" in e["detail"] for e in conversation["timeline"]))

    # ---- Option E ---------------------------------------------------------

    def operation_message(self, parameters):
        header_id, parameters_id = str(uuid.uuid4()), str(uuid.uuid4())
        return {
            "resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "message",
            "entry": [
                {"fullUrl": "urn:uuid:" + header_id, "resource": {
                    "resourceType": "MessageHeader", "id": header_id,
                    "eventCoding": {"system": "urn:ietf:rfc:3986",
                                    "code": "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code"},
                    "source": {"endpoint": self.placer.base},
                    "focus": [{"reference": "urn:uuid:" + parameters_id}]}},
                {"fullUrl": "urn:uuid:" + parameters_id,
                 "resource": {"resourceType": "Parameters", "id": parameters_id, "parameter": parameters}},
            ]}

    def test_option_e_an_operation_answers_the_message(self):
        parameters = [{"name": "url", "valueUri": "http://loinc.org/vs"},
                      {"name": "system", "valueUri": "http://loinc.org"},
                      {"name": "code", "valueCode": "24323-8"}]
        status, answer = self.send(self.operation_message(parameters))
        self.assertEqual((status, response_header(answer)["code"]), (200, "ok"), answer)
        self.assertEqual(header_of(answer)["eventCoding"]["system"], "urn:ietf:rfc:3986")
        self.assertEqual(focus_resources(answer),
                         [{"resourceType": "Parameters", "parameter": [{"name": "result", "valueBoolean": True}]}])
        call_made = self.terminology.received[-1]
        self.assertEqual((call_made["method"], call_made["path"]), ("POST", "/fhir/ValueSet/$validate-code"))
        self.assertEqual(call_made["bundle"]["parameter"], parameters)

    def test_option_e_a_refused_call_is_a_fatal_error_with_the_servers_outcome(self):
        status, answer = self.send(self.operation_message([{"name": "url", "valueUri": "http://loinc.org/vs"}]))
        self.assertEqual((status, response_header(answer)["code"]), (200, "fatal-error"), answer)
        outcome = [e["resource"] for e in answer["entry"] if e["resource"]["resourceType"] == "OperationOutcome"][0]
        self.assertIn("$validate-code needs a code", [i.get("diagnostics") for i in outcome["issue"]])

    # ---- REST to messaging ----------------------------------------------------

    def test_a_posted_request_reaches_a_messaging_filler_and_its_task_tells_how_it_goes(self):
        request = order_message("x", "T-1", "")["entry"][1]["resource"]
        request["subject"] = {"reference": "Patient/p1"}
        request["meta"] = {"tag": [{"system": ACTIONABLE.split("|")[0], "code": "actionable"}]}
        status, created, _ = call(self.engine.port, "POST", "ServiceRequest", request)
        self.assertEqual(status, 201, created)

        def delivered():
            return [m for m in self.messaging_filler.messages()
                    if m["entry"][1]["resource"]["identifier"][0]["value"] == "T-1"]
        message = wait_for(delivered, what="the message at the filler")[0]
        header = header_of(message)
        self.assertEqual(header["eventCoding"]["code"], "order-t")
        self.assertEqual(message["entry"][1]["resource"]["id"], created["id"])
        self.assertEqual(header["focus"], [{"reference": message["entry"][1]["fullUrl"]}])

        task = wait_for(lambda: (t := self.search(self.engine.port, "Task?focus=ServiceRequest/" + created["id"]))
                        and t[0]["status"] == "accepted" and t[0], what="the Task accepted")
        self.assertEqual(task["code"]["coding"][0]["code"], "order-t")

        # Requests courier queued itself carry the same tag, and trigger nothing.
        self.assertEqual(self.send(order_message("order-c", "C-NO-LOOP", self.placer.base))[0], 200)
        time.sleep(0.3)
        self.assertEqual(len(delivered()), 1)
        self.assertFalse([m for m in self.messaging_filler.messages()
                          if m["entry"][1]["resource"]["identifier"][0]["value"].startswith("C-")])

    # ---- filler-owned cancellation: a Task asking to cancel ---------------------

    def ask_to_cancel(self, focus):
        task = {"resourceType": "Task", "status": "requested", "intent": "order",
                "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "abort"}]},
                "focus": {"reference": focus}}
        status, created, _ = call(self.engine.port, "POST", "Task", task)
        self.assertEqual(status, 201, created)
        return created

    def task(self, task_id):
        return call(self.engine.port, "GET", "Task/" + task_id)[1]

    def test_a_messaging_filler_is_asked_to_cancel_and_its_answer_completes_the_task(self):
        order = order_message("order-d", "D-ABORT", self.placer.base)
        self.assertEqual(self.send(order)[0], 200)
        self.wait_task(order, "accepted")
        abort = self.ask_to_cancel("ServiceRequest/" + order["entry"][1]["resource"]["id"])
        wait_for(lambda: self.task(abort["id"])["status"] == "completed", what="the abort Task completed")
        self.wait_task(order, "cancelled")
        sent = [m for m in self.messaging_filler.messages()
                if m["entry"][1]["resource"]["identifier"][0]["value"] == "D-ABORT"][-1]
        self.assertIn("Task", [e["resource"]["resourceType"] for e in sent["entry"]])

    def test_a_queue_filler_rejects_a_cancellation_through_the_task(self):
        order = order_message("order-c", "C-ABORT", self.placer.base)
        self.assertEqual(self.send(order)[0], 200)
        own_task = self.wait_task(order, "accepted")
        abort = self.ask_to_cancel("Task/" + own_task["id"])
        self.wait_task(order, "accepted", "waiting for the filler")
        # The filler finds the request to cancel in the queue and says no.
        asked = self.search(self.engine.port, "Task?code=abort&status=requested&_id=" + abort["id"])
        self.assertEqual(len(asked), 1)
        asked[0]["status"] = "rejected"
        asked[0]["statusReason"] = {"text": "the sample is already on the analyser"}
        self.assertEqual(call(self.engine.port, "PUT", "Task/" + abort["id"], asked[0])[0], 200)
        task = self.wait_task(order, "accepted", "cancellation not honoured")
        self.assertIn("already on the analyser", task["businessStatus"]["text"])

    def test_a_rest_filler_gets_the_task_and_completes_it_at_courier(self):
        order = order_message("order-b", "B-ABORT", self.placer.base)
        self.assertEqual(self.send(order)[0], 200)
        self.wait_task(order, "accepted")
        abort = self.ask_to_cancel("ServiceRequest/" + order["entry"][1]["resource"]["id"])
        courier_url = f"http://127.0.0.1:{self.engine.port}/fhir/Task/" + abort["id"]
        at_filler = wait_for(lambda: self.search(self.filler.port, "Task?identifier=" +
                                                 urllib.parse.quote("urn:ietf:rfc:3986|" + courier_url)),
                             what="the Task at the filler")
        self.assertEqual(at_filler[0]["code"]["coding"][0]["code"], "abort")
        # It names the request by the identifier the filler's copy has, not
        # by the placer's id, which the filler never saw.
        self.assertEqual(at_filler[0]["focus"], {"type": "ServiceRequest",
                                                 "identifier": order["entry"][1]["resource"]["identifier"][0]})
        # The filler cancels its copy, and says so on courier's Task.
        done = self.task(abort["id"])
        done["status"] = "completed"
        self.assertEqual(call(self.engine.port, "PUT", "Task/" + abort["id"], done)[0], 200)
        self.wait_task(order, "cancelled")

    def test_asking_to_cancel_a_finished_request_is_rejected_with_why(self):
        order = order_message("order-b", "B-DONE", self.placer.base)
        self.assertEqual(self.send(order)[0], 200)
        self.wait_task(order, "accepted")
        final = report("final", {"identifier": {"system": ORDERS, "value": "B-DONE"}})
        self.assertEqual(call(self.engine.port, "POST", "DiagnosticReport", final)[0], 201)
        self.wait_task(order, "completed")
        abort = self.ask_to_cancel("ServiceRequest/" + order["entry"][1]["resource"]["id"])
        rejected = wait_for(lambda: (t := self.task(abort["id"]))["status"] == "rejected" and t,
                            what="the abort Task rejected")
        self.assertIn("already completed", rejected["statusReason"]["text"])

    def test_reports_on_unknown_requests_are_just_stored(self):
        status, _, _ = call(self.engine.port, "POST", "DiagnosticReport",
                            report("final", {"reference": "ServiceRequest/never-carried"}))
        self.assertEqual(status, 201)


if __name__ == "__main__":
    unittest.main()
