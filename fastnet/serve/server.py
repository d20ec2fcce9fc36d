"""A page to draw a digit on, and ``POST /predict`` for programs, served on 127.0.0.1.

The standard library's ThreadingHTTPServer: nothing to install, and its limits are the ones this
needs (one small page, one small JSON answer per request, a user or two).  Each connection gets
its own thread and a socket timeout, a body larger than MAX_BODY is refused before it is read,
and only two routes exist: no path ever reaches the file system.  The net computes under a lock
(its layers keep the last forward's arrays).
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from fastnet.errors import InputError

MAX_BODY = 4 << 20  # a drawn 280x280 PNG is a few kB; a phone photo fits too
REQUEST_TIMEOUT = 10.0  # seconds a client may take to send a request


def page_html(classes) -> bytes:
    template = resources.files("fastnet.serve").joinpath("page.html").read_text(encoding="utf-8")
    return template.replace("__CLASSES__", json.dumps(list(classes))).encode("utf-8")


class Predictor:
    """Pictures in, probabilities out, one at a time."""

    def __init__(self, loaded, recipe=None):
        self.loaded = loaded
        self.recipe = recipe or loaded.dataset
        self.lock = threading.Lock()

    def __call__(self, data: bytes) -> dict:
        from fastnet.images import as_net_input, prepare

        image = prepare(bytes(data), self.recipe)
        net = self.loaded.net
        with self.lock:
            x = net.backend.asarray(as_net_input(net, image[None]))
            probabilities = [float(p) for p in net.backend.to_numpy(net.predict_proba(x))[0]]
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        return {
            "class": best,
            "label": self.loaded.classes[best],
            "probability": probabilities[best],
            "probabilities": probabilities,
            "classes": list(self.loaded.classes),
        }


def make_handler(predictor, page: bytes, timeout=REQUEST_TIMEOUT):
    class Handler(BaseHTTPRequestHandler):
        server_version = "fastnet"
        sys_version = ""
        protocol_version = "HTTP/1.1"

        def setup(self):
            self.timeout = timeout  # StreamRequestHandler sets it on the socket
            super().setup()

        def log_message(self, format, *args):  # quiet: the terminal shows only what matters
            pass

        def _send(self, status, body: bytes, content_type):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status, payload):
            self._send(status, json.dumps(payload).encode("utf-8"), "application/json")

        def _error(self, status, message):
            self.close_connection = True
            self._json(status, {"error": message})

        def do_GET(self):
            if self.path.split("?", 1)[0] in ("/", "/index.html"):
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            elif self.path.split("?", 1)[0] == "/predict":
                self._error(HTTPStatus.METHOD_NOT_ALLOWED, "POST an image to /predict")
            else:
                self._error(HTTPStatus.NOT_FOUND, "not found: this server has only / (the page) and POST /predict")

        do_HEAD = do_GET

        def do_POST(self):
            if self.path.split("?", 1)[0] != "/predict":
                self._error(HTTPStatus.NOT_FOUND, "not found: POST images to /predict")
                return
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._error(HTTPStatus.LENGTH_REQUIRED, "send the image as the body, with a Content-Length")
                return
            if int(length) > MAX_BODY:
                self._error(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"the image is {int(length):,} bytes; at most {MAX_BODY:,} are accepted",
                )
                return
            try:
                data = self.rfile.read(int(length))
            except OSError:  # the client was too slow or went away
                self.close_connection = True
                return
            if len(data) < int(length):
                self._error(HTTPStatus.BAD_REQUEST, "the body is shorter than its Content-Length")
                return
            try:
                answer = predictor(data)
            except InputError as exc:
                self._error(HTTPStatus.BAD_REQUEST, f"the image {exc}")
                return
            self._json(HTTPStatus.OK, answer)

        def _other(self):
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "only GET / and POST /predict are served")

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other

    return Handler


def make_server(loaded, host="127.0.0.1", port=8000, recipe=None, timeout=REQUEST_TIMEOUT):
    predictor = Predictor(loaded, recipe)
    server = ThreadingHTTPServer((host, port), make_handler(predictor, page_html(loaded.classes), timeout))
    server.daemon_threads = True  # Ctrl-C does not wait for a stalled client
    return server
