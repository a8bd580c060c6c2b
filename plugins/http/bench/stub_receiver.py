#!/usr/bin/env python3
"""A stub receiver for `audit bench` against the http plugin's webhook and splunk-hec kinds
(docs/benchmarks.md, "HTTP plugin"): HTTP/1.1 keep-alive, one thread per connection; reads
each body whole and answers at once. Webhook: 200 to any POST. HEC: an ackId per event
request, every ackId confirmed at once on /services/collector/ack, /services/collector/health.
It checks nothing (not a test server: plugins/http/tests/common has those).

    python3 stub_receiver.py PORT
"""

import itertools
import json
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACK_IDS = itertools.count()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without this, Nagle holds the body until
        # the client's delayed ACK (40 ms a request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.answer({"text": "HEC is healthy", "code": 17})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/services/collector/ack"):
            acks = json.loads(body)["acks"]
            self.answer({"acks": {str(a): True for a in acks}})
        elif self.path.startswith("/services/collector/event"):
            self.answer({"text": "Success", "code": 0, "ackId": next(ACK_IDS)})
        else:
            self.answer({})


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
