"""The HTTP side: a threading HTTP/1.1 server, the request pipeline, faults on the wire."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import orjson

from .api import Api, ApiError, Reply, Request, match_route
from .auth import AuthError, TokenStore
from .clock import Clock
from .deprecation import BROWNOUT_DETAIL, DeprecationTable
from .faults import (
    ENDLESS_KINDS,
    GARBLED_LINK,
    Fault,
    FaultTable,
    escape_all,
    fresh_serial,
    invalid_utf8,
    link_next_without_cursor,
    no_id,
    odd_record,
    pretty_json,
    python_json,
)
from .pagination import MAX_PER_PAGE, Cursor, Page, link_header
from .ratelimit import RateLimiter
from .timeutil import BadParam

if TYPE_CHECKING:
    from .admin import Admin

__all__ = ["App", "EmulatorHTTPServer", "RequestLog", "RequestRecord"]

# A drip writes a chunk about this often (seconds); stop() is noticed between chunks.
_DRIP_TICK = 0.05
# Endless cursors start here: an offset (or page) past any list's end, so once the fault is
# over, following one answers an empty last page whichever paginator the list uses.
_ENDLESS_BASE = 1_000_000
# Answers this large or larger are gzipped for a client that accepts it, and then sent chunked,
# as Sentry's front (nginx) does: the length of a compressed stream is not known up front.
GZIP_MIN_BYTES = 1024
_CHUNK = 16 << 10
_HTML_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
             b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    route: str  # the path template, or the raw path when no route matched
    query: dict[str, list[str]]
    status: int  # 0 when the connection was reset or stalled without an answer
    host: str
    authorization_present: bool
    token_valid: bool
    duration_ms: float
    fault: str | None
    received_at: float = 0.0  # wall clock (epoch seconds) when the request line was read
    deleted: str | None = None  # delete_after_page: id (release: version) of the record it deleted


class RequestLog:
    """Thread-safe, optionally bounded, list of RequestRecord."""

    def __init__(self, maxlen: int | None = 100_000) -> None:
        self._lock = threading.Lock()
        self._items: deque[RequestRecord] = deque(maxlen=maxlen)

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._items.append(record)

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass
class _Out:
    status: int
    body: bytes
    headers: dict[str, str]
    content_type: str = "application/json"
    deleted: str | None = None  # set by the delete_after_page fault


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> _Out:
    return _Out(status, orjson.dumps(body), dict(headers or {}))


class App:
    """Everything a request goes through; shared by all handler threads."""

    def __init__(self, *, api: Api, tokens: TokenStore, clock: Clock, limiter: RateLimiter | None,
                 faults: FaultTable, log: RequestLog, latency: Callable[[], float],
                 admin: Admin | None, base_url: Callable[[], str],
                 deprecations: DeprecationTable | None = None) -> None:
        self.api, self.tokens, self.clock, self.limiter = api, tokens, clock, limiter
        self.deprecations = deprecations or DeprecationTable()
        self.faults, self.log, self.latency, self.admin = faults, log, latency, admin
        self.base_url = base_url
        self.stopping = threading.Event()

    # ------------------------------------------------------------ pipeline
    def handle(self, h: Handler, method: str) -> None:
        started = time.perf_counter()
        received_at = time.time()
        split = urlsplit(h.path)
        raw_path = split.path
        query = parse_qsl(split.query, keep_blank_values=True)
        length = int(h.headers.get("Content-Length") or 0)
        payload = h.rfile.read(length) if length else b""
        auth_header = h.headers.get("Authorization")
        token = self.tokens.lookup(auth_header)
        if raw_path.startswith("/_emulator/"):  # admin calls stay out of the request log
            self._send(h, self._admin(method, raw_path, payload))
            return
        route_name, fault_name, status, logged = raw_path, None, 0, False
        deleted: str | None = None

        def record(answered: int) -> None:
            # Logged before the answer is written: a client that has its answer finds its
            # request in the log (a stalled or reset request is logged once it ends).
            nonlocal logged
            logged = True
            self.log.add(RequestRecord(
                method=method, path=raw_path, route=route_name, query=_multi(query), status=answered,
                host=h.headers.get("Host", ""), authorization_present=bool(auth_header),
                token_valid=token is not None and not token.revoked,
                duration_ms=(time.perf_counter() - started) * 1000, fault=fault_name,
                received_at=received_at, deleted=deleted))

        try:
            matched = match_route(raw_path)
            if matched is None and not raw_path.endswith("/") and match_route(raw_path + "/"):
                # Django's APPEND_SLASH: GETs without the trailing slash are redirected.
                location = raw_path + "/" + (f"?{split.query}" if split.query else "")
                status = self._send(h, _Out(301, b"", {"Location": location}, "text/html"), log=record)
                return
            if matched is not None:
                route_name = matched[0].template
            fault = self.faults.take(raw_path)
            fault_name = fault.kind if fault else None
            if fault is not None and (fault.kind in ("reset", "stall")):
                self._drop(h, fault)
                return
            out = self._api(method, raw_path, query, matched, auth_header, fault, split.query)
            deleted = out.deleted
            if fault is not None:
                out = self._mangle(out, fault, auth_header or "", raw_path, query)
            status = self._send(h, out, fault=fault, log=record)
        finally:
            if not logged:
                record(status)

    def _api(self, method: str, raw_path: str, query: list[tuple[str, str]],
             matched: Any, auth_header: str | None, fault: Fault | None, query_string: str = "") -> _Out:
        if matched is None:
            return _json(404, {"detail": "The requested resource does not exist"})
        route, params = matched
        if method not in ("GET", "HEAD"):
            return _json(405, {"detail": f'Method "{method}" not allowed.'})
        token = self.tokens.lookup(auth_header)
        caller = token.value if token else "anonymous"
        decision = self.limiter.check(caller, route.template) if self.limiter else None
        rl_headers = decision.headers if decision else {}
        try:
            if fault is not None and fault.kind == "429":
                return _json(429, self._limit_body(route.template), self._exhausted(route.template))
            if fault is not None and fault.status is not None:
                body = {"detail": "Internal Error", "errorId": "0" * 32} if fault.status == 500 else \
                    {"detail": HTTPStatus(fault.status).phrase if fault.status in HTTPStatus._value2member_map_
                     else "Error"}
                return _json(fault.status, body, rl_headers)
            if fault is not None and fault.kind in ("html", "html_200"):
                return _Out(502 if fault.kind == "html" else 200, _HTML_502, {}, "text/html")
            if fault is not None and fault.kind == "redirect_other_host":
                location = self._other_host() + raw_path + ("?" + urlencode(query) if query else "")
                return _Out(302, b"", {"Location": location}, "text/html")
            if fault is not None and fault.kind in ("echo_token_400", "echo_token_500"):
                status = int(fault.kind[-3:])
                return _json(status, {"detail": f"Bad request from Authorization: {auth_header or ''}",
                                      "errorId": "0" * 32}, rl_headers)
            if decision is not None and not decision.allowed:
                # Sentry answers with a bare JSON string and no Retry-After.
                return _json(429, decision.body, rl_headers)
            try:
                valid = self.tokens.authenticate(auth_header, route.scope)
            except AuthError as err:
                return _json(err.status, {"detail": err.detail}, rl_headers)
            deprecated = self.deprecations.take(raw_path)
            if deprecated is not None:
                # Sentry's @deprecated wraps the endpoint method: after auth, headers on every answer.
                dep_headers, brownout = deprecated
                rl_headers = {**rl_headers, **dep_headers}
                if brownout:
                    return _json(410, {"detail": BROWNOUT_DETAIL}, rl_headers)
            req = Request(raw_path, query, params, valid, self.clock.now_us(), query_string)
            deleted = None
            try:
                with self.api.ds.lock:
                    reply: Reply = route.handler(self.api, req)
                    if fault is not None and fault.kind == "delete_after_page" and reply.status == 200 \
                            and isinstance(reply.body, list) and reply.body:
                        # The page is built; the deletion lands before the client's next request.
                        deleted = self.api.delete_listed(route.template, reply.body[0])
            except ApiError as err:
                return _json(err.status, err.body, {**rl_headers, **err.headers})
            except BadParam as err:
                return _json(400, {"detail": str(err)}, rl_headers)
            headers = dict(rl_headers)
            headers.update(reply.headers)
            if reply.page is not None:
                headers["Link"] = link_header(self.base_url(), raw_path, query, reply.page)
            out = _json(reply.status, reply.body, headers)
            out.deleted = deleted
            return out
        finally:
            delay = self.latency()
            if delay > 0:  # inside the concurrent slot, like a slow Sentry
                self.stopping.wait(delay)
            # Free the concurrent slot before the answer is written, so a client that sends its
            # next request as soon as it reads this one is never refused for concurrency.
            if decision is not None:
                decision.release()

    def _limit_body(self, template: str) -> str:
        limit, window, _ = self.limiter.limits.for_route(template) if self.limiter else (40, 1, 25)
        return f"You are attempting to use this endpoint too frequently. Limit is {limit} requests in {window} seconds"

    def _exhausted(self, template: str) -> dict[str, str]:
        limit, window, conc = self.limiter.limits.for_route(template) if self.limiter else (40, 1, 25)
        reset = (int(self.clock.time()) // window + 1) * window
        return {"X-Sentry-Rate-Limit-Limit": str(limit), "X-Sentry-Rate-Limit-Remaining": "0",
                "X-Sentry-Rate-Limit-Reset": str(reset), "X-Sentry-Rate-Limit-ConcurrentLimit": str(conc),
                "X-Sentry-Rate-Limit-ConcurrentRemaining": str(conc - 1)}

    def _mangle(self, out: _Out, fault: Fault, auth: str, raw_path: str, query: list[tuple[str, str]]) -> _Out:
        """Apply a POST kind to the real answer (wire kinds `drip`, `short_body` act in `_send`)."""
        kind = fault.kind
        if kind == "truncated_json":
            out.body = out.body[: max(1, len(out.body) // 2)]
        elif kind == "invalid_json":
            out.body = b"{'detail': not json" + out.body[:40]
        elif kind == "empty_200":
            out.status, out.body = 200, b""
        elif kind == "link_other_host" and "Link" in out.headers:
            base = self.base_url()
            out.headers["Link"] = out.headers["Link"].replace(base, self._other_host())
        elif kind == "echo_token" and out.status == 200:
            out.body = self._echo_token(out.body, auth)
        elif kind == "echo_token_escaped" and out.status == 200:
            # The same echo as JSON escapes: the same strings once read, other bytes on the wire.
            out.body = self._echo_token(out.body, auth).replace(auth.encode(), escape_all(auth)).replace(b"/", b"\\/")
        elif kind == "region_other_host" and out.status == 200:
            out.body = self._region_other_host(out.body)
        elif kind == "echo_token_link" and "Link" in out.headers:
            out.headers["Link"] = out.headers["Link"].replace("&cursor=", f"&auth={quote(auth)}&cursor=")
        else:
            self._mangle_hostile(out, fault, raw_path, query)
        return out

    def _mangle_hostile(self, out: _Out, fault: Fault, raw_path: str, query: list[tuple[str, str]]) -> None:
        """The lies of a 200: pagination headers, encodings, odd records."""
        kind = fault.kind
        if kind == "no_link":
            out.headers.pop("Link", None)
        elif kind == "garbled_link" and "Link" in out.headers:
            out.headers["Link"] = GARBLED_LINK
        elif kind == "results_true_no_cursor" and "Link" in out.headers:
            out.headers["Link"] = link_next_without_cursor(out.headers["Link"])
        elif kind in ENDLESS_KINDS and out.status == 200:
            self._endless(out, fault, raw_path, query)
        elif kind == "bad_gzip":
            out.headers["Content-Encoding"] = "gzip"  # the body stays plain JSON
        elif kind == "odd_record" and out.status == 200:
            out.body = odd_record(out.body)
        elif kind == "no_id" and out.status == 200:
            out.body = no_id(out.body)
        elif kind == "python_json":
            out.body = python_json(out.body)
        elif kind == "pretty_json":
            out.body = pretty_json(out.body)
        elif kind == "invalid_utf8" and out.status == 200:
            out.body = invalid_utf8(out.body)

    def _endless(self, out: _Out, fault: Fault, raw_path: str, query: list[tuple[str, str]]) -> None:
        """endless_cursor: the first page this fault served for the path, again; endless_empty:
        `[]`. Either way `next` says results="true" with a cursor never handed out before."""
        if fault.kind == "endless_cursor":
            with fault.lock:
                out.body = fault.pages.setdefault(raw_path, out.body)
        else:
            out.body = b"[]"
        nxt = Cursor(MAX_PER_PAGE, _ENDLESS_BASE + fresh_serial(), False)
        page = Page([], nxt, True, Cursor(0, 0, True), False)
        out.headers["Link"] = link_header(self.base_url(), raw_path, query, page)

    def _other_host(self) -> str:
        """The base URL with 127.0.0.2 for the host (same scheme and port)."""
        base = self.base_url()
        return base.replace(base.split("://", 1)[1].split(":")[0], "127.0.0.2", 1)

    def _echo_token(self, body_bytes: bytes, auth: str) -> bytes:
        body = orjson.loads(body_bytes)
        item = next((i for i in body if isinstance(i, dict)), None) if isinstance(body, list) else body
        if not isinstance(item, dict):
            return body_bytes
        item["title"] = f"{item.get('title') or ''} [echo: {auth}]"
        link = item.get("permalink") if isinstance(item.get("permalink"), str) else self.base_url() + "/"
        item["permalink"] = f"{link}?auth={auth}"
        return orjson.dumps(body)

    def _region_other_host(self, body_bytes: bytes) -> bytes:
        body = orjson.loads(body_bytes)
        if not (isinstance(body, dict) and isinstance(body.get("links"), dict)):
            return body_bytes
        base, other = self.base_url(), self._other_host()
        body["links"] = {k: v.replace(base, other) if isinstance(v, str) else v for k, v in body["links"].items()}
        return orjson.dumps(body)

    def _admin(self, method: str, path: str, payload: bytes) -> _Out:
        if self.admin is None:
            return _json(404, {"detail": "The requested resource does not exist"})
        try:
            data = orjson.loads(payload) if payload else {}
            status, body = self.admin.dispatch(method, path, data)
        except (KeyError, ValueError, TypeError) as err:
            status, body = 400, {"detail": str(err)}
        return _json(status, body)

    # ------------------------------------------------------------ wire
    def _send(self, h: Handler, out: _Out, fault: Fault | None = None, log: Callable[[int], None] | None = None) -> int:
        """Write the answer. As Sentry does, a body of `GZIP_MIN_BYTES` or more goes gzipped and
        chunked to a client that accepts gzip. Faults: `short_body` sends half the body then
        closes, `drip` writes the body at the fault's bytes_per_second (headers at once,
        Content-Length true), `chunked` sends the plain body in odd chunks with an extension and a
        trailer, `close_delimited` sends it without a length and closes after it."""
        if log is not None:
            log(out.status)
        kind = fault.kind if fault is not None else None
        short = kind == "short_body"
        body = out.body
        gzipped = kind is None and len(body) >= GZIP_MIN_BYTES and "gzip" in (h.headers.get("Accept-Encoding") or "")
        if gzipped:
            body = _gzip(body)
        chunked = gzipped or kind == "chunked"
        h.send_response(out.status)
        h.send_header("Content-Type", out.content_type)
        if gzipped:
            h.send_header("Content-Encoding", "gzip")
            h.send_header("Vary", "Accept-Encoding")
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        elif kind != "close_delimited":
            h.send_header("Content-Length", str(len(body)))
        for name, value in out.headers.items():
            h.send_header(name, value)
        if short or kind == "close_delimited" or (h.headers.get("Connection") or "").lower() == "close":
            h.send_header("Connection", "close")  # as servers say it; it also ends this connection
        h.end_headers()
        if h.command != "HEAD":
            if kind == "drip":
                self._drip(h, body, fault.bytes_per_second if fault is not None else 0.0)
            elif chunked:
                _write_chunked(h, body, _CHUNK if gzipped else 1000, odd=not gzipped)
            else:
                h.wfile.write(body[: len(body) // 2] if short else body)
        if short or kind == "close_delimited":
            h.close_connection = True
            h.wfile.flush()
            _hard_close(h.connection)  # the end of a close-delimited body
        return out.status

    def _drip(self, h: Handler, body: bytes, rate: float) -> None:
        """Write `body` at about `rate` bytes per second. Only this connection's thread waits;
        stop() cuts the body off (the connection is closed mid-body)."""
        chunk = max(1, int(rate * _DRIP_TICK))
        pause = chunk / rate
        for start in range(0, len(body), chunk):
            if start and self.stopping.wait(pause):
                h.close_connection = True
                _hard_close(h.connection)
                return
            h.wfile.write(body[start:start + chunk])

    def _drop(self, h: Handler, fault: Fault) -> None:
        if fault.kind == "stall":
            self.stopping.wait(fault.seconds)  # stop() interrupts a stall
        h.close_connection = True
        _hard_close(h.connection, reset=fault.kind == "reset")


def _gzip(body: bytes) -> bytes:
    # Level 1, nginx's default gzip_comp_level: cheap for the emulator, about 8x smaller JSON.
    packer = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return packer.compress(body) + packer.flush()


def _write_chunked(h: Handler, body: bytes, size: int, *, odd: bool) -> None:
    """`body` in chunks of `size` bytes; `odd` ones carry a chunk extension and end with a trailer
    (both legal, both to be ignored)."""
    for start in range(0, len(body), size):
        part = body[start:start + size]
        h.wfile.write(f"{len(part):x}{';ext=1' if odd else ''}\r\n".encode() + part + b"\r\n")
    h.wfile.write(b"0\r\nX-Emulator-Trailer: 1\r\n\r\n" if odd else b"0\r\n\r\n")


def _hard_close(sock: socket.socket, reset: bool = False) -> None:
    try:
        if reset:  # SO_LINGER 0: close() sends a TCP RST instead of a FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this
    # Headers and body are two writes: with Nagle's algorithm the body's last segment could
    # wait for the client's delayed ACK (~40 ms). Sentry's front proxies set TCP_NODELAY too.
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer

    def setup(self) -> None:
        ctx = self.server.ssl_context
        if ctx is not None:
            self.request.settimeout(10)
            self.request = ctx.wrap_socket(self.request, server_side=True)
        self.server.track(self.request, add=True)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        self.server.track(self.request, add=False)

    def handle(self) -> None:
        try:
            super().handle()
        except (OSError, ssl.SSLError):
            pass  # client went away, reset fault, TLS handshake failure

    def do_GET(self) -> None:
        self.server.app.handle(self, "GET")

    def do_HEAD(self) -> None:
        self.server.app.handle(self, "HEAD")

    def do_POST(self) -> None:
        self.server.app.handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.app.handle(self, "PUT")

    def do_DELETE(self) -> None:
        self.server.app.handle(self, "DELETE")

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header carries emulator time, so clients can pace on it.
        return formatdate(self.server.app.clock.time() if timestamp is None else timestamp, usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App, ssl_context: ssl.SSLContext | None) -> None:
        self.app, self.ssl_context = app, ssl_context
        self._conns: set[Any] = set()
        self._conn_lock = threading.Lock()
        self._handler_threads: list[threading.Thread] = []
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # failed TLS handshakes and dropped clients are expected; keep stderr quiet

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True)
        with self._conn_lock:
            self._handler_threads = [x for x in self._handler_threads if x.is_alive()]
            self._handler_threads.append(t)
        t.start()

    def track(self, sock: Any, add: bool) -> None:
        with self._conn_lock:
            (self._conns.add if add else self._conns.discard)(sock)

    def close_all(self, join_timeout: float = 5.0) -> None:
        """Close open keep-alive connections and join their threads."""
        with self._conn_lock:
            conns, threads = list(self._conns), list(self._handler_threads)
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + join_timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
