#!/usr/bin/env python3
"""$process-message end to end: a placer (this test, or a Peer receiving
async responses), courier, and a filler (a Peer), on loopback."""
import json
import os
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Courier, Peer, free_port, get, header_of, message, response_to, wait_for)  # noqa: E402


def messaging_route(filler, mode="sync", ack_timeout="2s", attempts=5, backoff="100ms..400ms", extra=""):
    return f"""
route: orders
from: fhir
when:
  event: http://example.org/fhir/message-events|order-request
  focus: ServiceRequest
to:
  - name: filler
    pattern: messaging
    endpoint: {filler}
    mode: {mode}
    ack-timeout: {ack_timeout}
    retry: {{ attempts: {attempts}, backoff: {backoff} }}
    order-by: Bundle.entry.resource.ofType(ServiceRequest).subject.reference
{extra}"""


def orders_route(destinations):
    """Route "orders" from listener fhir, for every order-request, to `destinations` (YAML list items)."""
    return f"""
route: orders
from: fhir
when:
  event: http://example.org/fhir/message-events|order-request
to:
{destinations}"""


class MessagingTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.folder = self.tmp.name
        self.peers = []
        self.engines = []

    def tearDown(self):
        for engine in self.engines:
            if engine.process:
                engine.stop()
        for peer in self.peers:
            peer.close()
        self.tmp.cleanup()

    def peer(self, behaviour=None, port=0):
        p = Peer(behaviour, port)
        self.peers.append(p)
        return p

    def courier(self, routes, extra_config=""):
        engine = Courier(self.folder, routes, extra_config)
        self.engines.append(engine)
        return engine

    # ---- happy paths ----------------------------------------------------

    def test_sync_response_from_filler_reaches_placer_unchanged(self):
        answers = {}

        def filler_behaviour(bundle, query):
            answers[header_of(bundle)["id"]] = response_to(bundle)
            return 200, answers[header_of(bundle)["id"]]
        filler = self.peer(filler_behaviour)
        engine = self.courier(messaging_route(filler.base))
        request = message()
        status, body = engine.process_message(request)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), answers[header_of(request)["id"]])
        self.assertEqual(len(filler.received), 1)
        self.assertEqual(filler.received[0]["path"], "/fhir/$process-message")
        self.assertEqual(filler.received[0]["bundle"], request)

    def test_async_placer_and_async_filler(self):
        placer = self.peer(lambda b, q: (202, None))
        responses = []

        def filler_behaviour(bundle, query):
            responses.append(bundle)
            return 202, None
        filler = self.peer(filler_behaviour)
        engine = self.courier(messaging_route(filler.base, mode="async"))
        request = message(source=placer.base)
        status, body = engine.process_message(request, "?async=true")
        self.assertEqual(status, 202, body)
        self.assertEqual(body, b"")
        wait_for(lambda: responses, what="the filler to get the message")
        forwarded = responses[0]
        self.assertEqual(filler.received[0]["query"], "async=true")
        # The filler is told to answer to courier, under the placer's ids.
        self.assertEqual(header_of(forwarded)["source"]["endpoint"], f"http://127.0.0.1:{engine.port}/fhir")
        self.assertEqual(header_of(forwarded)["id"], header_of(request)["id"])
        answer = response_to(forwarded)
        status, _ = engine.process_message(answer, "?async=true")
        self.assertEqual(status, 202)
        wait_for(lambda: placer.received, what="the response at the placer")
        self.assertEqual(placer.received[0]["path"], "/fhir/$process-message")
        self.assertEqual(placer.received[0]["query"], "async=true")
        self.assertEqual(placer.received[0]["bundle"], answer)

    def test_response_url_overrides_source_endpoint(self):
        inbox = self.peer(lambda b, q: (202, None))
        filler = self.peer(lambda b, q: (200, response_to(b)))
        engine = self.courier(messaging_route(filler.base))
        status, _ = engine.process_message(message(), f"?async=true&response-url={inbox.base}/inbox")
        self.assertEqual(status, 202)
        wait_for(lambda: inbox.received, what="the response at the response-url")
        self.assertEqual(inbox.received[0]["path"], "/fhir/inbox")
        # Only an HTTP(S) address: courier's own MLLP return path is not for a placer to aim.
        status, body = engine.process_message(message(), "?async=true&response-url=mllp://127.0.0.1:1")
        self.assertEqual(status, 400, body)

    def test_no_response_requested_gives_204(self):
        filler = self.peer(lambda b, q: (204, None))
        engine = self.courier(messaging_route(filler.base))
        never = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/messageheader-response-request",
                                "valueCode": "never"}]}
        status, body = engine.process_message(message(extra_header=never))
        self.assertEqual((status, body), (204, b""))
        wait_for(lambda: filler.received, what="delivery")

    def test_progress_messages_reach_the_placer_in_order(self):
        placer = self.peer(lambda b, q: (202, None))
        filler = self.peer(lambda b, q: (200, response_to(b)))
        engine = self.courier(messaging_route(filler.base))
        request = message(source=placer.base)
        status, body = engine.process_message(request)
        self.assertEqual(status, 200)
        progress = []
        for step in ["specimen-collected", "preliminary", "final"]:
            update = response_to(request)
            header_of(update)["eventCoding"]["code"] = step
            progress.append(update)
            status, _ = engine.process_message(update)
            self.assertEqual(status, 204)
        wait_for(lambda: len(placer.received) == 3, what="three progress messages")
        self.assertEqual([r["bundle"] for r in placer.received], progress)
        conversation = engine.conversations()[0]
        kinds = lambda: [e["kind"] for e in engine.conversation(conversation["id"])["timeline"]]
        wait_for(lambda: kinds().count("relayed") == 3, what="three relays in the timeline")
        self.assertEqual(kinds().count("response"), 1, kinds())
        self.assertEqual(kinds().count("progress"), 3, kinds())

    def test_a_resent_response_is_relayed_once_even_after_a_restart(self):
        placer = self.peer(lambda b, q: (202, None))
        filler = self.peer(lambda b, q: (200, response_to(b)))
        engine = self.courier(messaging_route(filler.base))
        request = message(source=placer.base)
        self.assertEqual(engine.process_message(request)[0], 200)
        update = response_to(request)
        header_of(update)["eventCoding"]["code"] = "final"
        self.assertEqual(engine.process_message(update)[0], 204)
        wait_for(lambda: len(placer.received) == 1, what="the progress message")
        # The filler did not see our 204 and sends the same message again,
        # once before and once after courier restarts: both are taken (204)
        # and neither reaches the placer a second time.
        self.assertEqual(engine.process_message(update)[0], 204)
        engine.restart()
        self.assertEqual(engine.process_message(update)[0], 204)
        conversation = engine.conversations()[0]
        kinds = lambda: [e["kind"] for e in engine.conversation(conversation["id"])["timeline"]]
        wait_for(lambda: kinds().count("duplicate") == 2, what="two resends in the timeline")
        self.assertEqual(len(placer.received), 1)
        self.assertEqual(kinds().count("progress"), 1, kinds())
        self.assertIn('courier_messages_received_total{listener="fhir",route="orders",outcome="duplicate"} 1',
                      engine.metrics())

    def test_a_report_based_on_the_order_reaches_the_placer_as_progress(self):
        placer = self.peer(lambda b, q: (202, None))
        filler = self.peer(lambda b, q: (200, response_to(b)))
        engine = self.courier(messaging_route(filler.base))
        request = message(source=placer.base)
        order = request["entry"][1]["resource"]
        order["identifier"] = [{"system": "urn:oid:1.2.3.4", "value": "ORD-77"}]
        self.assertEqual(engine.process_message(request)[0], 200)

        def report(based_on, source="http://filler.invalid/fhir"):
            # The filler's own message (an event no route takes): a final
            # DiagnosticReport that names the order it fulfils.
            bundle = message(event="diagnostic-report-provide", source=source)
            report_id = bundle["entry"][1]["fullUrl"][len("urn:uuid:"):]
            bundle["entry"][1]["resource"] = {
                "resourceType": "DiagnosticReport", "id": report_id, "status": "final",
                "code": {"text": "Metabolic panel"}, "basedOn": [based_on]}
            return bundle

        by_reference = report({"reference": "ServiceRequest/" + order["id"]})
        status, body = engine.process_message(by_reference)
        self.assertEqual(status, 200, body)
        answer = json.loads(body)
        self.assertEqual(header_of(answer)["response"], {"identifier": header_of(by_reference)["id"], "code": "ok"})
        by_identifier = report({"identifier": {"system": "urn:oid:1.2.3.4", "value": "ORD-77"}})
        self.assertEqual(engine.process_message(by_identifier)[0], 200)
        wait_for(lambda: len(placer.received) == 2, what="both reports at the placer")
        self.assertEqual([r["bundle"] for r in placer.received], [by_reference, by_identifier])
        conversation = engine.conversations()[0]
        kinds = [e["kind"] for e in engine.conversation(conversation["id"])["timeline"]]
        self.assertEqual(kinds.count("progress"), 2, kinds)

        # A report on an order courier never carried, or one sent by the
        # placer itself, is an ordinary message that no route takes.
        unknown = report({"reference": "ServiceRequest/not-ours"})
        self.assertEqual(engine.process_message(unknown)[0], 422)
        from_placer = report({"reference": "ServiceRequest/" + order["id"]}, source=placer.base)
        self.assertEqual(engine.process_message(from_placer)[0], 422)
        self.assertEqual(len(placer.received), 2)

    def test_fhir_kit_client_as_placer(self):
        import subprocess
        from harness import ROOT
        filler = self.peer(lambda b, q: (200, response_to(b)))
        engine = self.courier(messaging_route(filler.base))
        run = os.path.join(ROOT, "tests", "interop", "run_node_check.sh")

        def placer(mode, bundle):
            path = os.path.join(self.folder, f"{mode}.json")
            with open(path, "w") as f:
                json.dump(bundle, f)
            r = subprocess.run([run, "fhirkit_placer.js", f"http://127.0.0.1:{engine.port}/fhir", mode, path],
                               capture_output=True, timeout=120)
            if r.returncode == 77:
                self.skipTest("npm could not install fhir-kit-client")
            self.assertEqual(r.returncode, 0, r.stderr)
            return json.loads(r.stdout)
        request = message()
        answer = placer("sync", request)
        self.assertTrue(answer["ok"])
        self.assertEqual(header_of(answer["body"])["response"]["identifier"], header_of(request)["id"])
        self.assertEqual(placer("async", message()), {"ok": True, "body": {}})  # 202, no body
        refused = placer("sync", message(event="no-such-event"))
        self.assertEqual((refused["ok"], refused["status"]), (False, 422))
        self.assertEqual(refused["body"]["resourceType"], "OperationOutcome")

    def test_the_file_destination_writes_whole_files_and_replaces_a_stale_one(self):
        # The first conversation's file is already there (left by a run whose
        # store was lost): it is replaced whole, and nothing else is left in
        # the folder.
        outbox = os.path.join(self.folder, "outbox")
        os.makedirs(outbox)
        with open(os.path.join(outbox, "1-copy.json"), "w") as f:
            f.write("left from before")
        engine = self.courier(orders_route(f"""  - name: copy
    pattern: file
    folder: {outbox}
"""))
        sent = [message() for _ in range(3)]
        for m in sent:
            self.assertEqual(engine.process_message(m)[0], 200)
        names = ["1-copy.json", "2-copy.json", "3-copy.json"]
        wait_for(lambda: sorted(os.listdir(outbox)) == names, what="one file per message, and nothing else")
        for name, m in zip(names, sent):
            with open(os.path.join(outbox, name)) as f:
                self.assertEqual(json.load(f)["id"], m["id"])
            self.assertEqual(os.stat(os.path.join(outbox, name)).st_mode & 0o777, 0o640)

    # ---- failures -------------------------------------------------------

    def test_filler_down_then_up_delivers_once_in_order(self):
        from harness import free_port
        port = free_port()
        engine = self.courier(messaging_route(f"http://127.0.0.1:{port}/fhir", attempts=50,
                                              backoff="100ms..300ms"), "sync-wait: 200ms\n")
        sent = [message(patient="Patient/a") for _ in range(5)] + [message(patient="Patient/b") for _ in range(3)]
        for m in sent:
            status, _ = engine.process_message(m)
            self.assertEqual(status, 202)  # no response within sync-wait: custody taken
        filler = self.peer(lambda b, q: (200, response_to(b)), port=port)
        wait_for(lambda: len(filler.received) == 8, what="all eight delivered")
        got = filler.messages()
        for patient in ("Patient/a", "Patient/b"):
            expected = [header_of(m)["id"] for m in sent if m["entry"][1]["resource"]["subject"]["reference"] == patient]
            delivered = [header_of(m)["id"] for m in got if m["entry"][1]["resource"]["subject"]["reference"] == patient]
            self.assertEqual(delivered, expected)

    def test_a_backlog_beyond_memory_waits_in_the_store_and_arrives_in_order(self):
        # Four deliveries per destination in memory: the other twenty wait in
        # the store while the filler is down, across a restart, and still
        # arrive once each, in order per patient. The file destination of
        # the same messages is not held up by the filler's backlog.
        from harness import free_port
        port = free_port()
        outbox = os.path.join(self.folder, "outbox")
        engine = self.courier(orders_route(f"""  - name: filler
    pattern: messaging
    endpoint: http://127.0.0.1:{port}/fhir
    ack-timeout: 2s
    retry: {{ attempts: 100, backoff: 100ms..300ms }}
    order-by: Bundle.entry.resource.ofType(ServiceRequest).subject.reference
  - name: copy
    pattern: file
    folder: {outbox}
"""), "sync-wait: 50ms\ndeliveries-in-memory: 4\n")
        sent = [message(patient=f"Patient/{p}") for _ in range(8) for p in "abc"]
        for m in sent:
            self.assertIn(engine.process_message(m)[0], (200, 202))
        wait_for(lambda: len([n for n in os.listdir(outbox) if n.endswith(".json")]) == len(sent),
                 what="every copy in the outbox while the filler is down")
        self.assertIn('courier_delivery_queue_depth{route="orders",destination="filler"} 24', engine.metrics())
        self.assertIn('courier_deliveries_in_store_only{route="orders",destination="filler"} 20', engine.metrics())
        # Which thread the backlog keeps busy, for an operator asking why.
        self.assertRegex(engine.metrics(), r'courier_thread_cpu_seconds_total\{thread="store-writer"\} [0-9.]+')
        # Delivered to the file, not to the filler: not completed.
        self.assertEqual(engine.conversations(state="completed", limit=100), [])
        engine.restart()
        # Start-up reads back four; the other twenty stay in the store.
        wait_for(lambda: 'courier_deliveries_in_store_only{route="orders",destination="filler"} 20' in engine.metrics(),
                 what="the backlog as start-up left it")
        self.assertIn('courier_delivery_queue_depth{route="orders",destination="filler"} 24', engine.metrics())
        filler = self.peer(lambda b, q: (200, response_to(b)), port=port)
        wait_for(lambda: len(filler.received) >= len(sent), timeout=60, what="all delivered to the filler")
        got = filler.messages()
        self.assertEqual(sorted(m["id"] for m in got), sorted(m["id"] for m in sent))
        for patient in ("Patient/a", "Patient/b", "Patient/c"):
            def of(messages):
                return [header_of(m)["id"] for m in messages
                        if m["entry"][1]["resource"]["subject"]["reference"] == patient]
            self.assertEqual(of(got), of(sent))
        wait_for(lambda: 'courier_delivery_queue_depth{route="orders",destination="filler"} 0' in engine.metrics(),
                 what="an empty filler queue")
        self.assertIn('courier_deliveries_in_store_only{route="orders",destination="filler"} 0', engine.metrics())

    def test_cancelling_a_message_still_in_the_store_withdraws_it(self):
        # The third message to a filler that is down waits in the store only
        # (two per destination in memory); its placer cancels it through its
        # Task: once the filler is up, the other two arrive and it does not.
        from harness import call, free_port
        port = free_port()
        engine = self.courier(messaging_route(f"http://127.0.0.1:{port}/fhir", attempts=100,
                                              backoff="100ms..300ms"), "sync-wait: 50ms\ndeliveries-in-memory: 2\n")
        sent = [message(patient="Patient/a") for _ in range(3)]
        for m in sent:
            self.assertEqual(engine.process_message(m)[0], 202)
        self.assertIn('courier_deliveries_in_store_only{route="orders",destination="filler"} 1', engine.metrics())

        status, found, _ = call(engine.port, "GET", "Task?focus=ServiceRequest/" + sent[2]["entry"][1]["resource"]["id"])
        self.assertEqual(status, 200, found)
        task = found["entry"][0]["resource"]
        task["status"] = "cancelled"
        self.assertEqual(call(engine.port, "PUT", "Task/" + task["id"], task)[0], 200)
        conversation_id = int(task["id"].split("-")[-1])
        wait_for(lambda: any("withdrawn" in e["detail"] for e in engine.conversation(conversation_id)["timeline"]),
                 what="the withdrawal on the timeline")
        self.assertIn('courier_deliveries_in_store_only{route="orders",destination="filler"} 0', engine.metrics())
        filler = self.peer(lambda b, q: (200, response_to(b)), port=port)
        wait_for(lambda: len(filler.received) >= 2, what="the other two delivered")
        wait_for(lambda: 'courier_delivery_queue_depth{route="orders",destination="filler"} 0' in engine.metrics(),
                 what="an empty filler queue")
        self.assertEqual([m["id"] for m in filler.messages()], [m["id"] for m in sent[:2]])
        forwards = [d for d in engine.conversation(conversation_id)["deliveries"] if d["kind"] == "forward"]
        self.assertEqual([d["state"] for d in forwards], ["failed"])

    def test_transient_error_is_retried_then_ok(self):
        calls = []

        def flaky(bundle, query):
            calls.append(1)
            return 200, response_to(bundle, "transient-error" if len(calls) == 1 else "ok")
        filler = self.peer(flaky)
        engine = self.courier(messaging_route(filler.base))
        status, body = engine.process_message(message())
        self.assertEqual(status, 200)
        self.assertEqual(header_of(json.loads(body))["response"]["code"], "ok")
        self.assertEqual(len(calls), 2)

    def test_fatal_error_is_not_retried(self):
        filler = self.peer(lambda b, q: (200, response_to(b, "fatal-error")))
        engine = self.courier(messaging_route(filler.base))
        status, body = engine.process_message(message())
        self.assertEqual(status, 200)
        self.assertEqual(header_of(json.loads(body))["response"]["code"], "fatal-error")
        self.assertEqual(len(filler.received), 1)
        wait_for(lambda: engine.conversations()[0]["state"] == "rejected", what="the conversation to be rejected")

    def test_http_4xx_from_filler_is_a_fatal_error_with_its_reason(self):
        outcome = {"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "invalid", "diagnostics": "unknown test code"}]}
        filler = self.peer(lambda b, q: (422, outcome))
        engine = self.courier(messaging_route(filler.base))
        status, body = engine.process_message(message())
        self.assertEqual(status, 200)
        answer = json.loads(body)
        self.assertEqual(header_of(answer)["response"]["code"], "fatal-error")
        details = answer["entry"][1]["resource"]
        self.assertIn("unknown test code", details["issue"][0]["diagnostics"])

    def test_ack_timeout_reports_transient_error_and_parks_then_replays(self):
        accept_only = [True]
        filler = self.peer(lambda b, q: (202, None) if accept_only[0] else (200, response_to(b)))
        engine = self.courier(messaging_route(filler.base, mode="async", ack_timeout="300ms", attempts=2,
                                              backoff="100ms..100ms"))
        status, body = engine.process_message(message())
        self.assertEqual(status, 200, body)
        answer = json.loads(body)
        self.assertEqual(header_of(answer)["response"]["code"], "transient-error")
        self.assertIn("no response within the ack timeout", answer["entry"][1]["resource"]["issue"][0]["diagnostics"])
        self.assertEqual(len(filler.received), 2)
        # The placer's answer comes first; the delivery's new state is
        # written just after it, without a sync of its own.
        conversation_id = engine.conversations()[0]["id"]
        detail = wait_for(lambda: (lambda d: d if d["deliveries"][0]["state"] == "parked" else None)(
            engine.conversation(conversation_id)), what="the delivery to be parked")
        delivery = detail["deliveries"][0]
        wait_for(lambda: engine.conversations()[0]["state"] == "on-hold", what="the conversation to be on hold")
        self.assertIn('courier_dead_letters_total{route="orders",destination="filler"} 1', engine.metrics())
        # An operator finds it and replays it once the filler works again.
        accept_only[0] = False
        import subprocess
        from harness import COURIER
        listing = subprocess.run([COURIER, "messages", "--config", engine.config, "list", "--state", "on-hold"],
                                 capture_output=True, check=True).stdout.decode().splitlines()
        self.assertEqual(len(listing), 2, listing)
        self.assertIn(" on-hold ", listing[1])
        shown = subprocess.run([COURIER, "messages", "--config", engine.config, "show", str(detail["id"])],
                               capture_output=True, check=True).stdout.decode()
        self.assertIn(f"delivery {delivery['id']} (forward) to filler: parked after 2 attempt(s)", shown)
        self.assertIn("no response within the ack timeout", shown)
        replay = subprocess.run([COURIER, "messages", "--config", engine.config, "replay", str(delivery["id"])],
                                capture_output=True)
        self.assertEqual(replay.returncode, 0, replay.stderr)
        wait_for(lambda: len(filler.received) == 3, what="the replayed delivery")
        wait_for(lambda: engine.conversation(detail["id"])["deliveries"][0]["state"] == "delivered",
                 what="the delivery to be delivered")

    def test_a_resend_after_a_transient_error_is_tried_again(self):
        failing = [True]
        filler = self.peer(lambda b, q: (503, None) if failing[0] else (200, response_to(b)))
        engine = self.courier(messaging_route(filler.base, attempts=2, backoff="100ms..100ms"))
        sent = message()
        status, body = engine.process_message(sent)
        self.assertEqual(header_of(json.loads(body))["response"]["code"], "transient-error")
        self.assertEqual(len(filler.received), 2)
        wait_for(lambda: engine.conversations()[0]["state"] == "on-hold", what="the conversation to be on hold")
        # The sender does what transient-error asks of it: it sends the very
        # same message again, which goes to the filler again.
        failing[0] = False
        status, body = engine.process_message(sent)
        self.assertEqual(status, 200, body)
        self.assertEqual(header_of(json.loads(body))["response"]["code"], "ok")
        self.assertEqual(len(filler.received), 3)
        # That ok is now what a resend gets, and nothing goes out again.
        status, again = engine.process_message(sent)
        self.assertEqual(again, body)
        self.assertEqual(len(filler.received), 3)
        [conversation] = engine.conversations()
        detail = engine.conversation(conversation["id"])
        self.assertEqual([d["state"] for d in detail["deliveries"]], ["delivered"])
        self.assertTrue(any(e["kind"] == "replayed" and "the placer" in e["detail"] for e in detail["timeline"]),
                        detail["timeline"])

    def test_a_resend_after_a_fatal_error_gets_it_again(self):
        refused = message()
        filler = self.peer(lambda b, q: (422, None))
        engine = self.courier(messaging_route(filler.base))
        first = engine.process_message(refused)[1]
        self.assertEqual(header_of(json.loads(first))["response"]["code"], "fatal-error")
        self.assertEqual(engine.process_message(refused)[1], first)  # final: not sent again
        self.assertEqual(len(filler.received), 1)

    # ---- duplicates (reliable messaging) ----------------------------------

    def test_duplicates_of_every_kind(self):
        filler = self.peer(lambda b, q: (200, response_to(b)))
        engine = self.courier(messaging_route(filler.base))
        original = message()
        first = engine.process_message(original)
        self.assertEqual(first[0], 200)
        # Both ids seen: the original response, byte for byte, not delivered again.
        again = engine.process_message(original)
        self.assertEqual(again, first, (len(filler.received), engine.conversation(1)))
        self.assertEqual(len(filler.received), 1)
        # Same MessageHeader.id in a new Bundle: rejected by default.
        status, body = engine.process_message(message(header_id=header_of(original)["id"]))
        self.assertEqual(status, 422)
        self.assertIn("was already received in another Bundle", json.loads(body)["issue"][0]["diagnostics"])
        # Same Bundle.id with a new MessageHeader.id: an error.
        status, body = engine.process_message(message(bundle_id=original["id"]))
        self.assertEqual(status, 422)
        self.assertIn("already used by a message with another MessageHeader.id", body.decode())
        self.assertEqual(len(filler.received), 1)

    def test_reused_header_id_can_be_reprocessed(self):
        filler = self.peer(lambda b, q: (200, response_to(b)))
        engine = self.courier(messaging_route(filler.base), "on-reused-header-id: reprocess\n")
        original = message()
        self.assertEqual(engine.process_message(original)[0], 200)
        self.assertEqual(engine.process_message(message(header_id=header_of(original)["id"]))[0], 200)
        self.assertEqual(len(filler.received), 2)

    # ---- restarts ---------------------------------------------------------

    def test_restart_mid_delivery_resumes(self):
        from harness import free_port
        port = free_port()
        engine = self.courier(messaging_route(f"http://127.0.0.1:{port}/fhir", attempts=100), "sync-wait: 100ms\n")
        request = message()
        self.assertEqual(engine.process_message(request)[0], 202)
        engine.restart()
        filler = self.peer(lambda b, q: (200, response_to(b)), port=port)
        wait_for(lambda: filler.received, what="delivery after the restart")
        self.assertEqual(filler.messages(), [request])

    def test_conversations_waiting_in_the_store_leave_memory(self):
        # A filler that is down, one patient (one queue), two deliveries in
        # memory: the rest of the backlog waits in the store, and so do
        # their conversations, answered 202 and read back with it.
        engine = self.courier(messaging_route(f"http://127.0.0.1:{free_port()}/fhir", mode="async",
                                              attempts=100, backoff="1s..2s"),
                              "deliveries-in-memory: 2\n")
        for _ in range(40):
            self.assertEqual(engine.process_message(message(), "?async=true")[0], 202)

        def gauge(name):
            for line in engine.metrics().splitlines():
                if line.startswith(name + " ") or line.startswith(name + "{"):
                    return float(line.split()[-1])
            return None
        wait_for(lambda: gauge("courier_deliveries_in_store_only") == 38, what="38 deliveries in the store only")
        wait_for(lambda: gauge("courier_conversations_in_memory") <= 2,
                 what=f"two conversations in memory, not {gauge('courier_conversations_in_memory')}")

    def test_kill_9_under_load_loses_nothing_acknowledged(self):
        self.kill_9_under_load("")

    def test_kill_9_with_backlogs_in_the_store_loses_nothing_acknowledged(self):
        # A slower filler and three deliveries in memory: the backlog spills
        # into the store, and start-up reads it back.
        self.kill_9_under_load("deliveries-in-memory: 3\n", filler_delay=0.01)

    def kill_9_under_load(self, extra_config, filler_delay=0.0):
        delivered = {}
        lock = threading.Lock()

        def dedupe(bundle, query):
            time.sleep(filler_delay)
            with lock:
                delivered[bundle["id"]] = delivered.get(bundle["id"], 0) + 1
            return 200, response_to(bundle)
        filler = self.peer(dedupe)
        engine = self.courier(messaging_route(filler.base, attempts=100), "sync-wait: 50ms\n" + extra_config)
        acknowledged = []
        stop = threading.Event()

        def placer():
            while not stop.is_set():
                m = message(patient=f"Patient/{len(acknowledged) % 7}")
                try:
                    status, _ = engine.process_message(m)
                except OSError:
                    return
                if status in (200, 202):
                    with lock:
                        acknowledged.append(m["id"])
        threads = [threading.Thread(target=placer) for _ in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acknowledged) >= 100, what="a hundred acknowledged messages")
        if "deliveries-in-memory" in extra_config:
            wait_for(lambda: 'courier_deliveries_in_store_only{route="orders",destination="filler"} 0'
                     not in engine.metrics() and "courier_deliveries_in_store_only{" in engine.metrics(),
                     what="a backlog in the store")
        engine.kill()
        stop.set()
        for t in threads:
            t.join()
        engine.start()
        try:
            wait_for(lambda: all(a in delivered for a in list(acknowledged)), timeout=60,
                     what="every acknowledged message at the filler")
        except AssertionError:
            # Slow, or lost: the counts tell which.
            missing = [a for a in acknowledged if a not in delivered]
            raise AssertionError(f"{len(missing)} of {len(acknowledged)} acknowledged messages not delivered "
                                 f"({len(delivered)} delivered); the first: {missing[:3]}")
        self.assertGreaterEqual(len(acknowledged), 100)

    # ---- bad input ----------------------------------------------------------

    def test_bad_messages_get_the_right_status_and_outcome(self):
        filler = self.peer(lambda b, q: (200, response_to(b)))
        engine = self.courier(messaging_route(filler.base))
        cases = [
            (b'{"resourceType": "Bundle", "type": ', 400, "structure"),
            (json.dumps({"resourceType": "Patient", "id": "x"}), 422, "structure"),
            (json.dumps({"resourceType": "Bundle", "id": "b", "type": "message", "entry": [
                {"fullUrl": "urn:uuid:0b7e6e7e-0000-4000-8000-000000000001",
                 "resource": {"resourceType": "Patient", "id": "0b7e6e7e-0000-4000-8000-000000000001"}}]}),
             400, "invariant"),
            (json.dumps(message(event="unknown-event")), 422, "not-supported"),
            (json.dumps({"resourceType": "Bundle", "id": "b", "type": "message", "entry": [
                {"resource": {"resourceType": "MessageHeader", "id": "h", "eventCoding": {"code": "x"},
                              "source": {"endpoint": "http://x"}, "sourceX": 1}}]}), 400, None),
        ]
        for body, expected_status, expected_code in cases:
            status, answer = engine.process_message(body)
            self.assertEqual(status, expected_status, (body, answer))
            outcome = json.loads(answer)
            self.assertEqual(outcome["resourceType"], "OperationOutcome")
            if expected_code:
                self.assertEqual(outcome["issue"][0]["code"], expected_code, answer)
        status, answer = engine.process_message(b"hello", content_type="text/plain")
        self.assertEqual(status, 415)
        # Over the limit, by its Content-Length: 413, heard although the body
        # was still being sent.
        big = b'{"resourceType":"Bundle","padding":"' + b"x" * (17 << 20) + b'"}'
        status, answer = engine.process_message(big)
        self.assertEqual(status, 413)
        self.assertIn("larger than this listener's limit", json.loads(answer)["issue"][0]["diagnostics"])
        self.assertEqual(get(engine.port, "/healthz")[0], 200)
        self.assertEqual(engine.process_message(message())[0], 200)

    def test_xml_in_json_out_and_metadata(self):
        filler = self.peer(lambda b, q: (200, response_to(b)))
        engine = self.courier(messaging_route(filler.base))
        import subprocess
        from harness import COURIER
        xml = subprocess.run([COURIER, "convert", "--to", "xml", "-"], input=json.dumps(message()).encode(),
                             capture_output=True, check=True).stdout
        status, body = engine.process_message(xml, content_type="application/fhir+xml",
                                              headers={"Accept": "application/fhir+json"})
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["resourceType"], "Bundle")
        status, body = get(engine.port, "/fhir/metadata")
        self.assertEqual(status, 200)
        capability = json.loads(body)
        messaging = capability["messaging"][0]
        self.assertEqual(messaging["reliableCache"], 10)
        self.assertIn("order-request", messaging["documentation"])
        definition_url = messaging["supportedMessage"][0]["definition"]
        self.assertEqual(definition_url, f"http://127.0.0.1:{engine.port}/fhir/MessageDefinition/orders")
        status, body = get(engine.port, "/fhir/MessageDefinition/orders")
        self.assertEqual(status, 200)
        definition = json.loads(body)
        self.assertEqual(definition["eventCoding"], {"system": "http://example.org/fhir/message-events",
                                                     "code": "order-request"})
        self.assertEqual(definition["focus"], [{"code": "ServiceRequest", "min": 1, "max": "*"}])
        # courier's own answers are valid FHIR.
        for path in ("/fhir/metadata", "/fhir/MessageDefinition/orders"):
            r = subprocess.run([COURIER, "validate", "-"], input=get(engine.port, path)[1], capture_output=True)
            self.assertEqual(r.returncode, 0, r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
