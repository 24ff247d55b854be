"""Benchmark suite: our connector against airbyte-source-sentry==0.6.11, side by side.

Not a test: numbers, never assertions. One command:

    .venv/bin/python bench/run.py [--quick] [--only NAME[,NAME...]] [--no-peer] [--out PATH]

Scenarios (``--only`` names): spec, full_sync, full_sync_windows, self_hosted, org, cpu, memory,
incremental, sync (``sync`` into DuckDB beside ``read`` and PyAirbyte: bench/bench_load.py's
measure), events_paths (events per minute per path on sentry.io's limits: bench/events_paths.py's).
See docs/benchmarks.md for what each measures and how the rate-limit lower bound is computed;
``--write-docs`` also renders issue 19's targets from the results (bench/targets.py).

Everything runs sequentially (the machine has 2 cores). Each connector run is a separate
process (``source-sentry read``) with its stdout drained by a counting reader; its CPU time
comes from ``os.wait4`` on that process alone, its peak RSS from its own ``VmHWM``. The emulator always runs as its
own process (``python -m sentry_emulator --admin``): a fresh one per rate-limited run, so
the two connectors never share a rate-limit window, and its memory and CPU are never counted.
Requests are read from the emulator's request log (``GET /_emulator/requests``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import select
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import bench_load  # the sync scenario's measure; a /proc status reader
import targets  # issue 19's targets, judged from the results

if __name__ == "__main__":
    # bench/events_paths.py imports this file as `run`: one module, not a second copy of it.
    sys.modules.setdefault("run", sys.modules[__name__])

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PEER_VENV = BENCH / ".peer-venv"
PEER_PACKAGE = "airbyte-source-sentry==0.6.11"
OURS_VENV = BENCH / ".ours-venv"
PY = sys.executable  # the project's venv python: runs the emulator
EVENTS_ROUTE = "/api/0/projects/{org}/{project}/events/"
# Events per page of a full=true list: Sentry's cap since 2026-08/09 (getsentry/sentry #122718,
# #123694), the emulator's default. Scenario sizes are set in event pages times this.
FULL_PAGE = 10

# Sentry's live limits as the emulator's "sentry" preset sets them.
SENTRY_LIMITS = {"default": (40, 1, 25), EVENTS_ROUTE: (60, 60, 1)}
# The peer's five streams: side-by-side runs read these from both connectors. Ours has more
# (teams, members, issue_events, ...); "ours_all" rows read its whole catalog.
COMPARABLE = ["events", "issues", "projects", "releases", "project_detail"]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- machine


def machine_info() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    peer_py = _peer_python_version()
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "source_sentry", "sentry_emulator"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head, dirty = "?", ""
    return {
        "git_head": head
        + ("+uncommitted changes in source_sentry/sentry_emulator" if dirty else ""),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python_ours": platform.python_version(),
        "python_peer": peer_py,
        "kernel": platform.release(),
    }


def _peer_python_version() -> str | None:
    py = PEER_VENV / "bin" / "python"
    if not py.exists():
        return None
    out = subprocess.run(
        [str(py), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return out.stdout.strip() or None


# --------------------------------------------------------------------------- peer venv


def ensure_peer_venv() -> Path:
    """Create bench/.peer-venv with airbyte-source-sentry==0.6.11 (needs Python < 3.12)."""
    exe = PEER_VENV / "bin" / "source-sentry"
    if exe.exists():
        return exe
    base = None
    for cand in ("python3.11", "python3.10", "python3"):
        path = shutil.which(cand)
        if not path:
            continue
        ver = subprocess.run(
            [path, "-c", "import sys; print(sys.version_info[:2] < (3, 12))"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.strip()
        if ver == "True":
            base = path
            break
    if base is None:
        raise SystemExit(
            "the peer needs a Python < 3.12 (python3.11 or python3.10) on PATH"
        )
    log(
        f"creating the peer venv {PEER_VENV} with {base} and installing {PEER_PACKAGE} (~90 packages)"
    )
    subprocess.run([base, "-m", "venv", str(PEER_VENV)], check=True, timeout=300)
    subprocess.run(
        [str(PEER_VENV / "bin" / "pip"), "install", "-q", PEER_PACKAGE],
        check=True,
        timeout=1800,
    )
    if not exe.exists():
        raise SystemExit(
            f"{PEER_PACKAGE} installed no source-sentry entry point in {PEER_VENV}/bin"
        )
    return exe


def ensure_ours_venv() -> Path:
    """Install this working tree into bench/.ours-venv as users install it (a built wheel,
    its bytecode compiled by pip), so both connectors start the same way; the project's
    editable .venv would compile our modules on every start when bytecode is not written."""
    exe = OURS_VENV / "bin" / "source-sentry"
    pip = OURS_VENV / "bin" / "pip"
    if not pip.exists():
        log(f"creating {OURS_VENV}")
        subprocess.run([PY, "-m", "venv", str(OURS_VENV)], check=True, timeout=300)
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # stale setuptools output would ride along
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        [str(pip), "install", "-q", "--force-reinstall", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
        cwd=BENCH,
        check=False,
    )
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"installing the connector into {OURS_VENV} failed:\n{done.stderr[-2000:]}")
    return exe


class PeerCA:
    """The peer's requests ignores REQUESTS_CA_BUNDLE: write certifi's bundle + the emulator CA."""

    def __init__(self) -> None:
        py = PEER_VENV / "bin" / "python"
        where = subprocess.run(
            [str(py), "-c", "import certifi; print(certifi.where())"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        self.bundle = Path(where)
        self.pristine = self.bundle.with_name(self.bundle.name + ".pristine")
        if not self.pristine.exists():
            shutil.copyfile(self.bundle, self.pristine)

    def trust(self, ca_path: str) -> None:
        data = (
            self.pristine.read_bytes()
            + b"\n# sentry-emulator (bench/run.py)\n"
            + Path(ca_path).read_bytes()
        )
        self.bundle.write_bytes(data)


# --------------------------------------------------------------------------- emulator


class Emu:
    """The emulator in its own process, with the admin paths on for the request log."""

    def __init__(
        self,
        *,
        tls: bool = False,
        projects: int = 1,
        events: int = 300,
        issues: int = 40,
        releases: int = 25,
        rate_limits: str = "none",
        latency_ms: float = 0.0,
        days: float = 30,
        full_page_size: int = FULL_PAGE,
        extra: list[str] | None = None,
    ) -> None:
        self.args = [
            PY,
            "-m",
            "sentry_emulator",
            "--port",
            "0",
            "--admin",
            "--seed",
            "1",
            "--projects",
            str(projects),
            "--events-per-project",
            str(events),
            "--issues-per-project",
            str(issues),
            "--releases",
            str(releases),
            "--days",
            str(days),
            "--rate-limits",
            rate_limits,
            "--latency-ms",
            str(latency_ms),
            "--full-page-size",
            str(full_page_size),
        ]
        if tls:
            self.args.append("--tls")
        self.args += extra or []
        self.desc = {
            "projects": projects,
            "events_per_project": events,
            "issues_per_project": issues,
            "releases": releases,
            "rate_limits": rate_limits,
            "latency_ms": latency_ms,
            "full_page_size": full_page_size,
            "tls": tls,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self._ctx: ssl.SSLContext | None = None

    def __enter__(self) -> Emu:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 300.0) -> None:
        started = time.time()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the emulator
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=self._stderr, cwd=ROOT
        )
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        line = b""
        while not line.endswith(b"\n"):
            left = timeout - (time.time() - started)
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                self._stderr.seek(0)
                raise RuntimeError(
                    f"the emulator did not start: {self._stderr.read()[-2000:]!r}"
                )
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    continue
                line += chunk
        self.info = json.loads(line)
        self.startup_seconds = time.time() - started
        if self.info.get("ca_cert"):
            self._ctx = ssl.create_default_context(cafile=self.info["ca_cert"])

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    @property
    def base_url(self) -> str:
        return self.info["base_url"]

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def _admin(self, method: str, path: str) -> Any:
        req = urllib.request.Request(self.base_url + path, method=method)
        with urllib.request.urlopen(req, timeout=120, context=self._ctx) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def requests(self) -> list[dict[str, Any]]:
        return self._admin("GET", "/_emulator/requests")

    def clear_requests(self) -> None:
        self._admin("DELETE", "/_emulator/requests")

    def now(self) -> float:
        iso = self._admin("GET", "/_emulator/now")["now"]
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --------------------------------------------------------------------------- connectors


class Connector:
    skip_streams: tuple[str, ...] = ()

    def __init__(self, name: str, exe: Path) -> None:
        self.name, self.exe = name, exe

    def config(self, emu: Emu, project: str | None) -> dict[str, Any]:
        raise NotImplementedError


class Ours(Connector):
    def __init__(self, exe: Path) -> None:
        super().__init__("ours", exe)

    def config(self, emu: Emu, project: str | None) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "auth_token": emu.info["token"],
            "organization": emu.info["organization"],
            "hostname": emu.base_url,
        }
        if project:
            cfg["project"] = project
        if emu.info.get("ca_cert"):
            cfg["ca_bundle"] = emu.info["ca_cert"]
        return cfg


class Peer(Connector):
    # Its `projects` stream reads the deprecated GET /api/0/projects/, which the emulator does
    # not serve (404, and the whole sync then exits 1): left out of the peer's catalog.
    skip_streams = ("projects",)

    def __init__(self, exe: Path) -> None:
        super().__init__("peer", exe)
        self.ca = PeerCA()

    def config(self, emu: Emu, project: str | None) -> dict[str, Any]:
        if not emu.info.get("ca_cert"):
            raise RuntimeError(
                "the peer forces https: start the emulator with tls=True"
            )
        self.ca.trust(emu.info["ca_cert"])
        assert project, "the peer reads exactly one project"
        return {
            "auth_token": emu.info["token"],
            "hostname": f"127.0.0.1:{emu.port}",
            "organization": emu.info["organization"],
            "project": project,
        }


class RunResult(dict):
    pass


def _vm_hwm_kib(pid: int) -> int:
    """The peak RSS of a live process so far (``VmHWM``, KiB; 0 once it is gone).

    Not wait4's ``ru_maxrss``: Linux keeps a process's high-water mark across ``exec``, so a
    child forked from this runner reports at least the runner's own RSS at the fork (measured:
    ``/bin/true`` from a runner holding 200 MB, 211 MB; the ``memory`` scenario, 43.6 MB at every
    size, the runner's). VmHWM belongs to the process's memory after ``exec`` alone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return bench_load.status_kib(text, "VmHWM") or 0  # a zombie's memory is gone: no VmHWM


def run_process(
    cmd: list[str],
    timeout: float,
    *,
    keep_states: bool = False,
    env: dict[str, str] | None = None,
) -> RunResult:
    """Run ``cmd``; drain its stdout counting records; CPU and peak RSS (VmHWM, sampled every
    20 ms) of that process only."""
    started = time.perf_counter()
    t0 = time.time()
    err = tempfile.TemporaryFile()  # noqa: SIM115 - closed below, after the process ends
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=err,
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    counts: Counter[str] = Counter()
    states: dict[str, Any] = {}
    other: list[str] = []
    nbytes = [0]

    def reader() -> None:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        rest = b""
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            nbytes[0] += len(chunk)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                _classify(line, counts, states, other, keep_states)
        if rest.strip():
            _classify(rest, counts, states, other, keep_states)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    timed_out = False
    status, usage = 0, None
    deadline = started + timeout
    peak_kib = 0
    while True:
        peak_kib = max(peak_kib, _vm_hwm_kib(proc.pid))
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    th.join(timeout=30)
    err.seek(0)
    stderr_tail = err.read()[-3000:].decode(errors="replace")
    err.close()
    return RunResult(
        cmd=cmd[1] if len(cmd) > 1 else cmd[0],
        rc=proc.returncode,
        timed_out=timed_out,
        wall_s=wall,
        t0=t0,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        cpu_s=usage.ru_utime + usage.ru_stime,
        maxrss_mb=(peak_kib or usage.ru_maxrss) / 1024,
        records=sum(counts.values()),
        records_by_stream=dict(counts),
        stdout_mb=nbytes[0] / 1e6,
        states=states,
        messages=other[-12:],
        stderr_tail=stderr_tail if proc.returncode else stderr_tail[-400:],
    )


def _classify(
    line: bytes,
    counts: Counter[str],
    states: dict[str, Any],
    other: list[str],
    keep_states: bool,
) -> None:
    head = line[:80]
    if b'"RECORD"' in head:
        i = line.find(b'"stream":')
        if i >= 0:
            j = line.find(b'"', i + 9)
            k = line.find(b'"', j + 1)
            counts[line[j + 1 : k].decode()] += 1
        else:
            counts["?"] += 1
        return
    if b'"STATE"' in head:
        if keep_states:
            msg = json.loads(line)
            st = msg.get("state", {})
            name = (
                (st.get("stream") or {}).get("stream_descriptor", {}).get("name", "?")
            )
            states[name] = st
        return
    if len(other) < 400:
        text = line[:600].decode(errors="replace")
        if b'"STREAM_STATUS"' in head or b'"stream_status"' in line[:200]:
            return
        other.append(text)


def discover_catalog(
    conn: Connector, cfg_path: Path, incremental: bool = True
) -> dict[str, Any]:
    out = subprocess.run(
        [str(conn.exe), "discover", "--config", str(cfg_path)],
        capture_output=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    catalog = None
    for line in out.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("type") == "CATALOG":
            catalog = msg["catalog"]
    if catalog is None:
        raise RuntimeError(
            f"{conn.name} discover failed: {out.stdout[-1000:]!r} {out.stderr[-1000:]!r}"
        )
    streams = []
    for s in catalog["streams"]:
        modes = s.get("supported_sync_modes", ["full_refresh"])
        mode = (
            "incremental" if incremental and "incremental" in modes else "full_refresh"
        )
        entry: dict[str, Any] = {
            "stream": s,
            "sync_mode": mode,
            "destination_sync_mode": "append",
        }
        if mode == "incremental" and s.get("default_cursor_field"):
            entry["cursor_field"] = s["default_cursor_field"]
        streams.append(entry)
    return {"streams": streams}


_CATALOGS: dict[str, dict[str, Any]] = {}


def read(
    conn: Connector,
    emu: Emu,
    workdir: Path,
    *,
    project: str | None,
    timeout: float,
    state: list[Any] | None = None,
    keep_states: bool = False,
    streams: list[str] | str = "comparable",
) -> RunResult:
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / f"{conn.name}-config.json"
    cfg.write_text(json.dumps(conn.config(emu, project)))
    key = conn.name
    if key not in _CATALOGS:  # discover once per connector: the catalog is static
        _CATALOGS[key] = discover_catalog(conn, cfg)
    catalog = json.loads(json.dumps(_CATALOGS[key]))
    if streams != "all":
        wanted = COMPARABLE if streams == "comparable" else streams
        catalog["streams"] = [
            s for s in catalog["streams"] if s["stream"]["name"] in wanted
        ]
    catalog["streams"] = [
        s for s in catalog["streams"] if s["stream"]["name"] not in conn.skip_streams
    ]
    cat = workdir / f"{conn.name}-catalog.json"
    cat.write_text(json.dumps(catalog))
    cmd = [str(conn.exe), "read", "--config", str(cfg), "--catalog", str(cat)]
    if state is not None:
        st = workdir / f"{conn.name}-state.json"
        st.write_text(json.dumps(state))
        cmd += ["--state", str(st)]
    res = run_process(cmd, timeout, keep_states=keep_states)
    res["connector"] = conn.name
    res["project"] = project
    res["streams"] = [s["stream"]["name"] for s in catalog["streams"]]
    if res["rc"] != 0 or res["timed_out"]:
        log(
            f"  {conn.name} read exited {res['rc']} (timed out: {res['timed_out']}); last message: "
            f"{(res['messages'] or [''])[-1][:300]} stderr: {res['stderr_tail'][-300:]!r}"
        )
    return res


# --------------------------------------------------------------------------- request-log analysis


def summarize_requests(reqs: list[dict[str, Any]]) -> dict[str, Any]:
    by_route: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    distinct_ok: set[tuple[str, str]] = set()
    dup = 0
    dups: Counter[str] = Counter()
    for r in reqs:
        by_route[r["route"]] += 1
        statuses[str(r["status"])] += 1
        if r["status"] == 200:
            key = (r["path"], _query_key(r["query"]))
            if key in distinct_ok:
                dup += 1
                dups[r["path"] + ("?" + key[1] if key[1] else "")] += 1
            distinct_ok.add(key)
    return {
        "total": len(reqs),
        "by_route": dict(sorted(by_route.items(), key=lambda kv: -kv[1])),
        "status": dict(statuses),
        "429": statuses.get("429", 0),
        "non_200": sum(v for k, v in statuses.items() if k != "200"),
        "duplicate_200": dup,
        "duplicates": dict(dups.most_common(8)),
    }


def _query_key(query: dict[str, list[str]], drop: tuple[str, ...] = ()) -> str:
    items = sorted((k, v) for k, vs in query.items() if k not in drop for v in vs)
    return urlencode(items)


def min_time_for_class(
    service: list[float], limit: int, window: float, conc: int, t0: float
) -> float:
    """Earliest finish of requests started no earlier than epoch ``t0``, each taking its
    ``service`` seconds, under ``limit`` per fixed window (aligned on the epoch, as Sentry and
    the emulator do) and ``conc`` at a time. Greedy (start each as early as allowed) is optimal
    for equal service times and a close bound otherwise."""
    if not service:
        return 0.0
    slots = [t0] * max(1, conc)  # when each concurrent slot is next free
    counts: dict[int, int] = defaultdict(int)
    end = t0
    for dur in service:
        i = slots.index(min(slots))
        t = slots[i]
        w = math.floor(t / window)
        while counts[w] >= limit:
            w += 1
            t = w * window
        counts[w] += 1
        slots[i] = t + dur
        end = max(end, t + dur)
    return end - t0


def lower_bound(
    reqs: list[dict[str, Any]],
    t0: float,
    latency: float,
    limits: dict[str, tuple[int, int, int]] | None,
) -> dict[str, Any]:
    """The shortest time the emulator's limits allow for the requests a run needed.

    Needed = the distinct successful requests the run made (its 429s and repeated requests
    are waste, not need). Each request takes at least its service time: ``latency`` for the
    pure bound, the emulator's measured answer time (latency + generating the page) for the
    service bound. Per limit class (the events route; everything else), the greedy schedule
    from the run's own start time ``t0`` (so the window phase is the one the run met); and
    every paginated list is a chain whose pages cannot overlap (each needs the previous
    page's cursor): the sum of its pages' times. Bound = the largest of these.
    """
    needed: dict[tuple[str, str], dict[str, Any]] = {}
    for r in reqs:
        if r["status"] == 200:
            needed.setdefault((r["path"], _query_key(r["query"])), r)
    out: dict[str, Any] = {"needed": len(needed)}
    for label, service_of in (
        ("latency", lambda r: latency),
        ("service", lambda r: r["duration_ms"] / 1000),
    ):
        classes: dict[str, list[float]] = defaultdict(list)
        chains: dict[tuple[str, str], float] = defaultdict(float)
        for r in needed.values():
            cls = EVENTS_ROUTE if r["route"] == EVENTS_ROUTE else "default"
            classes[cls].append(service_of(r))
            chains[(r["path"], _query_key(r["query"], drop=("cursor",)))] += service_of(
                r
            )
        parts: dict[str, float] = {}
        for cls, service in classes.items():
            if limits:
                lim, win, conc = limits[cls]
                parts[f"{cls} x{len(service)}"] = min_time_for_class(
                    service, lim, win, conc, t0
                )
            else:
                parts[f"{cls} x{len(service)}"] = max(
                    service
                )  # unlimited: everything in parallel
        if chains:
            key = max(chains, key=chains.__getitem__)
            parts[f"longest page chain {key[0]}"] = chains[key]
        out[f"{label}_bound_s"] = max(parts.values()) if parts else 0.0
        out[f"{label}_parts"] = parts
    out["bound_s"] = out["service_bound_s"]
    # The events pages read one after another (one time window): what parallel windows save.
    out["events_serial_s"] = sum(
        r["duration_ms"] / 1000 for r in needed.values() if r["route"] == EVENTS_ROUTE
    )
    return out


# --------------------------------------------------------------------------- scenarios


def scen_spec(conns: list[Connector], opts: argparse.Namespace) -> dict[str, Any]:
    n = 3 if opts.quick else 7
    out: dict[str, Any] = {"runs": n}
    for c in conns:
        run_process(
            [str(c.exe), "spec"], 120
        )  # warm the page cache / bytecode once, not counted
        walls, cpus = [], []
        for _ in range(n):
            r = run_process([str(c.exe), "spec"], 120)
            walls.append(r["wall_s"])
            cpus.append(r["cpu_s"])
        out[c.name] = {
            "median_wall_s": statistics.median(walls),
            "walls": walls,
            "median_cpu_s": statistics.median(cpus),
            "maxrss_mb": r["maxrss_mb"],
        }
        log(f"  spec {c.name}: median {out[c.name]['median_wall_s']:.3f} s")
    return out


def _sync_once(
    conn: Connector,
    emu_kwargs: dict[str, Any],
    workdir: Path,
    timeout: float,
    latency: float,
    streams: str = "comparable",
) -> dict[str, Any]:
    with Emu(tls=True, **emu_kwargs) as emu:
        project = emu.info["projects"][0]
        emu.clear_requests()
        res = read(
            conn, emu, workdir, project=project, timeout=timeout, streams=streams
        )
        reqs = emu.requests()
    summary = summarize_requests(reqs)
    bound = lower_bound(
        reqs,
        res["t0"],
        latency / 1000,
        SENTRY_LIMITS if emu_kwargs.get("rate_limits") == "sentry" else None,
    )
    row = {
        k: res[k]
        for k in (
            "rc",
            "timed_out",
            "wall_s",
            "cpu_s",
            "maxrss_mb",
            "records",
            "records_by_stream",
        )
    }
    row.update(
        requests=summary,
        bound=bound,
        ratio_to_bound=res["wall_s"] / bound["bound_s"] if bound["bound_s"] else None,
        ratio_to_latency_bound=res["wall_s"] / bound["latency_bound_s"]
        if bound["latency_bound_s"]
        else None,
        errors=[m for m in res["messages"] if '"ERROR"' in m or '"FATAL"' in m][-3:],
    )
    row["streams"] = res["streams"]
    log(
        f"  {conn.name}{'' if streams == 'comparable' else ' (' + streams + ' streams)'}: {res['wall_s']:.1f} s, {summary['total']} requests ({summary['429']} x 429), "
        f"{res['records']} records, bound {bound['bound_s']:.1f} s, rc {res['rc']}"
    )
    return row


def scen_full_sync(
    conns: list[Connector],
    opts: argparse.Namespace,
    *,
    windows: bool = False,
    self_hosted: bool = False,
) -> dict[str, Any]:
    latency = 30.0
    if self_hosted:
        # No rate-limit headers: the connector may read a backfill in parallel time windows.
        sizes = {"events": 200 * FULL_PAGE, "issues": 500, "releases": 50}  # 200 event pages
    elif windows:
        sizes = {
            "events": 150 * FULL_PAGE,
            "issues": 2000,
            "releases": 300,
        }  # 150 event pages: three 60-s windows
    elif opts.quick:
        sizes = {"events": 20 * FULL_PAGE, "issues": 500, "releases": 100}  # 20 event pages
    else:
        sizes = {"events": 50 * FULL_PAGE, "issues": 2000, "releases": 300}  # 50 event pages
    limits = "none" if self_hosted else "sentry"
    kw = dict(projects=1, rate_limits=limits, latency_ms=latency, full_page_size=FULL_PAGE, **sizes)
    out: dict[str, Any] = {"emulator": kw}
    timeout = 900 if windows else 600
    with tempfile.TemporaryDirectory() as tmp:
        reps = 1 if (windows or opts.quick) else 3
        for c in conns:
            rows = [_sync_once(c, kw, Path(tmp), timeout, latency) for _ in range(reps)]
            rows.sort(key=lambda r: r["wall_s"])
            out[c.name] = dict(
                rows[len(rows) // 2],
                walls=[r["wall_s"] for r in rows],
                ratios=[r["ratio_to_bound"] for r in rows],
                requests_each=[r["requests"]["total"] for r in rows],
                n429_each=[r["requests"]["429"] for r in rows],
            )
        if not windows and not self_hosted and not opts.quick:
            out["ours_all"] = _sync_once(
                conns[0], kw, Path(tmp), timeout, latency, streams="all"
            )
    return out


def scen_org(conns: list[Connector], opts: argparse.Namespace) -> dict[str, Any]:
    latency = 30.0
    n_projects = 10
    sizes = (  # event pages per project: 3 (quick) or 10, 30 or 100 in all
        {"events": 3 * FULL_PAGE, "issues": 50, "releases": 50}
        if opts.quick
        else {"events": 10 * FULL_PAGE, "issues": 200, "releases": 100}
    )
    kw = dict(projects=n_projects, rate_limits="sentry", latency_ms=latency, full_page_size=FULL_PAGE, **sizes)
    out: dict[str, Any] = {"emulator": kw}
    with tempfile.TemporaryDirectory() as tmp:
        for c in conns:
            with Emu(tls=True, **kw) as emu:
                emu.clear_requests()
                slugs = emu.info["projects"]
                if isinstance(c, Ours):
                    runs = [read(c, emu, Path(tmp), project=None, timeout=900)]
                else:
                    runs = [
                        read(c, emu, Path(tmp), project=s, timeout=600) for s in slugs
                    ]
                t0 = runs[0][
                    "t0"
                ]  # the first connector process start (discover is not timed)
                elapsed = time.time() - t0
                reqs = emu.requests()
            summary = summarize_requests(reqs)
            bound = lower_bound(reqs, t0, latency / 1000, SENTRY_LIMITS)
            wall = sum(r["wall_s"] for r in runs)
            recs: Counter[str] = Counter()
            for r in runs:
                recs.update(r["records_by_stream"])
            out[c.name] = {
                "runs": len(runs),
                "wall_s": wall,
                "elapsed_s": elapsed,
                "cpu_s": sum(r["cpu_s"] for r in runs),
                "rc": [r["rc"] for r in runs],
                "records": sum(recs.values()),
                "records_by_stream": dict(recs),
                "requests": summary,
                "bound": bound,
                "ratio_to_bound": elapsed / bound["bound_s"]
                if bound["bound_s"]
                else None,
                "ratio_to_latency_bound": elapsed / bound["latency_bound_s"]
                if bound["latency_bound_s"]
                else None,
            }
            log(
                f"  org {c.name}: {len(runs)} run(s), {wall:.1f} s, {summary['total']} requests ({summary['429']} x 429), "
                f"{sum(recs.values())} records, bound {bound['bound_s']:.1f} s"
            )
    return out


def scen_cpu(conns: list[Connector], opts: argparse.Namespace) -> dict[str, Any]:
    sizes = {"events": 10000, "issues": 1000, "releases": 100}  # per record: 1,000 event pages
    kw = dict(projects=1, rate_limits="none", latency_ms=0, full_page_size=FULL_PAGE, **sizes)
    reps = {"ours": 2 if opts.quick else 5, "peer": 1 if opts.quick else 3}
    out: dict[str, Any] = {
        "emulator": kw,
        "note": "TLS for both (the peer forces https); all streams, one project",
    }
    with tempfile.TemporaryDirectory() as tmp, Emu(tls=True, **kw) as emu:
        project = emu.info["projects"][0]
        for c in conns:
            rows = []
            for _ in range(reps[c.name]):
                r = read(c, emu, Path(tmp), project=project, timeout=900)
                rows.append(
                    {
                        "cpu_s": r["cpu_s"],
                        "user_s": r["user_s"],
                        "sys_s": r["sys_s"],
                        "wall_s": r["wall_s"],
                        "records": r["records"],
                        "maxrss_mb": r["maxrss_mb"],
                        "rc": r["rc"],
                    }
                )
            per10k = [x["cpu_s"] / x["records"] * 10000 for x in rows if x["records"]]
            out[c.name] = {
                "runs": rows,
                "records": rows[-1]["records"],
                "median_cpu_s": statistics.median(x["cpu_s"] for x in rows),
                "median_wall_s": statistics.median(x["wall_s"] for x in rows),
                "cpu_s_per_10k": statistics.median(per10k) if per10k else None,
                "records_per_s": statistics.median(
                    x["records"] / x["wall_s"] for x in rows
                ),
            }
            log(
                f"  cpu {c.name}: {out[c.name]['cpu_s_per_10k']:.2f} CPU s / 10k records "
                f"({out[c.name]['records']} records, wall {out[c.name]['median_wall_s']:.1f} s)"
            )
    return out


def scen_memory(conns: list[Connector], opts: argparse.Namespace) -> dict[str, Any]:
    sizes = [10_000, 100_000] if opts.quick else [10_000, 100_000, 1_000_000]
    peer_max = 10_000 if opts.quick else 100_000
    out: dict[str, Any] = {
        "note": f"events stream only, one project, no limits, TLS; the peer up to {peer_max} events "
        "(at its rate 1M events would take far too long)"
    }
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted({*sizes, peer_max}):
            kw = {
                "projects": 1,
                "rate_limits": "none",
                "latency_ms": 0,
                "events": n,
                "issues": min(1000, max(10, n // 10)),
                "releases": 10,
                "full_page_size": FULL_PAGE,
            }
            with Emu(tls=True, **kw) as emu:
                log(
                    f"  memory: emulator with {n} events started in {emu.startup_seconds:.1f} s"
                )
                project = emu.info["projects"][0]
                for c in conns:
                    if c.name == "peer" and n > peer_max:
                        continue
                    if c.name == "ours" and n not in sizes:
                        continue
                    r = read(
                        c,
                        emu,
                        Path(tmp),
                        project=project,
                        timeout=3600,
                        streams=["events"],
                    )
                    out.setdefault(c.name, {})[str(n)] = {
                        "maxrss_mb": r["maxrss_mb"],
                        "records": r["records"],
                        "wall_s": r["wall_s"],
                        "cpu_s": r["cpu_s"],
                        "rc": r["rc"],
                        "stdout_mb": r["stdout_mb"],
                    }
                    log(
                        f"  memory {c.name} {n}: max RSS {r['maxrss_mb']:.1f} MB, {r['records']} records in {r['wall_s']:.1f} s"
                    )
    return out


def scen_incremental(
    conns: list[Connector], opts: argparse.Namespace
) -> dict[str, Any]:
    sizes = (
        {"events": 2000, "issues": 500, "releases": 100}
        if opts.quick
        else {"events": 5000, "issues": 2000, "releases": 300}
    )
    kw = dict(projects=1, rate_limits="none", latency_ms=0, full_page_size=FULL_PAGE, **sizes)
    out: dict[str, Any] = {"emulator": kw}
    with tempfile.TemporaryDirectory() as tmp:
        for label, c, streams in [
            ("ours", conns[0], "comparable"),
            ("ours_all", conns[0], "all"),
        ] + [(c.name, c, "comparable") for c in conns[1:]]:
            with Emu(tls=True, **kw) as emu:
                project = emu.info["projects"][0]
                first = read(
                    c,
                    emu,
                    Path(tmp),
                    project=project,
                    timeout=600,
                    keep_states=True,
                    streams=streams,
                )
                state = list(first["states"].values())
                emu.clear_requests()
                second = read(
                    c,
                    emu,
                    Path(tmp),
                    project=project,
                    timeout=600,
                    state=state,
                    streams=streams,
                )
                reqs = emu.requests()
            summary = summarize_requests(reqs)
            out[label] = {
                "first_records": first["records"],
                "second_records": second["records"],
                "second_records_by_stream": second["records_by_stream"],
                "rc": [first["rc"], second["rc"]],
                "requests": summary,
                "state_kb": len(json.dumps(state)) / 1024,
                "streams": second["streams"],
            }
            log(
                f"  incremental {label}: {summary['total']} requests {summary['by_route']}, "
                f"{second['records']} records re-emitted"
            )
    return out


def scen_sync(conns: list[Connector], opts: argparse.Namespace) -> dict[str, Any]:
    """`sync` into DuckDB beside `read` of the same events, and PyAirbyte reading our connector's
    events into its DuckDB cache: bench/bench_load.py's rounds, one emulator per size (no TLS, no
    limits), the connector from the project's venv as that script runs it."""
    sizes = [2_000, 10_000] if opts.quick else [10_000, 100_000]
    if opts.sync_events:
        sizes = [int(n) for n in opts.sync_events.split(",")]
    args = argparse.Namespace(projects=1, repeat=1 if opts.quick else 3, skip_read=False, skip_sync=False,
                              pyairbyte=True, destination_mode="append_dedup")
    out: dict[str, Any] = {"repeat": args.repeat, "note": "events stream, one project, no limits, no TLS; "
                           "medians of rounds of read, sync, PyAirbyte back to back", "sizes": {}}
    try:  # PyAirbyte's own venv (installed once, about a minute): optional
        bench_load._pyairbyte_python()
    except Exception as exc:
        args.pyairbyte = False
        out["pyairbyte_not_measured"] = f"PyAirbyte could not be installed ({type(exc).__name__}: {str(exc)[-300:]})"
        log(f"  sync: {out['pyairbyte_not_measured']}")
    for n in sizes:
        # 1M events: one round, no PyAirbyte (its peak was 1.2 GB at 100k; a round is about 15 minutes).
        big = {"repeat": 1, "pyairbyte": False} if n >= 1_000_000 else {}
        res = bench_load.measure(n, argparse.Namespace(**{**vars(args), **big}))
        out["sizes"][str(n)] = res
        m = res["median"]
        log(f"  sync {n}: read {m.get('read')}, sync {m.get('sync')}, PyAirbyte {m.get('pyairbyte')}, "
            f"sync / read {m.get('sync_over_read_wall')}x")
    return out


def scen_events_paths(conns: list[Connector], opts: argparse.Namespace) -> dict[str, Any]:
    """Events per minute on sentry.io's limits, issue by issue and by the project's list, each
    against its bound (bench/events_paths.py); the peer (one path: the project's list) beside."""
    import events_paths

    # The project list past its first 60-request window (70 pages quick, 180 full): its sustained rate shows.
    events, issues, project_events = (2000, 50, 700) if opts.quick else (6000, 150, 1800)
    sizes = {"events": events, "issues": issues, "project_events": project_events}
    runs = 1 if opts.quick else 3  # issue by issue: each run at another phase of the 1-s windows
    peer = next((c for c in conns if isinstance(c, Peer)), None)
    paths = events_paths.measure_paths(["issue"], events=events, issues=issues, project_events=project_events,
                                       runs=runs, exe=conns[0].exe)
    paths.update(events_paths.measure_paths(["project"], events=events, issues=issues, project_events=project_events,
                                            runs=1, exe=conns[0].exe, peer=peer))
    for name, rows in paths.items():
        for r in rows:
            log(f"  events_paths {name}: {r['records']} events in {r['wall_s']:.1f} s, {r['events_per_minute']:,.0f} a minute, "
                f"{r['wall_to_start_bound']:.3f}x the bound from the start, {r['429s']} x 429, rc {r['rc']}")
    return {"emulator": {**sizes, "rate_limits": "sentry", "latency_ms": 30}, "runs": runs, "paths": paths}


SCENARIOS = {
    "spec": scen_spec,
    "full_sync": scen_full_sync,
    "full_sync_windows": lambda c, o: scen_full_sync(c, o, windows=True),
    "self_hosted": lambda c, o: scen_full_sync(c, o, self_hosted=True),
    "org": scen_org,
    "cpu": scen_cpu,
    "memory": scen_memory,
    "incremental": scen_incremental,
    "sync": scen_sync,
    "events_paths": scen_events_paths,
}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes, fewer repetitions (a few minutes)",
    )
    ap.add_argument(
        "--only", help="comma-separated scenario names: " + ",".join(SCENARIOS)
    )
    ap.add_argument("--no-peer", action="store_true", help="measure only our connector")
    ap.add_argument(
        "--sync-events",
        help="the sync scenario's sizes, comma-separated (default 10000,100000; quick 2000,10000); "
        "1000000 adds the 1M row of the sync target (about 15 minutes a round)",
    )
    ap.add_argument(
        "--out",
        help="where to write the raw JSON (default bench/results/latest.json; with --quick, "
        "bench/results/quick.json, not kept in git)",
    )
    ap.add_argument(
        "--write-docs",
        action="store_true",
        help="replace the results section of docs/benchmarks.md (between its results markers)",
    )
    ap.add_argument(
        "--report",
        action="store_true",
        help="measure nothing: print (and with --write-docs write) the saved results",
    )
    opts = ap.parse_args()
    if opts.out is None:
        opts.out = str(
            BENCH / "results" / ("quick.json" if opts.quick else "latest.json")
        )
    if opts.report:
        saved = json.loads(Path(opts.out).read_text())
        text = render_markdown(saved)
        print(text)
        if opts.write_docs:
            write_docs(text)
        return 0
    names = (
        opts.only.split(",")
        if opts.only
        else [n for n in SCENARIOS if not (opts.quick and n == "full_sync_windows")]
    )
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    conns: list[Connector] = [Ours(ensure_ours_venv())]
    if not opts.no_peer:
        conns.append(Peer(ensure_peer_venv()))
    results: dict[str, Any] = {
        "machine": machine_info(),
        "quick": opts.quick,
        "command": "python bench/run.py " + " ".join(sys.argv[1:]),
        "scenarios": {},
    }
    out_path = Path(opts.out)
    if out_path.exists():  # keep other scenarios' results from an earlier run (--only)
        try:
            old = json.loads(out_path.read_text())
            if old.get("quick") == opts.quick:
                results["scenarios"].update(old.get("scenarios", {}))
        except ValueError:
            pass
    for name in names:
        load_before = os.getloadavg()
        log(f"scenario {name} (load average {load_before[0]:.1f})")
        started = time.time()
        try:
            res = SCENARIOS[name](conns, opts)
        except Exception as exc:
            log(f"  scenario {name} failed: {type(exc).__name__}: {exc}")
            res = {"failed": f"{type(exc).__name__}: {exc}"}
        res["elapsed_s"] = time.time() - started
        # Other work on the machine inflates wall times (CPU seconds much less): noted per scenario.
        res["loadavg_1m_before_after"] = [
            round(load_before[0], 2),
            round(os.getloadavg()[0], 2),
        ]
        res["measured_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        results["scenarios"][name] = res
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(
            json.dumps(results, indent=1, sort_keys=False, default=str) + "\n"
        )
    log(f"wrote {out_path}")
    text = render_markdown(results)
    print(text)
    if opts.write_docs:
        write_docs(text)
    return 0


DOCS = ROOT / "docs" / "benchmarks.md"
START, END = (
    "<!-- results:start (bench/run.py --write-docs) -->",
    "<!-- results:end -->",
)


def render_markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    head = (
        f"Measured {m['date']} on {m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gb']} GB RAM, Linux {m['kernel']}; "
        f"Python {m['python_ours']} (ours), {m['python_peer']} (peer); connector at {m.get('git_head', '?')}. "
        f"Reproduce: `.venv/bin/python bench/run.py{' --quick' if results.get('quick') else ''}` "
        "(these numbers merge runs of `--only` subsets; each scenario's time and 1-minute load average before/after: "
        + ", ".join(
            f"{k} {v.get('measured_at', '?')[11:16]} {v.get('loadavg_1m_before_after')}"
            for k, v in results["scenarios"].items()
        )
        + ")."
    )
    table = render_table(results)
    parts = [head, table if table.count("\n") > 1 else "", targets.render_details(results), targets.render_targets(results)]
    return "\n\n".join(part for part in parts if part)


def write_docs(text: str) -> None:
    doc = DOCS.read_text() if DOCS.exists() else ""
    if START in doc and END in doc:
        before, rest = doc.split(START, 1)
        after = rest.split(END, 1)[1]
        DOCS.write_text(before + START + "\n" + text + "\n" + END + after)
        log(f"updated {DOCS}")
    else:
        log(f"{DOCS} has no results markers; not written")


# --------------------------------------------------------------------------- report


def _f(x: Any, fmt: str = "{:.2f}") -> str:
    return "n/a" if x is None else fmt.format(x)


def _ratio(peer: Any, ours: Any) -> str:
    try:
        return f"{peer / ours:.1f}x"
    except (TypeError, ZeroDivisionError):
        return "n/a"


# The rows under a full sync and under the organization: (label, result path, format, ratio?).
SYNC_ROWS: list[tuple[str, tuple[str, ...], str, bool]] = [
    ("&nbsp;&nbsp;lower bound for its requests, emulator service times (s)", ("bound", "bound_s"), "{:.2f}", False),
    ("&nbsp;&nbsp;lower bound, 30 ms latency only (s)", ("bound", "latency_bound_s"), "{:.2f}", False),
    ("&nbsp;&nbsp;wall / service bound", ("ratio_to_bound",), "{:.2f}", False),
    ("&nbsp;&nbsp;wall / latency-only bound", ("ratio_to_latency_bound",), "{:.2f}", False),
    ("&nbsp;&nbsp;requests", ("requests", "total"), "{:d}", True),
    ("&nbsp;&nbsp;429 responses", ("requests", "429"), "{:d}", False),
    ("&nbsp;&nbsp;repeated identical requests", ("requests", "duplicate_200"), "{:d}", False),
]
ORG_ROWS: list[tuple[str, tuple[str, ...], str, bool]] = [
    ("&nbsp;&nbsp;sum of connector process wall times (s)", ("wall_s",), "{:.1f}", True),
    ("&nbsp;&nbsp;lower bound, service times (s)", ("bound", "bound_s"), "{:.1f}", False),
    ("&nbsp;&nbsp;wall / service bound", ("ratio_to_bound",), "{:.2f}", False),
    ("&nbsp;&nbsp;requests", ("requests", "total"), "{:d}", True),
    ("&nbsp;&nbsp;429 responses", ("requests", "429"), "{:d}", False),
    ("&nbsp;&nbsp;CPU (s)", ("cpu_s",), "{:.1f}", True),
]


def render_table(results: dict[str, Any]) -> str:
    s = results["scenarios"]
    rows = ["| measure | ours | peer (0.6.11) | peer / ours |", "|---|---|---|---|"]

    def add(
        name: str, ours: Any, peer: Any, fmt: str = "{:.2f}", ratio: bool = True
    ) -> None:
        rows.append(
            f"| {name} | {_f(ours, fmt)} | {_f(peer, fmt)} | {_ratio(peer, ours) if ratio else ''} |"
        )

    def both(key: str, name: str, path: tuple[str, ...], fmt: str, ratio: bool) -> None:
        """A row of one measure of scenario ``key``, ours beside the peer's."""
        add(name, g(key, "ours", *path), g(key, "peer", *path), fmt, ratio=ratio)

    def g(*path: str) -> Any:
        cur: Any = s
        for p in path:
            if not isinstance(cur, dict) or p not in cur:
                return None
            cur = cur[p]
        return cur

    if "spec" in s:
        add(
            "`spec` wall time, median (s)",
            g("spec", "ours", "median_wall_s"),
            g("spec", "peer", "median_wall_s"),
            "{:.3f}",
        )

    def outcome(*path: str) -> str:
        rc, recs = g(*path, "rc"), g(*path, "records")
        if rc is None:
            return "n/a"
        rcs = rc if isinstance(rc, list) else [rc]
        bad = [r for r in rcs if r != 0]
        return f"{recs} records" + (f", FAILED (exit {bad[0]})" if bad else ", exit 0")

    for key, label in (
        ("full_sync", "full sync, 1 project"),
        ("full_sync_windows", "full sync, 1 project, {pages} event pages"),
        ("self_hosted", "full sync, 1 project, {pages} event pages, no rate-limit headers (self-hosted)"),
    ):
        if key in s and "ours" in s[key]:
            e = s[key]["emulator"]
            limits = "sentry limits, " if e["rate_limits"] == "sentry" else ""
            per_page = e.get("full_page_size", 100)  # results measured before the 10-event cap: 100
            label = label.format(pages=-(-e["events"] // per_page))
            label += (f" ({e['events']} events, {per_page} per page, {e['issues']} issues, {e['releases']} releases; "
                      f"{limits}30 ms)")
            add(
                f"{label}: wall (s)",
                g(key, "ours", "wall_s"),
                g(key, "peer", "wall_s"),
                "{:.1f}",
            )
            if g(key, "peer", "rc") not in (None, 0):
                rows[-1] = rows[-1].rsplit("|", 2)[0] + "| peer failed |"
            for name, path, fmt, ratio in SYNC_ROWS:
                both(key, name, path, fmt, ratio)
            if key == "self_hosted":
                both(key, "&nbsp;&nbsp;its event pages' service times, one after another (s)",
                     ("bound", "events_serial_s"), "{:.2f}", False)
            rows.append(
                f"| &nbsp;&nbsp;outcome | {outcome(key, 'ours')} | {outcome(key, 'peer')} | |"
            )
            if g(key, "ours_all") is not None:
                a = s[key]["ours_all"]
                rows.append(
                    f"| &nbsp;&nbsp;ours, all {len(a.get('streams', []))} streams: wall / service bound / requests / 429s | "
                    f"{a['wall_s']:.1f} s / {a['bound']['bound_s']:.1f} s ({a['ratio_to_bound']:.2f}x) / {a['requests']['total']} / "
                    f"{a['requests']['429']} | | |"
                )
    if "org" in s and "ours" in s["org"]:
        e = s["org"]["emulator"]
        add(
            f"org of {e['projects']} projects ({e['events']} events, {e['issues']} issues each, "
            f"{e.get('full_page_size', 100)} events per page, {e['releases']} releases): "
            "wall (s), ours 1 sync, peer 1 sync per project back to back (first start to last end)",
            g("org", "ours", "elapsed_s") or g("org", "ours", "wall_s"),
            g("org", "peer", "elapsed_s") or g("org", "peer", "wall_s"),
            "{:.1f}",
        )
        if any(g("org", "peer", "rc") or []):
            rows[-1] = (
                rows[-1].rsplit("|", 2)[0]
                + f"| {rows[-1].rsplit('|', 2)[1].strip()}, but a peer sync failed |"
            )
        for name, path, fmt, ratio in ORG_ROWS:
            both("org", name, path, fmt, ratio)
        rows.append(
            f"| &nbsp;&nbsp;outcome | {outcome('org', 'ours')} | {outcome('org', 'peer')} | |"
        )
    if "cpu" in s and "ours" in s["cpu"]:
        add(
            "CPU s per 10,000 records (median, no limits)",
            g("cpu", "ours", "cpu_s_per_10k"),
            g("cpu", "peer", "cpu_s_per_10k"),
        )
        add(
            "&nbsp;&nbsp;records/s (wall)",
            g("cpu", "ours", "records_per_s"),
            g("cpu", "peer", "records_per_s"),
            "{:.0f}",
            ratio=False,
        )
    if "memory" in s:
        marg = {}
        for who in ("ours", "peer"):
            sizes = sorted(int(k) for k in (g("memory", who) or {}))
            a = g("memory", who, "10000")
            b = g("memory", who, str(sizes[-1])) if sizes else None
            if a and b and b["records"] > a["records"]:
                marg[who] = (
                    (b["cpu_s"] - a["cpu_s"]) / (b["records"] - a["records"]) * 10000,
                    sizes[-1],
                )
        if marg:
            span = ", ".join(f"{w} 10k to {n:,}" for w, (_, n) in marg.items())
            add(
                f"CPU s per 10,000 events, marginal (events only; {span} events)",
                marg.get("ours", (None,))[0],
                marg.get("peer", (None,))[0],
            )
        for n in ("10000", "100000", "1000000"):
            o, p = (
                g("memory", "ours", n, "maxrss_mb"),
                g("memory", "peer", n, "maxrss_mb"),
            )
            if o is not None or p is not None:
                add(f"peak RSS, {int(n):,} events (MB)", o, p, "{:.0f}")
    if "incremental" in s and "ours" in s["incremental"]:
        add(
            "no-change incremental sync: requests",
            g("incremental", "ours", "requests", "total"),
            g("incremental", "peer", "requests", "total"),
            "{:d}",
            ratio=False,
        )
        routes: list[str] = []
        for who in ("ours", "peer"):
            for r in g("incremental", who, "requests", "by_route") or {}:
                if r not in routes:
                    routes.append(r)
        for r in routes:
            add(
                f"&nbsp;&nbsp;`{r.replace('/api/0/', '')}`",
                g("incremental", "ours", "requests", "by_route", r) or 0,
                g("incremental", "peer", "requests", "by_route", r) or 0,
                "{:d}",
                ratio=False,
            )
        add(
            "&nbsp;&nbsp;records re-emitted",
            g("incremental", "ours", "second_records"),
            g("incremental", "peer", "second_records"),
            "{:d}",
            ratio=False,
        )
        a = g("incremental", "ours_all")
        if a:
            rows.append(
                f"| &nbsp;&nbsp;ours, all {len(a['streams'])} streams: requests (repeated identical) / records re-emitted | "
                f"{a['requests']['total']} ({a['requests']['duplicate_200']}) / {a['second_records']} | | |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
