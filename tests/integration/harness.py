"""Real processes on loopback for courier's integration tests: a courier
engine started from a config written per test, a scriptable filler and a
placer's inbox (both small HTTP servers), and a FHIR message factory."""
import copy
import http.client
import http.server
import json
import os
import signal
import socketserver
import subprocess
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COURIER = os.environ.get("COURIER", os.path.join(ROOT, "build", "courier"))
EVENT_SYSTEM = "http://example.org/fhir/message-events"


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def message(event="order-request", patient="Patient/p1", source="http://placer.invalid/fhir", bundle_id=None,
            header_id=None, response=None, extra_header=None):
    """A small valid R4 message Bundle: a MessageHeader and a ServiceRequest."""
    bundle_id = bundle_id or str(uuid.uuid4())
    header_id = header_id or str(uuid.uuid4())
    request_id = str(uuid.uuid4())
    header = {
        "resourceType": "MessageHeader", "id": header_id,
        "eventCoding": {"system": EVENT_SYSTEM, "code": event},
        "source": {"endpoint": source},
        "focus": [{"reference": "urn:uuid:" + request_id}],
    }
    if response:
        header["response"] = response
    if extra_header:
        header.update(extra_header)
    return {
        "resourceType": "Bundle", "id": bundle_id, "type": "message",
        "entry": [
            {"fullUrl": "urn:uuid:" + header_id, "resource": header},
            {"fullUrl": "urn:uuid:" + request_id, "resource": {
                "resourceType": "ServiceRequest", "id": request_id, "status": "active", "intent": "order",
                "subject": {"reference": patient}}},
        ],
    }


def response_to(request, code="ok", source="http://filler.invalid/fhir"):
    """The filler's response message to `request` (a dict)."""
    header = request["entry"][0]["resource"]
    response_id = str(uuid.uuid4())
    return {
        "resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "message",
        "entry": [{"fullUrl": "urn:uuid:" + response_id, "resource": {
            "resourceType": "MessageHeader", "id": response_id,
            "eventCoding": copy.deepcopy(header["eventCoding"]),
            "source": {"endpoint": source},
            "response": {"identifier": header["id"], "code": code}}}],
    }


def header_of(bundle):
    return bundle["entry"][0]["resource"]


def post(port, path, body, content_type="application/fhir+json", headers=None, timeout=30):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    all_headers = {"Content-Type": content_type}
    all_headers.update(headers or {})
    connection.request("POST", path, body=data, headers=all_headers)
    r = connection.getresponse()
    result = (r.status, r.read(), dict(r.getheaders()))
    connection.close()
    return result


# A FHIR REST interaction with courier's base: (status, parsed body or
# None, headers by lower-case name).
def call(port, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    data = None if body is None else json.dumps(body)
    all_headers = dict(headers or {})
    if data is not None:
        all_headers["Content-Type"] = "application/fhir+json"
    connection.request(method, "/fhir/" + path, body=data, headers=all_headers)
    r = connection.getresponse()
    raw = r.read()
    connection.close()
    return r.status, (json.loads(raw) if raw else None), {k.lower(): v for k, v in r.getheaders()}


def get(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path)
    r = connection.getresponse()
    result = (r.status, r.read())
    connection.close()
    return result


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Peer:
    """An HTTP peer on a free port that records every POST and PUT (its
    body parsed as JSON, `bundle`) and answers with
    `behaviour(bundle, query) -> (status, body_dict_or_None)`."""

    def __init__(self, behaviour=None, port=0):
        self.received = []
        self.lock = threading.Lock()
        self.behaviour = behaviour or (lambda bundle, query: (204, None))
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                bundle = json.loads(raw) if raw else None
                path, _, query = self.path.partition("?")
                with peer.lock:
                    peer.received.append({"method": self.command, "path": path, "query": query,
                                          "bundle": bundle, "raw": raw, "headers": dict(self.headers)})
                status, body = peer.behaviour(bundle, query)
                data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_PUT = do_POST  # a rest-hook notification with its payload

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}/fhir"

    def messages(self):
        with self.lock:
            return [r["bundle"] for r in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Courier:
    """A courier engine run from a config and route files written into
    `folder`; `routes` is YAML text."""

    def __init__(self, folder, routes, extra_config="", port=0):
        self.folder = folder
        self.data = os.path.join(folder, "data")
        self.config = os.path.join(folder, "courier.yaml")
        with open(os.path.join(folder, "routes.yaml"), "w") as f:
            f.write(routes)
        self.requested_port = port
        self.extra_config = extra_config
        self.process = None
        self.port = None
        self.start()

    def write_config(self):
        with open(self.config, "w") as f:
            f.write(f"data-dir: {self.data}\n"
                    f"listeners:\n  - name: fhir\n    type: http\n    address: 127.0.0.1\n"
                    f"    port: {self.requested_port}\n"
                    f"routes:\n  - {os.path.join(self.folder, 'routes.yaml')}\n" + self.extra_config)

    def start(self):
        self.write_config()
        self.log = open(os.path.join(self.folder, "courier.log"), "ab")
        self.process = subprocess.Popen([COURIER, "run", "--config", self.config], stderr=subprocess.PIPE)
        lines = []
        while True:
            line = self.process.stderr.readline().decode()
            if not line:
                raise AssertionError("courier did not start:\n" + "".join(lines))
            lines.append(line)
            if "listener fhir: http on" in line or "listener fhir: https on" in line:
                self.port = int(line.split(":")[-1].split(",")[0])
            if line == "courier: ready\n":
                break
        # Keep the port across restarts, so that peers can keep using it.
        self.requested_port = self.port
        threading.Thread(target=self._drain, args=(self.process,), daemon=True).start()

    def _drain(self, process):
        for line in process.stderr:
            self.log.write(line)
            self.log.flush()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            code = self.process.wait(timeout=20)
            if code != 0:
                self.log.flush()
                with open(self.log.name, "rb") as log:
                    tail = log.read()[-3000:].decode(errors="replace")
                raise AssertionError(f"courier exited with {code} on SIGTERM; its log ends:\n{tail}")
        self._closed()

    def kill(self):
        self.process.kill()
        self.process.wait()
        self._closed()

    def _closed(self):
        if self.process:
            self.process.stderr.close()
        self.process = None
        self.log.close()

    def restart(self):
        self.stop()
        self.start()

    def process_message(self, bundle, query="", headers=None, content_type="application/fhir+json"):
        status, body, response_headers = post(self.port, "/fhir/$process-message" + query, bundle,
                                              content_type=content_type, headers=headers)
        return status, body

    def conversations(self, **filters):
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        status, body = get(self.port, "/admin/conversations?" + query)
        assert status == 200, body
        return json.loads(body)

    def conversation(self, conversation_id):
        status, body = get(self.port, f"/admin/conversations/{conversation_id}")
        assert status == 200, body
        return json.loads(body)

    def metrics(self):
        return get(self.port, "/metrics")[1].decode()
