"""A forward proxy on loopback, as a company network puts between the connector and Sentry.

``CONNECT host:port`` opens a tunnel (the proxy sees only encrypted bytes); an absolute-form
``GET http://...`` is forwarded as one request on its own connection (``Connection: close``).
Every request line and its ``Proxy-Authorization`` are kept for the test to inspect; a proxy made
with ``refuse=407`` answers every request with that status instead.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Seen:
    line: str  # the request line, e.g. "CONNECT 127.0.0.1:443 HTTP/1.1"
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names


class ForwardProxy:
    def __init__(self, refuse: int | None = None) -> None:
        self.seen: list[Seen] = []
        self.refuse = refuse
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(65536)
            if not data:
                return
            head += data
        raw, _, rest = head.partition(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        self.seen.append(Seen(lines[0], headers))
        if self.refuse is not None:
            client.sendall(f"HTTP/1.1 {self.refuse} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            return
        method, target, _ = lines[0].split(" ", 2)
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
        else:  # absolute form: one request, forwarded in origin form
            url = urlsplit(target)
            upstream = socket.create_connection((url.hostname or "", url.port or 80))
            kept = [f"{method} {url.path}{'?' + url.query if url.query else ''} HTTP/1.1"]
            kept += [line for line in lines[1:] if not line.lower().startswith(("proxy-", "connection:"))]
            upstream.sendall(("\r\n".join([*kept, "Connection: close", "", ""])).encode("latin-1") + rest)
        _pump(client, upstream)


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    try:
        while True:
            ready, _, _ = select.select([a, b], [], [], 30)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                (b if sock is a else a).sendall(data)
    except OSError:
        return
    finally:
        b.close()
