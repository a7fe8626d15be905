#!/usr/bin/python3
"""Security end to end: TLS and mutual TLS on the HTTP and MLLP listeners
and on the senders, peers known by certificate, bearer token (RS256 and
ES384 JWTs from python3-jwt) or API key, route allow lists, claimed senders,
SMART scopes on the REST facade, operator-only paths, certificate reload on
SIGHUP under load, and logs free of patient data. Clients: curl, openssl
s_client, Python's ssl (HTTP and MLLP). Runs with Debian's /usr/bin/python3
(python3-jwt, python3-cryptography)."""
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Courier, Peer, free_port, message, response_to, wait_for  # noqa: E402
from tls_material import Material  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLES = os.path.join(REPO, "tests", "data", "hl7v2")
START, END = b"\x0b", b"\x1c\x0d"
ISSUER = "https://auth.hospital.example"
AUDIENCE = "https://courier.hospital.example/fhir"
API_KEY = "ops-" + uuid.uuid4().hex


def b64url_int(value, length=None):
    data = value.to_bytes(length or (value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Keys:
    """The token issuer's keys (RSA for RS256, P-384 for ES384) and a
    stranger's, with the issuer's JWKS."""

    def __init__(self):
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP384R1())
        self.stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rn = self.rsa.public_key().public_numbers()
        en = self.ec.public_key().public_numbers()
        self.jwks = {"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": b64url_int(rn.n), "e": b64url_int(rn.e)},
            {"kty": "EC", "kid": "ec-1", "use": "sig", "crv": "P-384", "x": b64url_int(en.x, 48),
             "y": b64url_int(en.y, 48)},
        ]}

    def token(self, scope, subject="lis-client", audience=AUDIENCE, issuer=ISSUER, expires_in=300,
              not_before=None, algorithm="RS256", key=None):
        now = int(time.time())
        claims = {"iss": issuer, "sub": subject, "aud": audience, "exp": now + expires_in, "iat": now,
                  "jti": str(uuid.uuid4()), "scope": scope}
        if not_before is not None:
            claims["nbf"] = now + not_before
        if key is None:
            key = self.rsa if algorithm == "RS256" else self.ec
        kid = "rsa-1" if algorithm == "RS256" else "ec-1"
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


def ward_message(event="order-request", source="http://placer.invalid/fhir", patient_name=None):
    bundle = message(event=event, source=source)
    if patient_name:
        bundle["entry"].append({"fullUrl": "urn:uuid:" + str(uuid.uuid4()), "resource": {
            "resourceType": "Patient", "name": [{"family": patient_name, "given": ["Rosalind"]}]}})
    return bundle


class SecureCourier(Courier):
    """A courier whose HTTP and MLLP listeners both use TLS and
    authenticate their peers."""

    def __init__(self, folder, material, keys, mllp_port, filler_port, wrong_filler_port):
        self.material = material
        self.mllp_port = mllp_port
        with open(os.path.join(folder, "jwks.json"), "w") as f:
            json.dump(keys.jwks, f)
        # The listener's certificate lives where the test can replace it.
        for name in ("server.pem", "server.key"):
            shutil.copy(material.path(name), os.path.join(folder, "live-" + name))
        outbox = os.path.join(folder, "outbox")
        routes = f"""
- route: lab-orders
  from: fhir
  allow: [lab]
  require-source-match: true
  when: {{event: 'http://example.org/fhir/message-events|order-request'}}
  to: [{{name: inbox, pattern: file, folder: {outbox}}}]
- route: ward-notes
  from: fhir
  allow: ['group:wards']
  when: {{event: 'http://example.org/fhir/message-events|ward-note'}}
  to: [{{name: inbox, pattern: file, folder: {outbox}}}]
- route: forward
  from: fhir
  when: {{event: 'http://example.org/fhir/message-events|forward'}}
  to:
    - {{name: filler, pattern: messaging, endpoint: 'https://localhost:{filler_port}/fhir', ack-timeout: 5s,
       retry: {{attempts: 1, backoff: 1s..1s}}}}
- route: forward-wrong-host
  from: fhir
  when: {{event: 'http://example.org/fhir/message-events|forward-wrong-host'}}
  to:
    - {{name: filler, pattern: messaging, endpoint: 'https://localhost:{wrong_filler_port}/fhir', ack-timeout: 5s,
       retry: {{attempts: 1, backoff: 1s..1s}}}}
- route: v2-feeds
  from: mllp
  allow: [lab]
  require-source-match: true
  to: [{{name: store, pattern: rest, interaction: upsert}}]
"""
        super().__init__(folder, routes)

    def write_config(self):
        m, folder = self.material, self.folder
        with open(self.config, "w") as f:
            f.write(f"""data-dir: {self.data}
sync-wait: 3s
hl7v2-maps: {os.path.join(REPO, 'schemas', 'hl7v2', 'maps')}
listeners:
  - name: fhir
    type: http
    address: 127.0.0.1
    port: {self.requested_port}
    authentication: required
    tls:
      cert: {folder}/live-server.pem
      key: {folder}/live-server.key
      ca: {m.ca}
      client-certificates: optional
  - name: mllp
    type: mllp
    address: 127.0.0.1
    port: {self.mllp_port}
    authentication: required
    tls:
      cert: {folder}/live-server.pem
      key: {folder}/live-server.key
      ca: {m.ca}
      client-certificates: required
outbound-tls:
  ca: {m.ca}
  cert: {m.client[0]}
  key: {m.client[1]}
security:
  tokens:
    issuer: {ISSUER}
    audience: {AUDIENCE}
    jwks: {folder}/jwks.json
  peers:
    - name: lab
      certificate: lab.hospital.example
      endpoints: [http://placer.invalid/fhir]
      v2-senders: ['ADT1^GOOD HEALTH HOSPITAL']
    - name: ward
      certificate: ward.hospital.example
      groups: [wards]
      endpoints: [http://placer.invalid/fhir]
    - name: ops
      api-key-sha256: {__import__('hashlib').sha256(API_KEY.encode()).hexdigest()}
      operator: true
      scopes: system/*.rs
    - name: lis
      token-subject: lis-client
      groups: [wards]
routes:
  - {os.path.join(folder, 'routes.yaml')}
""")


def client_context(material, cert=None, ca=None):
    context = ssl.create_default_context(cafile=ca or material.ca)
    if cert:
        context.load_cert_chain(*cert)
    return context


def request(port, method, path, material, body=None, cert=None, headers=None, ca=None):
    connection = http.client.HTTPSConnection("localhost", port, timeout=30,
                                             context=client_context(material, cert, ca))
    data = None if body is None else (body if isinstance(body, (str, bytes)) else json.dumps(body))
    all_headers = {"Content-Type": "application/fhir+json"} if data is not None else {}
    all_headers.update(headers or {})
    connection.request(method, path, body=data, headers=all_headers)
    r = connection.getresponse()
    result = (r.status, r.read(), dict(r.getheaders()))
    connection.close()
    return result


def curl(*args):
    return subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *args], capture_output=True,
                          text=True, timeout=30)


class TlsFiller(Peer):
    """A messaging filler on HTTPS (a python http.server wrapped in ssl),
    answering each message with `ok`; with `require_client` it asks for
    courier's client certificate."""

    def __init__(self, material, cert, require_client=False):
        super().__init__(lambda bundle, query: (200, response_to(bundle)))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*cert)
        if require_client:
            context.load_verify_locations(material.ca)
            context.verify_mode = ssl.CERT_REQUIRED
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)


class MllpTls:
    """An MLLP client over TLS (Python's ssl around a socket)."""

    def __init__(self, port, material, cert=None):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = client_context(material, cert).wrap_socket(raw, server_hostname="localhost")
        self.buffer = b""

    def exchange(self, text):
        self.sock.sendall(START + text.encode() + END)
        while END not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        frame, self.buffer = self.buffer.split(END, 1)
        return frame.lstrip(START).decode()

    def close(self):
        self.sock.close()


def v2_sample(name, **replace):
    with open(os.path.join(SAMPLES, name), encoding="utf-8") as f:
        text = f.read().replace("\n", "\r")
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def msa(ack):
    for line in ack.split("\r"):
        if line.startswith("MSA|"):
            return line.split("|")
    raise AssertionError("no MSA in " + ack)


class SecurityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.mkdtemp(prefix="courier-security-")
        cls.material = Material(os.path.join(cls.folder, "tls"))
        cls.keys = Keys()
        cls.filler = TlsFiller(cls.material, cls.material.server, require_client=True)
        cls.wrong_filler = TlsFiller(cls.material, cls.material.wrong_host)
        cls.mllp = free_port()
        cls.courier = SecureCourier(cls.folder, cls.material, cls.keys, cls.mllp, cls.filler.port,
                                    cls.wrong_filler.port)
        cls.port = cls.courier.port
        cls.lab = cls.material.client
        cls.ward = cls.material.other_client

    @classmethod
    def tearDownClass(cls):
        cls.courier.stop()
        cls.filler.close()
        cls.wrong_filler.close()
        shutil.rmtree(cls.folder, ignore_errors=True)

    def send(self, bundle, cert=None, headers=None):
        return request(self.port, "POST", "/fhir/$process-message", self.material, bundle, cert, headers)

    def url(self, path="/fhir/metadata"):
        return f"https://localhost:{self.port}{path}"

    # --- transport ---------------------------------------------------------

    def test_plain_http_client_is_told_to_use_https(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("GET", "/fhir/metadata")
        r = connection.getresponse()
        self.assertEqual(r.status, 400)
        self.assertIn(b"HTTPS", r.read())

    def test_curl_verifies_courier_against_its_ca(self):
        self.assertEqual(curl("--cacert", self.material.ca, self.url()).stdout, "200")
        # Without our CA, curl cannot trust the server: exit 60.
        self.assertEqual(curl(self.url()).returncode, 60)
        self.assertEqual(curl("--cacert", self.material.foreign_ca, self.url()).returncode, 60)

    def test_tls_1_1_is_refused_and_1_3_preferred(self):
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.port}", "-CAfile",
                              self.material.ca, "-brief"], input="", capture_output=True, text=True, timeout=30)
        self.assertIn("TLSv1.3", out.stdout + out.stderr)
        old = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.port}", "-tls1_1"],
                             input="", capture_output=True, text=True, timeout=30)
        self.assertNotEqual(old.returncode, 0)

    def test_client_certificates_that_fail_verification_end_the_handshake(self):
        for cert in (self.material.expired, self.material.not_yet_valid, self.material.foreign_client):
            with self.subTest(cert=os.path.basename(cert[0])):
                out = curl("--cacert", self.material.ca, "--cert", cert[0], "--key", cert[1],
                           self.url("/fhir/Patient"))
                self.assertNotEqual(out.returncode, 0)
                self.assertEqual(out.stdout, "000")

    # --- who the peer is ---------------------------------------------------

    def test_no_credentials_get_401_with_a_bearer_challenge(self):
        status, body, headers = self.send(ward_message())
        self.assertEqual(status, 401)
        self.assertEqual(json.loads(body)["issue"][0]["code"], "login")
        self.assertIn("Bearer", headers["WWW-Authenticate"])
        # Metadata stays open, so clients can discover the server.
        self.assertEqual(request(self.port, "GET", "/fhir/metadata", self.material)[0], 200)

    def test_a_certificate_of_no_known_peer_is_not_enough(self):
        status, body, _ = self.send(ward_message(), cert=self.material.unknown_client)
        self.assertEqual(status, 401)

    def test_known_peer_sends_to_its_route(self):
        status, body, _ = self.send(ward_message(), cert=self.lab)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["entry"][0]["resource"]["response"]["code"], "ok")

    def test_peer_not_allowed_on_a_route_gets_403(self):
        status, body, _ = self.send(ward_message(), cert=self.ward)
        self.assertEqual(status, 403)
        outcome = json.loads(body)["issue"][0]
        self.assertEqual(outcome["code"], "forbidden")
        self.assertIn("may not send to route 'lab-orders'", outcome["diagnostics"])
        # A group on the allow list lets the ward in elsewhere.
        self.assertEqual(self.send(ward_message(event="ward-note"), cert=self.ward)[0], 200)

    def test_peer_claiming_another_source_gets_403(self):
        status, body, _ = self.send(ward_message(source="http://ward.invalid/fhir"), cert=self.lab)
        self.assertEqual(status, 403)
        self.assertIn("may not speak for source endpoint", json.loads(body)["issue"][0]["diagnostics"])

    # --- bearer tokens and scopes -------------------------------------------

    def bearer(self, token):
        return {"Authorization": "Bearer " + token}

    def test_valid_tokens_rs256_and_es384(self):
        for algorithm in ("RS256", "ES384"):
            with self.subTest(algorithm=algorithm):
                token = self.keys.token("system/Patient.cruds system/MessageHeader.c", algorithm=algorithm)
                patient = {"resourceType": "Patient", "name": [{"family": "Token"}]}
                status, body, _ = request(self.port, "POST", "/fhir/Patient", self.material, patient,
                                          headers=self.bearer(token))
                self.assertEqual(status, 201, body)
                # The lis peer (by token subject) is in group wards.
                status, body, _ = self.send(ward_message(event="ward-note"), headers=self.bearer(token))
                self.assertEqual(status, 200, body)

    def test_bad_tokens_get_401(self):
        keys = self.keys
        cases = {
            "missing scheme": ("Token abc", None),
            "malformed": ("Bearer not-a-jwt", "not a JWT"),
            "badly signed": ("Bearer " + keys.token("system/*.*", key=keys.stranger), "signature"),
            "expired": ("Bearer " + keys.token("system/*.*", expires_in=-3600), "expired"),
            "not yet valid": ("Bearer " + keys.token("system/*.*", not_before=3600), "not valid yet"),
            "wrong audience": ("Bearer " + keys.token("system/*.*", audience="https://other.example"), "audience"),
            "wrong issuer": ("Bearer " + keys.token("system/*.*", issuer="https://evil.example"), "issuer"),
            "unknown subject": ("Bearer " + keys.token("system/*.*", subject="lab"), "not a peer courier knows"),
            "alg none": ("Bearer " + jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x",
                                                 "exp": int(time.time()) + 60}, None, algorithm="none"),
                         "accepts RS256 and ES384"),
        }
        for name, (authorization, why) in cases.items():
            with self.subTest(case=name):
                status, body, headers = request(self.port, "GET", "/fhir/Patient", self.material,
                                                headers={"Authorization": authorization})
                self.assertEqual(status, 401)
                self.assertIn('error="invalid_token"', headers["WWW-Authenticate"])
                if why:
                    self.assertIn(why, json.loads(body)["issue"][0]["diagnostics"])
                # The log never quotes a token.
                self.assertNotIn(authorization.split(" ")[-1][:40], self.courier_log())

    def test_scopes_limit_the_rest_facade(self):
        reader = self.bearer(self.keys.token("system/Patient.read system/Task.rs"))
        self.assertEqual(request(self.port, "GET", "/fhir/Patient", self.material, headers=reader)[0], 200)
        self.assertEqual(request(self.port, "GET", "/fhir/Task?status=requested", self.material, headers=reader)[0],
                         200)
        status, body, _ = request(self.port, "POST", "/fhir/Patient", self.material,
                                  {"resourceType": "Patient"}, headers=reader)
        self.assertEqual(status, 403)
        self.assertIn("no scope", json.loads(body)["issue"][0]["diagnostics"])
        self.assertEqual(request(self.port, "GET", "/fhir/Observation", self.material, headers=reader)[0], 403)
        # No MessageHeader.c: no messages.
        self.assertEqual(self.send(ward_message(event="ward-note"), headers=reader)[0], 403)
        # A transaction is all or nothing, its entries checked one by one.
        transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}]}
        writer = self.bearer(self.keys.token("system/Patient.c"))
        self.assertEqual(request(self.port, "POST", "/fhir", self.material, transaction, headers=writer)[0], 200)
        self.assertEqual(request(self.port, "POST", "/fhir", self.material, transaction, headers=reader)[0], 403)

    def test_subscriptions_only_to_what_the_peer_may_read(self):
        subscriber = self.bearer(self.keys.token("system/Subscription.cru system/Task.rs"))
        subscription = {"resourceType": "Subscription", "status": "requested", "reason": "test",
                        "criteria": "Patient?identifier=urn:mrn|1",
                        "channel": {"type": "rest-hook", "endpoint": "https://listener.invalid/hook",
                                    "payload": "application/fhir+json"}}
        status, body, _ = request(self.port, "POST", "/fhir/Subscription", self.material, subscription,
                                  headers=subscriber)
        self.assertEqual(status, 403, body)
        self.assertIn("may not read Patient", json.loads(body)["issue"][0]["diagnostics"])
        subscription["criteria"] = "Task?status=completed"
        status, body, _ = request(self.port, "POST", "/fhir/Subscription", self.material, subscription,
                                  headers=subscriber)
        self.assertEqual(status, 201, body)

    def test_the_audit_trail_cannot_be_written_through_rest(self):
        everything = self.bearer(self.keys.token("system/*.*"))
        event = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-01-01T00:00:00Z",
                 "agent": [{"requestor": True}], "source": {"observer": {"display": "x"}}}
        status, body, _ = request(self.port, "POST", "/fhir/AuditEvent", self.material, event, headers=everything)
        self.assertEqual(status, 403, body)
        self.assertEqual(request(self.port, "GET", "/fhir/AuditEvent?_count=1", self.material,
                                 headers=everything)[0], 200)

    def test_a_response_only_from_the_source_it_may_claim(self):
        bundle = ward_message(event="forward")
        self.assertEqual(self.send(bundle, cert=self.lab)[0], 200)
        # The ward may not answer in the filler's name, for the lab's request.
        forged = response_to(bundle, source="http://filler.invalid/fhir")
        status, body, _ = self.send(forged, cert=self.ward)
        self.assertEqual(status, 403, body)
        self.assertIn("may not speak for source endpoint", json.loads(body)["issue"][0]["diagnostics"])

    # --- operators -----------------------------------------------------------

    def test_operator_paths_need_an_operator(self):
        key = {"X-API-Key": API_KEY}
        self.assertEqual(request(self.port, "GET", "/metrics", self.material, headers=key)[0], 200)
        self.assertEqual(request(self.port, "GET", "/admin/conversations", self.material, headers=key)[0], 200)
        self.assertEqual(request(self.port, "GET", "/metrics", self.material, cert=self.lab)[0], 403)
        self.assertEqual(request(self.port, "GET", "/admin/conversations", self.material, cert=self.lab)[0], 403)
        self.assertEqual(request(self.port, "GET", "/metrics", self.material, headers={"X-API-Key": "guess"})[0],
                         401)

    # --- senders -------------------------------------------------------------

    def conversation_events(self, bundle_id):
        key = {"X-API-Key": API_KEY}
        status, body, _ = request(self.port, "GET", "/admin/conversations?limit=1000", self.material, headers=key)
        found = [c for c in json.loads(body) if c["bundleId"] == bundle_id]
        self.assertEqual(len(found), 1)
        status, body, _ = request(self.port, "GET", f"/admin/conversations/{found[0]['id']}", self.material,
                                  headers=key)
        return json.loads(body)

    def test_sender_verifies_the_filler_and_presents_its_certificate(self):
        bundle = ward_message(event="forward")
        status, body, _ = self.send(bundle, cert=self.lab)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["entry"][0]["resource"]["response"]["code"], "ok")
        self.assertTrue(any(m["id"] == bundle["id"] for m in self.filler.messages()))

    def test_sender_refuses_a_filler_whose_certificate_names_another_host(self):
        bundle = ward_message(event="forward-wrong-host")
        status, body, _ = self.send(bundle, cert=self.lab)
        self.assertEqual(status, 200, body)
        response = json.loads(body)
        self.assertEqual(response["entry"][0]["resource"]["response"]["code"], "transient-error")
        self.assertIn("hostname mismatch", response["entry"][1]["resource"]["issue"][0]["diagnostics"])
        self.assertFalse(any(m and m.get("id") == bundle["id"] for m in self.wrong_filler.messages()))
        detail = self.conversation_events(bundle["id"])
        self.assertEqual(detail["deliveries"][0]["state"], "parked")
        self.assertTrue(any("hostname mismatch" in e["detail"] for e in detail["timeline"]))

    def test_operator_replays_a_parked_delivery_with_an_api_key(self):
        bundle = ward_message(event="forward-wrong-host")
        self.send(bundle, cert=self.lab)
        delivery = self.conversation_events(bundle["id"])["deliveries"][0]["id"]
        command = [os.environ.get("COURIER", os.path.join(REPO, "build", "courier")), "messages", "--config",
                   self.courier.config, "replay", str(delivery)]
        env = dict(os.environ, COURIER_CA_FILE=self.material.ca)
        env.pop("COURIER_API_KEY", None)
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("COURIER_API_KEY", out.stderr)
        env["COURIER_API_KEY"] = API_KEY
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn('"replayed"', out.stdout)

    # --- MLLP over TLS -------------------------------------------------------

    def test_mllp_over_tls_with_a_known_client_certificate(self):
        client = MllpTls(self.mllp, self.material, cert=self.lab)
        try:
            ack = client.exchange(v2_sample("adt_a01.hl7", MSG00001="TLS-" + uuid.uuid4().hex[:8]))
            self.assertIn(msa(ack)[1], ("CA", "AA"), ack)
            # The same peer claiming another sending facility is refused, with an ERR segment.
            ack = client.exchange(v2_sample("adt_a01.hl7", MSG00001="TLS-" + uuid.uuid4().hex[:8],
                                            **{"GOOD HEALTH HOSPITAL": "OTHER HOSPITAL"}))
            self.assertIn(msa(ack)[1], ("CR", "AR"), ack)
            self.assertIn("may not send as application 'ADT1' of facility 'OTHER HOSPITAL'", ack)
            self.assertIn("\rERR|", ack)
        finally:
            client.close()

    def test_mllp_with_an_unknown_certificate_gets_ar(self):
        client = MllpTls(self.mllp, self.material, cert=self.material.unknown_client)
        try:
            ack = client.exchange(v2_sample("adt_a01.hl7", MSG00001="TLS-" + uuid.uuid4().hex[:8]))
            self.assertIn(msa(ack)[1], ("CR", "AR"))
            self.assertIn("not authorised", ack)
        finally:
            client.close()

    def test_mllp_without_a_client_certificate_fails_the_handshake(self):
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            client = MllpTls(self.mllp, self.material)
            client.exchange(v2_sample("adt_a01.hl7"))

    def test_mllp_send_through_an_openssl_tunnel(self):
        """Debian's mllp_send speaks plain MLLP; openssl s_client carries it
        over TLS with the lab's certificate, as stunnel would."""
        control = "TUN-" + uuid.uuid4().hex[:8]
        text = v2_sample("adt_a01.hl7", MSG00001=control)
        tunnel_port = free_port()
        listener = socket.socket()
        listener.bind(("127.0.0.1", tunnel_port))
        listener.listen(1)

        def relay():
            conn, _ = listener.accept()
            tunnel = subprocess.Popen(["openssl", "s_client", "-quiet", "-connect", f"127.0.0.1:{self.mllp}",
                                       "-CAfile", self.material.ca, "-cert", self.lab[0], "-key", self.lab[1],
                                       "-verify_return_error"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL)

            def back():
                while True:
                    data = os.read(tunnel.stdout.fileno(), 65536)
                    if not data:
                        break
                    conn.sendall(data)
            threading.Thread(target=back, daemon=True).start()
            data = conn.recv(65536)
            while data:
                tunnel.stdin.write(data)
                tunnel.stdin.flush()
                try:
                    data = conn.recv(65536)
                except OSError:
                    break
            tunnel.terminate()
        threading.Thread(target=relay, daemon=True).start()
        with tempfile.NamedTemporaryFile("w", suffix=".hl7", delete=False) as f:
            f.write(text)
        out = subprocess.run(["mllp_send", "--loose", "--file", f.name, "--port", str(tunnel_port), "127.0.0.1"],
                             capture_output=True, timeout=30)
        os.unlink(f.name)
        listener.close()
        ack = out.stdout.decode().replace("\n", "\r")
        self.assertIn("MSA|", ack)
        self.assertIn(control, ack)
        self.assertIn(msa(ack.strip("\x0b\x1c\r"))[1], ("CA", "AA"))

    # --- reload --------------------------------------------------------------

    def test_certificates_reload_on_sighup_under_load_without_dropping_messages(self):
        material = self.material
        new_cert = material.issue("server-renewed", "localhost", san="DNS:localhost,IP:127.0.0.1", server=True)
        old_der = ssl.PEM_cert_to_DER_cert(open(material.server[0]).read())
        new_der = ssl.PEM_cert_to_DER_cert(open(new_cert[0]).read())
        results, stop = [], threading.Event()

        def load(keep_alive):
            context = client_context(material, self.ward)
            connection = None
            while not stop.is_set():
                if connection is None:
                    connection = http.client.HTTPSConnection("localhost", self.port, timeout=30, context=context)
                connection.request("POST", "/fhir/$process-message", body=json.dumps(ward_message(event="ward-note")),
                                   headers={"Content-Type": "application/fhir+json"})
                r = connection.getresponse()
                r.read()
                results.append(r.status)
                if not keep_alive:
                    connection.close()
                    connection = None
            if connection:
                connection.close()
        threads = [threading.Thread(target=load, args=(k,)) for k in (True, True, False, False)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            shutil.copy(new_cert[0], os.path.join(self.folder, "live-server.pem"))
            shutil.copy(new_cert[1], os.path.join(self.folder, "live-server.key"))
            self.courier.process.send_signal(signal.SIGHUP)
            time.sleep(0.5)
            self.courier.process.send_signal(signal.SIGHUP)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertGreater(len(results), 20)
        self.assertEqual(set(results), {200})
        with socket.create_connection(("127.0.0.1", self.port)) as raw:
            with client_context(material).wrap_socket(raw, server_hostname="localhost") as tls:
                served = tls.getpeercert(binary_form=True)
        self.assertEqual(served, new_der)
        self.assertNotEqual(served, old_der)
        self.assertIn("certificates reloaded", self.courier_log())

    def test_reload_keeps_the_old_certificate_when_the_new_key_does_not_match(self):
        other = self.material.issue("mismatch", "localhost", san="DNS:localhost", server=True)
        live_key = os.path.join(self.folder, "live-server.key")
        saved = open(live_key, "rb").read()
        shutil.copy(other[1], live_key)
        try:
            self.courier.process.send_signal(signal.SIGHUP)
            wait_for(lambda: "does not match" in self.courier_log(), what="the reload to report the key")
            self.assertEqual(request(self.port, "GET", "/fhir/metadata", self.material)[0], 200)
        finally:
            open(live_key, "wb").write(saved)

    # --- audit ---------------------------------------------------------------

    def audit_events(self, query):
        status, body, _ = request(self.port, "GET", "/fhir/AuditEvent?" + query, self.material,
                                  headers={"X-API-Key": API_KEY})
        self.assertEqual(status, 200, body)
        return [e["resource"] for e in json.loads(body).get("entry", [])]

    def test_every_access_and_message_step_is_audited(self):
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        bundle = ward_message()
        self.assertEqual(self.send(bundle, cert=self.lab)[0], 200)
        self.assertEqual(self.send(ward_message())[0], 401)  # no credentials
        token = self.bearer(self.keys.token("system/Patient.cruds"))
        status, body, headers = request(self.port, "POST", "/fhir/Patient", self.material,
                                        {"resourceType": "Patient"}, headers=token)
        patient = "Patient/" + json.loads(body)["id"]
        self.assertEqual(request(self.port, "GET", "/fhir/" + patient, self.material, headers=token)[0], 200)

        def received():
            return [e for e in self.audit_events(f"agent-name=lab&subtype=received&date=ge{started}")
                    if any(x["what"].get("identifier", {}).get("value") == bundle["id"] for x in e.get("entity", []))]
        event = wait_for(received, what="the message's AuditEvent")[0]
        self.assertEqual(event["outcome"], "0")
        self.assertEqual(event["agent"][0]["network"]["address"], "127.0.0.1")
        task = next(x["what"]["reference"] for x in event["entity"] if "reference" in x["what"])
        # Its later steps name the same conversation: delivered by courier.
        steps = wait_for(lambda: [e for e in self.audit_events("entity=" + task) if e["subtype"][0]["code"] == "delivered"],
                         what="the delivery's AuditEvent")
        self.assertEqual(steps[0]["agent"][0]["name"], "courier")
        # Audit records are written in batches a moment apart: the refusal's may
        # land in a later batch than the message's steps.
        wait_for(lambda: [e for e in self.audit_events(f"subtype=unauthenticated&outcome=4&date=ge{started}")
                          if e["agent"][0]["name"] == "anonymous"], what="the refusal's AuditEvent")
        def rest_steps():
            return {e["subtype"][0]["code"] for e in self.audit_events(f"entity={patient}&agent-name=lis")}
        wait_for(lambda: rest_steps() == {"create", "read"}, what="the REST create and read AuditEvents")
        # The trail is itself protected: the lab may not read it.
        self.assertEqual(request(self.port, "GET", "/fhir/AuditEvent", self.material, cert=self.lab)[0], 403)

    def test_check_reports_unusable_tls_material(self):
        other = self.material.issue("check-other", "localhost", server=True)
        config = os.path.join(self.folder, "check.yaml")
        courier = os.environ.get("COURIER", os.path.join(REPO, "build", "courier"))
        cases = {
            f"cert: {self.material.server[0]}\n      key: {other[1]}": "does not match the certificate",
            f"cert: {self.folder}/missing.pem\n      key: {other[1]}": "cannot read the certificate",
            f"cert: {self.material.server[0]}\n      key: {self.material.server[1]}\n"
            f"      client-certificates: required": "client certificates are verified against ca",
        }
        for tls, expected in cases.items():
            with self.subTest(expected=expected):
                with open(config, "w") as f:
                    f.write(f"listeners:\n  - name: fhir\n    type: http\n    port: 0\n    tls:\n      {tls}\n")
                out = subprocess.run([courier, "check", "--config", config], capture_output=True, text=True,
                                     timeout=30)
                self.assertEqual(out.returncode, 1)
                self.assertIn(expected, out.stdout + out.stderr)

    # --- logs ----------------------------------------------------------------

    def courier_log(self):
        self.courier.log.flush()
        with open(os.path.join(self.folder, "courier.log"), encoding="utf-8", errors="replace") as f:
            return f.read()

    def test_logs_hold_no_patient_data(self):
        self.send(ward_message(event="ward-note", patient_name="Franklinova"), cert=self.ward)
        self.send(ward_message(source="http://ward.invalid/fhir", patient_name="Franklinova"), cert=self.lab)
        client = MllpTls(self.mllp, self.material, cert=self.lab)
        client.exchange(v2_sample("adt_a01.hl7", MSG00001="LOG-" + uuid.uuid4().hex[:8]))
        client.exchange(v2_sample("adt_a01.hl7", MSG00001="LOG-" + uuid.uuid4().hex[:8],
                                  **{"GOOD HEALTH HOSPITAL": "OTHER HOSPITAL"}))
        client.close()
        time.sleep(0.5)
        log = self.courier_log()
        for secret in ("Franklinova", "Rosalind", "Müller", "Jürgen", "PATID1234", "123-45-6789", "ELM STREET",
                       API_KEY):
            self.assertNotIn(secret, log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
