"""A total time limit for one HTTP download, not only a limit on each silence.

A socket timeout bounds each wait for data, so a mirror that sends one byte every few seconds
never trips it.  ``Deadline`` shuts down every socket its opener connects once the time is up;
that wakes any read blocked on them (status line, headers, redirects or body alike), and the
download ends with ``expired`` set.  (A TLS handshake is bounded by the socket timeout alone:
the socket is watched once it is set up.)
"""

from __future__ import annotations

import http.client
import socket
import threading
import urllib.request


class Deadline:
    """``with Deadline(seconds) as deadline: deadline.opener().open(url, timeout=...)``."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.expired = False
        self._sockets = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()

    def watch(self, sock):
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self):
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def opener(self):
        """A urllib opener whose HTTP and HTTPS connections this deadline watches."""
        watch = self.watch

        class Connection(http.client.HTTPConnection):
            def connect(self):
                super().connect()
                watch(self.sock)

        class SecureConnection(http.client.HTTPSConnection):
            def connect(self):
                super().connect()
                watch(self.sock)

        class Handler(urllib.request.HTTPHandler):
            def http_open(self, req):
                return self.do_open(Connection, req)

        class SecureHandler(urllib.request.HTTPSHandler):
            def https_open(self, req):
                return self.do_open(SecureConnection, req)

        # Only HTTP(S): build_opener would add FTP, file and data handlers, and a redirect to
        # ftp:// would then connect outside this deadline's watch, file:// read local files.
        opener = urllib.request.OpenerDirector()
        for handler in (
            Handler,
            SecureHandler,
            urllib.request.HTTPDefaultErrorHandler,
            urllib.request.HTTPRedirectHandler,
            urllib.request.HTTPErrorProcessor,
            urllib.request.UnknownHandler,
        ):
            opener.add_handler(handler())
        return opener


def _shut(sock):
    try:  # the plain socket's shutdown, also for TLS: the reading thread still owns the TLS state
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed
