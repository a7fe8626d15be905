#!/usr/bin/env python3
"""HL7 v2 over MLLP, end to end on loopback: Debian's python3-hl7
(`mllp_send`) and raw sockets send to courier's MLLP listener; the shipped
v2-feeds route writes the converted resources to courier's FHIR store, where
this test reads them back over REST."""
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import EVENT_SYSTEM, Courier, Peer, free_port, get, header_of, post, response_to, wait_for  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLES = os.path.join(REPO, "tests", "data", "hl7v2")
START, END = b"\x0b", b"\x1c\x0d"
V2_MAPS = f"hl7v2-maps: {os.path.join(REPO, 'schemas', 'hl7v2', 'maps')}\n"


def sample(name, terminator="\r"):
    with open(os.path.join(SAMPLES, name), encoding="utf-8") as f:
        return f.read().replace("\n", terminator)


class MllpCourier(Courier):
    """A courier with an MLLP listener (more of its keys in `listener_keys`)
    and the shipped v2-feeds route, or `routes`."""

    def __init__(self, folder, mllp_port, routes=None, listener_keys=""):
        self.mllp_port = mllp_port
        self.listener_keys = listener_keys
        if routes is None:
            with open(os.path.join(REPO, "routes", "v2-feeds.yaml")) as f:
                routes = f.read()
        super().__init__(folder, routes)

    def write_config(self):
        with open(self.config, "w") as f:
            f.write(f"data-dir: {self.data}\n"
                    f"listeners:\n  - name: fhir\n    type: http\n    address: 127.0.0.1\n"
                    f"    port: {self.requested_port}\n"
                    f"  - name: mllp\n    type: mllp\n    address: 127.0.0.1\n    port: {self.mllp_port}\n"
                    f"    max-message: 64KiB\n    read-timeout: 1s\n    timezone: '+01:00'\n" + self.listener_keys +
                    f"routes:\n  - {os.path.join(self.folder, 'routes.yaml')}\n" + V2_MAPS)


def segments(ack):
    return {line.split("|")[0]: line.split("|") for line in ack.strip("\r\n").split("\r") if line}


def mllp_send(port, text):
    """Sends one message with Debian's mllp_send and returns the ACK."""
    with tempfile.NamedTemporaryFile("w", suffix=".hl7", delete=False, encoding="utf-8") as f:
        f.write(text)
    try:
        out = subprocess.run(["mllp_send", "--loose", "--file", f.name, "--port", str(port), "127.0.0.1"],
                             capture_output=True, timeout=30, check=True)
    finally:
        os.unlink(f.name)
    return out.stdout.decode().replace("\n", "\r").strip("\x0b\x1c\r")


class Connection:
    """A raw MLLP connection, for what well-behaved clients never send."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data)

    def ack(self):
        while END not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        frame, self.buffer = self.buffer.split(END, 1)
        return frame.lstrip(START).decode()

    def closed(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def search(port, query):
    status, body = get(port, "/fhir/" + query)
    assert status == 200, body
    return json.loads(body)


class MllpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.mkdtemp(prefix="courier-mllp-")
        cls.mllp = free_port()
        cls.courier = MllpCourier(cls.folder, cls.mllp)

    @classmethod
    def tearDownClass(cls):
        cls.courier.stop()

    def patient(self):
        found = search(self.courier.port, "Patient?identifier=" + urllib.parse.quote("GHH|PATID1234"))
        self.assertEqual(found["total"], 1)
        return found["entry"][0]["resource"]

    def test_1_adt_feed_reaches_the_fhir_store(self):
        # A01 asks for enhanced mode (MSH-15 AL): CA once it is durable.
        ack = segments(mllp_send(self.mllp, sample("adt_a01.hl7")))
        self.assertEqual(ack["MSA"][1:3], ["CA", "MSG00001"])
        self.assertEqual(ack["MSH"][8], "ACK^A01^ACK")
        time.sleep(0.5)
        patient = self.patient()
        self.assertEqual(patient["name"][0]["family"], "Müller")
        self.assertEqual(patient["gender"], "male")
        # A08 in original mode: AA only once the store took it, and the same Patient changes.
        ack = segments(mllp_send(self.mllp, sample("adt_a08.hl7")))
        self.assertEqual(ack["MSA"][1:3], ["AA", "MSG00002"])
        updated = self.patient()
        self.assertEqual(updated["id"], patient["id"])
        self.assertEqual(updated["address"][0]["line"], ["1300 S OAK ROAD"])
        self.assertEqual(updated["meta"]["versionId"], "2")
        encounters = search(self.courier.port, "Encounter?subject=Patient/" + patient["id"])
        self.assertEqual(encounters["total"], 1)

    def test_2_a_repeat_gets_the_same_ack_and_is_not_delivered_twice(self):
        before = self.patient()["meta"]["versionId"]
        first = mllp_send(self.mllp, sample("adt_a08.hl7"))
        ack = segments(first)
        self.assertEqual(ack["MSA"][1:3], ["AA", "MSG00002"])
        self.assertEqual(mllp_send(self.mllp, sample("adt_a08.hl7")), first)  # the very same ACK
        self.assertEqual(self.patient()["meta"]["versionId"], before)

    def test_3_results_become_a_report_with_its_observations(self):
        ack = segments(mllp_send(self.mllp, sample("oru_r01.hl7")))
        self.assertEqual(ack["MSA"][1], "AA")
        reports = search(self.courier.port, "DiagnosticReport?_count=5")
        self.assertEqual(reports["total"], 1)
        report = reports["entry"][0]["resource"]
        self.assertEqual(len(report["result"]), 3)
        observation = json.loads(get(self.courier.port, "/fhir/" + report["result"][1]["reference"])[1])
        self.assertEqual(observation["valueQuantity"]["value"], 246)
        self.assertEqual(observation["interpretation"][0]["coding"][0]["code"], "H")

    def test_3b_a_transfer_moves_the_encounter_to_a_bed_in_the_store(self):
        ack = segments(mllp_send(self.mllp, sample("adt_a02.hl7")))
        self.assertEqual(ack["MSA"][1:3], ["AA", "MSGA02"])
        encounter = search(self.courier.port, "Encounter?identifier=" + urllib.parse.quote("GHH|VN0001"))
        self.assertEqual(encounter["total"], 1)
        locations = encounter["entry"][0]["resource"]["location"]
        self.assertEqual([x["status"] for x in locations], ["active", "completed"])

        def chain(reference):
            names = []
            while reference:
                status, body = get(self.courier.port, "/fhir/" + reference)
                self.assertEqual(status, 200, body)
                location = json.loads(body)
                names.append(location["identifier"][0]["value"])
                reference = location.get("partOf", {}).get("reference")
            return names
        # Upserted by identifier, with references rewritten to the store's ids.
        self.assertEqual(chain(locations[0]["location"]["reference"]), ["02", "2013", "2000", "GHH"])
        self.assertEqual(chain(locations[1]["location"]["reference"]), ["01", "2012", "2000", "GHH"])
        bed = search(self.courier.port, "Location?identifier=" +
                     urllib.parse.quote("urn:hl7v2:location:GHH/2000/2013|02"))
        self.assertEqual(bed["total"], 1)
        self.assertEqual(bed["entry"][0]["resource"]["physicalType"]["coding"][0]["code"], "bd")
        # The same places in the next message are not new versions of them.
        ack = segments(mllp_send(self.mllp, sample("adt_a02.hl7").replace("MSGA02", "MSGA02B")))
        self.assertEqual(ack["MSA"][1:3], ["AA", "MSGA02B"])
        bed = search(self.courier.port, "Location?identifier=" +
                     urllib.parse.quote("urn:hl7v2:location:GHH/2000/2013|02"))
        self.assertEqual(bed["entry"][0]["resource"]["meta"]["versionId"], "1")
        # An operator finds the messages by the patient's and the visit's
        # identifiers, not by a room that thousands of messages name.
        [transfer] = self.courier.conversations(q="MSGA02B")
        for key in ("PATID1234", "VN0001"):
            self.assertIn(transfer["id"], [c["id"] for c in self.courier.conversations(q=key)], key)
        self.assertEqual(self.courier.conversations(q="2013"), [])

    def test_3c_a_refusal_by_the_store_says_why(self):
        # Two Patients with the identifier an A08 upserts by: the store
        # cannot tell which to update, and the AR says so in its ERR.
        for _ in range(2):
            status, body, _ = post(self.courier.port, "/fhir/Patient", {
                "resourceType": "Patient", "identifier": [{"system": "GHH", "value": "TWICE1"}]})
            self.assertEqual(status, 201, body)
        text = sample("adt_a08.hl7").replace("PATID1234", "TWICE1").replace("|MSG00002|", "|TWICE-A08|")
        ack = segments(mllp_send(self.mllp, text))
        self.assertEqual(ack["MSA"][1:3], ["AR", "TWICE-A08"])
        self.assertIn("matches more than one", ack["ERR"][8])

    def test_3d_a_message_with_part_of_a_record_keeps_the_rest(self):
        # The results feed's PID (test_3) had neither address nor phone:
        # the A08's stay.
        patient = self.patient()
        self.assertEqual(patient["address"][0]["line"], ["1300 S OAK ROAD"])
        self.assertEqual(patient["telecom"][0]["value"], "(919)555-0100")
        # A merge retires the old record without wiping it.
        prior = (sample("adt_a08.hl7").replace("PATID1234", "PATID9999").replace("|MSG00002|", "|PRIOR-A08|")
                 .replace("Müller^Jürgen^Q^Jr^Dr", "Mueller^Juergen"))
        self.assertEqual(segments(mllp_send(self.mllp, prior))["MSA"][1:3], ["AA", "PRIOR-A08"])
        merge = sample("adt_a40.hl7").replace("|MSG00040|", "|MERGE-A40|")
        self.assertEqual(segments(mllp_send(self.mllp, merge))["MSA"][1:3], ["AA", "MERGE-A40"])
        found = search(self.courier.port, "Patient?identifier=" + urllib.parse.quote("GHH|PATID9999"))
        self.assertEqual(found["total"], 1)
        retired = found["entry"][0]["resource"]
        self.assertEqual(retired["active"], False)
        self.assertEqual(retired["link"][0]["type"], "replaced-by")
        self.assertEqual(retired["link"][0]["other"]["reference"], "Patient/" + patient["id"])
        self.assertEqual(retired["name"][0]["family"], "Mueller")
        self.assertEqual(retired["address"][0]["line"], ["1300 S OAK ROAD"])
        survivor = self.patient()
        self.assertEqual(survivor["telecom"][0]["value"], "(919)555-0100")
        self.assertEqual(survivor["name"][0]["family"], "Müller")
        # A field sent as "" deletes its value: the phone goes, the address stays.
        nulled = (sample("adt_a08.hl7").replace("|MSG00002|", "|NULL-A08|")
                  .replace("|(919)555-0100^PRN^PH|", '|""|'))
        self.assertEqual(segments(mllp_send(self.mllp, nulled))["MSA"][1:3], ["AA", "NULL-A08"])
        patient = self.patient()
        self.assertNotIn("telecom", patient)
        self.assertNotIn("extension", patient)
        self.assertEqual(patient["address"][0]["line"], ["1300 S OAK ROAD"])

    def test_4_every_segment_terminator_is_read(self):
        for terminator in ("\r", "\n", "\r\n"):
            text = sample("adt_a04.hl7", terminator).replace("MSGA04", "TERM" + str(len(terminator)) +
                                                             ("L" if terminator == "\n" else "C"))
            ack = segments(mllp_send(self.mllp, text))
            self.assertEqual(ack["MSA"][1], "AA", terminator.encode())

    def test_5_bad_input_gets_a_reject_with_its_reason(self):
        conn = Connection(self.mllp)
        try:
            # No MSH at all.
            conn.send(START + b"PID|1||X\r" + END)
            ack = segments(conn.ack())
            self.assertEqual(ack["MSA"][1], "AR")
            self.assertIn("MSH", ack["ERR"][-1])
            # It is kept for inspection, as it came.
            kept = search(self.courier.port, "Binary?_tag=" +
                          urllib.parse.quote("http://courier.example/fhir/tags|unreadable-hl7v2"))
            self.assertGreaterEqual(kept["total"], 1)
            self.assertEqual(kept["entry"][0]["resource"]["contentType"], "x-application/hl7-v2+er7")
            self.assertIn(b"PID|1||X\r", [base64.b64decode(e["resource"]["data"]) for e in kept["entry"]])
            # Garbage between frames is skipped, and the log says so (a
            # sender cannot hear of it in an ACK); the next message flows.
            conn.send(b"noise\r\n" + START + sample("adt_a13.hl7").encode() + END)
            self.assertEqual(segments(conn.ack())["MSA"][1], "AA")
            # A frame cut short by the next one is lost, and logged.
            conn.send(START + b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|CUT1|P|2.5\r" + b"\x1c" +
                      START + sample("adt_a13.hl7").encode() + END)
            self.assertEqual(segments(conn.ack())["MSA"][1], "AA")

            def logged(text):
                with open(os.path.join(self.folder, "courier.log"), encoding="utf-8", errors="replace") as log:
                    return text in log.read()
            wait_for(lambda: logged("skipped 5 bytes from 127.0.0.1 outside a frame"), what="the stray bytes logged")
            wait_for(lambda: logged("dropped 1 unfinished frame(s) from 127.0.0.1"), what="the cut frame logged")
            # Wrong delimiters: AR naming MSH-2.
            conn.send(START + b"MSH|^^\\&|A|B|C|D|2024||ADT^A01|BAD1|P|2.5\r" + END)
            ack = segments(conn.ack())
            self.assertEqual(ack["MSA"][1:3], ["AR", "BAD1"])
            # A message type courier has no map for: AR with code 200.
            conn.send(START + b"MSH|^~\\&|A|B|C|D|2024||SIU^S12^SIU_S12|SIU1|P|2.5\r" + END)
            ack = segments(conn.ack())
            self.assertEqual(ack["MSA"][1:3], ["AR", "SIU1"])
            self.assertTrue(ack["ERR"][3].startswith("200^"))
            # Read but refused: kept too, under its own tag.
            kept = search(self.courier.port, "Binary?_tag=" +
                          urllib.parse.quote("http://courier.example/fhir/tags|refused-hl7v2"))
            self.assertIn(b"|SIU1|", b"".join(base64.b64decode(e["resource"]["data"]) for e in kept["entry"]))
        finally:
            conn.close()

    def test_6_oversized_and_slow_peers_are_cut_off_and_others_keep_flowing(self):
        big = Connection(self.mllp)
        big.send(START + b"MSH|^~\\&|" + b"x" * 70000)
        self.assertTrue(big.closed())
        slow = Connection(self.mllp)
        slow.send(START + b"MSH|^~\\&|A")  # and never the rest: read-timeout is 1s
        other = Connection(self.mllp)
        other.send(START + sample("adt_a31.hl7").encode() + END)
        self.assertEqual(segments(other.ack())["MSA"][1], "AA")
        self.assertTrue(slow.closed(timeout=5))
        other.send(START + sample("adt_a02.hl7").encode() + END)
        self.assertEqual(segments(other.ack())["MSA"][1], "AA")
        for conn in (big, slow, other):
            conn.close()

    def test_6b_a_peer_that_never_reads_its_acks_is_cut_off_and_others_keep_flowing(self):
        # Messages with no map are answered at once (AR); this peer sends
        # them and never reads, until courier's ACKs fill both socket
        # buffers and courier's write waits longer than read-timeout (1s).
        stuck = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", self.mllp))
        stuck.setblocking(False)
        frame = START + b"MSH|^~\\&|A|B|C|D|2024||SIU^S12^SIU_S12|" + b"X" * 150 + b"|P|2.5\r" + END
        deadline = time.time() + 20
        cut_off = False
        while time.time() < deadline and not cut_off:
            try:
                stuck.send(frame * 64)
            except BlockingIOError:
                time.sleep(0.05)  # courier stopped reading: its ACK is not being read
            except (BrokenPipeError, ConnectionResetError):
                cut_off = True
            with open(os.path.join(self.folder, "courier.log"), encoding="utf-8", errors="replace") as log:
                cut_off = cut_off or "closed a connection: the peer does not read its ACK" in log.read()
        stuck.close()
        self.assertTrue(cut_off, "courier closes a connection whose peer does not read its ACKs")
        other = Connection(self.mllp)
        try:
            other.send(START + sample("adt_a13.hl7").encode() + END)
            self.assertEqual(segments(other.ack())["MSA"][1], "AA")
        finally:
            other.close()

    def test_7_a_peer_that_sends_several_messages_gets_acks_in_order(self):
        conn = Connection(self.mllp)
        try:
            names = ["adt_a03.hl7", "adt_a11.hl7", "orm_o01.hl7", "oml_o21.hl7", "adt_a40.hl7"]
            conn.send(b"".join(START + sample(name).encode() + END for name in names))
            ids = [segments(conn.ack())["MSA"][2] for _ in names]
            self.assertEqual(ids, ["MSGA03", "MSGA11", "ORD0001", "ORD0002", "MSG00040"])
        finally:
            conn.close()
        merged = search(self.courier.port, "Patient?identifier=" + urllib.parse.quote("GHH|PATID9999"))
        self.assertEqual(merged["entry"][0]["resource"]["active"], False)
        self.assertEqual(merged["entry"][0]["resource"]["link"][0]["type"], "replaced-by")

    def test_9_other_clients_are_understood(self):
        # npm's simple-hl7: its parser reads the message, its client frames it.
        run = os.path.join(REPO, "tests", "interop", "run_node_check.sh")
        r = subprocess.run([run, "simple_hl7_sender.js", "127.0.0.1", str(self.mllp),
                            os.path.join(SAMPLES, "adt_a13.hl7"), os.path.join(SAMPLES, "oml_o21.hl7")],
                           capture_output=True, timeout=120)
        if r.returncode == 77:
            self.skipTest("npm could not install simple-hl7")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().split("\n")[:2], ["AA MSGA13", "AA ORD0002"])
        # python3-hl7's asyncio client (Debian's, for /usr/bin/python3).
        client = f"""
import asyncio, hl7, hl7.mllp
async def main():
    reader, writer = await hl7.mllp.open_hl7_connection("127.0.0.1", {self.mllp}, encoding="utf-8")
    text = open({os.path.join(SAMPLES, "adt_a02.hl7")!r}, encoding="utf-8").read().replace("\\n", "\\r")
    writer.writemessage(hl7.parse(text.replace("MSGA02", "ASYNC02")))
    await writer.drain()
    ack = await reader.readmessage()
    print(ack.segment("MSA")(1), ack.segment("MSA")(2))
    writer.close()
asyncio.run(main())
"""
        r = subprocess.run(["/usr/bin/python3", "-c", client], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().strip(), "AA ASYNC02")

    def test_8_a_batch_gets_a_batch_of_acks(self):
        conn = Connection(self.mllp)
        try:
            # The batch's BHS-11 names it; the reply's BHS-12 names it back.
            batch = sample("batch.hl7").replace("BHS|^~\\&|ADT1|GOOD HEALTH HOSPITAL|||20240131",
                                                "BHS|^~\\&|ADT1|GOOD HEALTH HOSPITAL|||20240131||||B456")
            conn.send(START + batch.encode() + END)
            lines = conn.ack().strip("\r").split("\r")
            self.assertEqual([line.split("|")[0] for line in lines],
                             ["FHS", "BHS", "MSH", "MSA", "MSH", "MSA", "BTS", "FTS"])
            header = lines[1].split("|")
            self.assertEqual((header[4], header[5], header[11]), ("ADT1", "GOOD HEALTH HOSPITAL", "B456"))
            self.assertTrue(header[10])  # its own control id
            self.assertEqual(lines[3].split("|")[1:3], ["AA", "B0001"])
            self.assertEqual(lines[6], "BTS|2")
        finally:
            conn.close()



def start_v2_receiver(log):
    """Starts python3-hl7's asyncio MLLP server (v2_receiver.py) logging to
    `log`; returns the process and its port."""
    open(log, "w").close()
    port = free_port()
    process = subprocess.Popen(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "v2_receiver.py"),
                                str(port), log], stdout=subprocess.PIPE)
    assert process.stdout.readline().strip() == b"ready"
    return process, port


def results_message(family):
    """A FHIR results message: a DiagnosticReport of two Observations for a patient."""
    ids = {name: str(uuid.uuid4()) for name in ("header", "report", "patient", "glucose", "comment")}
    ref = {name: {"reference": "urn:uuid:" + value} for name, value in ids.items()}
    resources = [
        {"resourceType": "MessageHeader", "id": ids["header"],
         "eventCoding": {"system": EVENT_SYSTEM, "code": "results"},
         "source": {"endpoint": "http://lab.invalid/fhir"},
         "destination": [{"name": "LEGACY", "endpoint": "urn:legacy"}], "focus": [ref["report"]]},
        {"resourceType": "DiagnosticReport", "id": ids["report"], "status": "final",
         "identifier": [{"value": "R-1"}],
         "code": {"coding": [{"system": "http://loinc.org", "code": "24331-1", "display": "Lipid panel"}]},
         "subject": ref["patient"], "effectiveDateTime": "2024-01-31T14:00:00+01:00",
         "result": [ref["glucose"], ref["comment"]]},
        {"resourceType": "Patient", "id": ids["patient"],
         "identifier": [{"system": "GHH", "value": "P-7", "type": {"coding": [{"code": "MR"}]}}],
         "name": [{"family": family, "given": ["Ann"]}], "gender": "female", "birthDate": "1970-02-03"},
        {"resourceType": "Observation", "id": ids["glucose"], "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
         "subject": ref["patient"],
         "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                           "code": "mmol/L"},
         "interpretation": [{"coding": [{"code": "N"}]}]},
        {"resourceType": "Observation", "id": ids["comment"], "status": "final",
         "code": {"text": "comment"}, "subject": ref["patient"], "valueString": "fasting | repeat"},
    ]
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "message",
            "timestamp": "2024-01-31T15:00:00+01:00",
            "entry": [{"fullUrl": "urn:uuid:" + r["id"], "resource": r} for r in resources]}


class MllpOutTest(unittest.TestCase):
    """FHIR results to a legacy v2 receiver (python3-hl7's asyncio MLLP
    server) as ORU^R01."""

    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.mkdtemp(prefix="courier-mllp-out-")
        cls.log = os.path.join(cls.folder, "received.jsonl")
        cls.receiver, port = start_v2_receiver(cls.log)
        routes = f"""
- route: results-to-legacy
  when: {{event: {EVENT_SYSTEM}|results}}
  to:
    - name: legacy-lab
      pattern: mllp
      endpoint: mllp://127.0.0.1:{port}
      ack-timeout: 5s
      retry: {{attempts: 3, backoff: 100ms..200ms}}
"""
        cls.courier = Courier(cls.folder, routes, extra_config=V2_MAPS)

    @classmethod
    def tearDownClass(cls):
        cls.courier.stop()
        cls.receiver.kill()
        cls.receiver.wait()

    def received(self):
        with open(self.log) as f:
            return [json.loads(line)["raw"].split("\r") for line in f if line.strip()]

    def send(self, family):
        status, body, _ = post(self.courier.port, "/fhir/$process-message", results_message(family))
        self.assertEqual(status, 200, body)
        return header_of(json.loads(body))["response"]["code"]

    def test_results_arrive_as_oru_r01(self):
        self.assertEqual(self.send("Smith"), "ok")
        message = {segment.split("|")[0]: segment.split("|") for segment in self.received()[-1]}
        self.assertEqual(message["MSH"][8], "ORU^R01^ORU_R01")
        self.assertEqual(message["PID"][3], "P-7^^^GHH^MR")
        self.assertEqual(message["PID"][5], "Smith^Ann")
        self.assertEqual(message["PID"][7:9], ["19700203", "F"])
        self.assertEqual(message["OBR"][4], "24331-1^Lipid panel^LN")
        self.assertEqual(message["OBR"][7], "20240131140000+0100")
        self.assertEqual(message["OBX"][2:9], ["ST", "^comment", "", "fasting \\F\\ repeat", "", "", ""])

    def test_an_application_ack_after_the_commit_ack_is_stepped_over(self):
        # The receiver sends CA, then AA on the same kept connection; the AA
        # is read before the next message's ACK and must not be taken for it.
        before = len(self.received())
        self.assertEqual(self.send("ENHANCED"), "ok")
        self.assertEqual(self.send("Jones"), "ok")
        self.assertEqual(len(self.received()), before + 2)  # each sent once: no retry

    def test_a_refusal_is_a_fatal_error_and_an_ae_is_retried(self):
        self.assertEqual(self.send("REFUSE"), "fatal-error")
        before = len(self.received())
        self.assertEqual(self.send("FLAKY"), "ok")
        self.assertEqual(len(self.received()), before + 2)  # the AE, then the retry that got AA


class MllpApplicationAckTest(unittest.TestCase):
    """Enhanced mode: a CA once the message is durable, then the outcome as
    an application ACK sent to the sender's own listener (python3-hl7's
    asyncio MLLP server), as MSH-16 asks."""

    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.mkdtemp(prefix="courier-mllp-appack-")
        cls.log = os.path.join(cls.folder, "acks.jsonl")
        cls.sender, sender_port = start_v2_receiver(cls.log)
        # The filler refuses the messages whose MSH-10 says so.
        cls.filler = Peer(lambda bundle, query: (
            200, response_to(bundle, "fatal-error" if "REFUSE" in bundle["identifier"]["value"] else "ok")))
        cls.mllp = free_port()
        routes = f"""
- route: v2-to-file
  from: mllp
  when: {{event: http://terminology.hl7.org/CodeSystem/v2-0003|A04}}
  to:
    - name: outbox
      pattern: file
      folder: {os.path.join(cls.folder, "outbox")}
- route: v2-to-filler
  from: mllp
  to:
    - name: filler
      pattern: messaging
      endpoint: {cls.filler.base}
      retry: {{attempts: 1}}
"""
        cls.courier = MllpCourier(cls.folder, cls.mllp, routes,
                                  listener_keys=f"    application-acks: mllp://127.0.0.1:{sender_port}\n")

    @classmethod
    def tearDownClass(cls):
        cls.courier.stop()
        cls.filler.close()
        cls.sender.kill()
        cls.sender.wait()

    def acks(self):
        with open(self.log) as f:
            return [segments(json.loads(line)["raw"]) for line in f if line.strip()]

    def send(self, control_id, application_ack, event="A01", terminator="\r"):
        text = (sample("adt_a01.hl7", terminator).replace("|MSG00001|", f"|{control_id}|")
                .replace("|AL|NE|", f"|AL|{application_ack}|").replace("ADT^A01^", f"ADT^{event}^"))
        return segments(mllp_send(self.mllp, text))

    def application_ack(self, control_id):
        wait_for(lambda: any(a["MSA"][2] == control_id for a in self.acks()), what=f"the application ACK of {control_id}")
        return next(a for a in self.acks() if a["MSA"][2] == control_id)

    def test_the_outcome_follows_the_commit_ack_as_msh16_asks(self):
        # MSH-16 ER: success is not reported; MSH-16 AL: it is.
        self.assertEqual(self.send("APPACK-ER", "ER")["MSA"][1:3], ["CA", "APPACK-ER"])
        self.assertEqual(self.send("APPACK-OK", "AL")["MSA"][1:3], ["CA", "APPACK-OK"])
        ack = self.application_ack("APPACK-OK")
        self.assertEqual(ack["MSA"][1], "AA")
        self.assertEqual(ack["MSH"][8], "ACK^A01^ACK")
        self.assertEqual((ack["MSH"][4], ack["MSH"][14:16]), ("ADT1", ["AL", "NE"]))  # to the sender; CA wanted
        # A refusal is reported under ER, with an ERR segment saying why.
        self.assertEqual(self.send("APPACK-REFUSE", "ER")["MSA"][1:3], ["CA", "APPACK-REFUSE"])
        refused = self.application_ack("APPACK-REFUSE")
        self.assertEqual(refused["MSA"][1], "AR")
        self.assertIn("ERR", refused)
        self.assertFalse(any(a["MSA"][2] == "APPACK-ER" for a in self.acks()))
        # A destination that answers nothing (a file) is an AA too; a message
        # ending its segments with LF puts only its MSH in the reply address.
        self.assertEqual(self.send("APPACK-FILE", "AL", event="A04", terminator="\n")["MSA"][1:3],
                         ["CA", "APPACK-FILE"])
        self.assertEqual(self.application_ack("APPACK-FILE")["MSA"][1], "AA")
        [conversation] = self.courier.conversations(q="APPACK-FILE")
        self.assertNotIn("PID", self.courier.conversation(conversation["id"])["replyTo"])
        # MSH-15 ER and NE: no CA on the connection for a message taken
        # (the next message's ACK is the first thing that comes back), and
        # the outcome still follows as the application ACK.
        conn = Connection(self.mllp)
        try:
            for control_id, accept in (("COMMIT-ER", "ER"), ("COMMIT-NE", "NE")):
                text = (sample("adt_a01.hl7").replace("|MSG00001|", f"|{control_id}|")
                        .replace("|AL|NE|", f"|{accept}|AL|"))
                conn.send(START + text.encode() + END)
            conn.send(START + sample("adt_a01.hl7").replace("|MSG00001|", "|COMMIT-AL|")
                      .replace("|AL|NE|", "|AL|AL|").encode() + END)
            self.assertEqual(segments(conn.ack())["MSA"][1:3], ["CA", "COMMIT-AL"])
        finally:
            conn.close()
        for control_id in ("COMMIT-ER", "COMMIT-NE"):
            self.assertEqual(self.application_ack(control_id)["MSA"][1], "AA")
        # The sender's CA for each application ACK ends its delivery.
        wait_for(lambda: all(d["state"] == "delivered"
                             for c in self.courier.conversations(q="APPACK-OK")
                             for d in self.courier.conversation(c["id"])["deliveries"]),
                 what="the application ACK delivered")


if __name__ == "__main__":
    unittest.main(verbosity=2)
