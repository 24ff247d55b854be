"""``source-sentry report``: one self-contained HTML file, checked as text and as a person sees
it, in headless Chromium (Debian's ``chromium``; scripts/test.sh installs it where it can)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CHARTS = {"errors_daily", "crash_free", "time_to_resolve", "monitor_uptime", "usage_outcomes"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "source_sentry", *args], capture_output=True, text=True, timeout=300)


def _synced(emu: Any, tmp_path: Path, *extra: str) -> Path:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auth_token": emu.token, "organization": emu.organization, "hostname": emu.base_url}))
    db = tmp_path / "sentry.duckdb"
    proc = _cli("sync", "--config", str(config), "--destination", str(db), "--quiet", *extra)
    assert proc.returncode == 0, proc.stderr
    return db


@pytest.fixture
def report(make_emulator: Any, tmp_path: Path) -> Path:
    emu = make_emulator(projects=3, issues_per_project=20, events_per_project=150, monitors=3)
    db = _synced(emu, tmp_path)
    emu.advance(3600)
    # Something resolved between two syncs, to chart its time to resolve.
    emu.set_issue_status(str(emu.issues(status="unresolved")[0]["id"]), "resolved")
    _synced(emu, tmp_path)
    out = tmp_path / "report.html"
    proc = _cli("report", "--destination", str(db), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out.resolve())
    return out


def test_the_report_is_one_self_contained_file(report: Path) -> None:
    text = report.read_text()
    assert set(re.findall(r'data-chart="([a-z_]+)"', text)) == CHARTS
    assert text.count("<svg") == len(CHARTS)
    # Nothing fetched: no scripts, style sheets, fonts or images from anywhere.
    assert not re.search(r"<script[^>]*src|<link|@import|url\((?!#)|<img", text)  # url(#...): the SVG's own clips
    # Links go to the issues in Sentry, and only from the issues table.
    links = [link for link in re.findall(r'href="([^"]+)"', text) if not link.startswith("#")]  # "#": SVG glyphs
    assert len(links) == 15 and all(re.search(r"^https?://.*/issues/\d+/$", link) for link in links)
    assert "Not synced" not in text


def test_a_section_whose_stream_was_not_synced_says_so(make_emulator: Any, tmp_path: Path) -> None:
    emu = make_emulator(projects=1)
    db = _synced(emu, tmp_path, "--streams", "events")  # no projects either: events by project id
    out = tmp_path / "report.html"
    proc = _cli("report", "--destination", str(db), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert re.findall(r'data-chart="([a-z_]+)"', text) == ["errors_daily"]
    for stream in ("issues", "release_health", "monitor_checkins", "usage_stats"):
        assert f"Not synced: the <code>{stream}</code> stream" in text


def test_a_full_refresh_has_every_section_of_its_streams(make_emulator: Any, tmp_path: Path) -> None:
    """An overwrite keeps no history and no state: its issues still have their sections, and its
    streams their freshness (last synced when their records were written)."""
    emu = make_emulator(projects=1)
    db = _synced(emu, tmp_path, "--full-refresh", "--streams", "events,issues")
    out = tmp_path / "report.html"
    assert _cli("report", "--destination", str(db), "--output", str(out)).returncode == 0
    text = out.read_text()
    assert 'data-table="top_issues"' in text and "Not synced: the <code>issues</code>" not in text
    freshness = re.findall(r"<tr><td>([a-z_]+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>", text)
    assert [f[0] for f in freshness] == ["events", "issues"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", when) for f in freshness for when in f[1:])


def test_report_of_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    proc = _cli("report", "--destination", str(tmp_path / "none.duckdb"))
    assert proc.returncode == 1 and proc.stdout == ""
    assert "run source-sentry sync" in proc.stderr


def _chromium() -> str:
    found = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (scripts/test.sh does, as root)")
        pytest.skip("no chromium here: scripts/test.sh installs Debian's chromium when run as root with apt-get")
    return found


def _render(browser: str, page: Path, *options: str) -> subprocess.CompletedProcess[str]:
    # No host resolves: the page gets nothing from the network, whatever it asks for.
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1200,3200", *options, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


# Appended to a copy of a page: once it loaded, marks each chart Chromium laid out with a size and
# drew shapes in, and lists every resource the page asked for (failed ones too).
_PROBE = """<script>
addEventListener("load", () => {
  for (const figure of document.querySelectorAll("figure.chart")) {
    const svg = figure.querySelector("svg"), box = svg && svg.getBoundingClientRect();
    if (box && box.width > 100 && box.height > 100 && svg.querySelectorAll("path, rect, use").length > 10)
      figure.dataset.drawn = "yes";
  }
  document.body.dataset.fetched = performance.getEntriesByType("resource").map(e => e.name).join(" ");
});
</script></body>"""


def _probe(browser: str, page: Path) -> tuple[set[str], list[str]]:
    """The charts of ``page`` Chromium drew, and the resources the page asked for."""
    probe = page.with_name(f"probe-{page.name}")
    probe.write_text(page.read_text().replace("</body>", _PROBE))
    dom = _render(browser, probe, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    drawn = set()
    for figure in re.findall(r"<figure [^>]*>", dom.stdout):
        chart = re.search(r'data-chart="([a-z_]+)"', figure)
        if chart and 'data-drawn="yes"' in figure:
            drawn.add(chart.group(1))
    fetched = re.search(r'<body[^>]* data-fetched="([^"]*)"', dom.stdout)
    assert fetched, "the probe did not run"
    return drawn, fetched.group(1).split()


def test_the_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    browser = _chromium()
    # The checks can fail: a page that logs an error is caught, so is one that asks for a style
    # sheet, font or image from anywhere, and a chart not drawn.
    noisy = tmp_path / "noisy.html"
    noisy.write_text('<html><body><script>console.error("broken")</script></body></html>')
    assert _console(_render(browser, noisy, "--dump-dom").stderr)
    online = tmp_path / "online.html"
    online.write_text('<html><head><link rel="stylesheet" href="https://cdn.example.com/x.css"><style>@font-face '
                      '{font-family: F; src: url(https://cdn.example.com/f.woff2)} body {font-family: F}</style></head>'
                      '<body>text</body></html>')
    assert set(_probe(browser, online)[1]) == {"https://cdn.example.com/x.css", "https://cdn.example.com/f.woff2"}
    hidden = tmp_path / "hidden.html"
    hidden.write_text(report.read_text().replace("<svg ", '<svg style="display: none" ', 1))
    assert _probe(browser, hidden)[0] == CHARTS - {"errors_daily"}

    assert _probe(browser, report) == (CHARTS, [])  # every chart drawn, nothing fetched
    dom = _render(browser, report, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == []
    rendered = set(re.findall(r'<figure class="chart" data-chart="([a-z_]+)"><svg', dom.stdout))
    assert rendered == CHARTS
    shot = tmp_path / "report.png"
    picture = _render(browser, report, f"--screenshot={shot}")
    assert picture.returncode == 0 and _console(picture.stderr) == []
    assert shot.stat().st_size > 50_000
