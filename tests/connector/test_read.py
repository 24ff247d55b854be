"""read: every stream, many pages, statuses, checkpoints, and per-stream failures."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from connector_helpers import Connector, config_for

from sentry_emulator.pagination import FULL_PAGE_SIZE as PAGE

ALL = ["events", "issues", "projects", "releases", "project_detail"]


def _ids(records: list[dict]) -> list[str]:
    return [str(r["id"]) for r in records]


def test_full_refresh_reads_every_record_of_every_stream(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=2, events_per_project=250, issues_per_project=30, releases=130)
    run = Connector(tmp_path, emu).read(ALL, mode="full_refresh")
    assert run.returncode == 0, run.stderr + str(run.errors())
    expected_events = [e["id"] for slug in emu.project_slugs for e in emu.events(slug)]
    assert len(expected_events) > 400  # several pages per project
    assert Counter(_ids(run.records("events"))) == Counter(expected_events)
    assert sorted(_ids(run.records("issues"))) == sorted(str(i["id"]) for i in emu.issues())
    assert sorted(_ids(run.records("projects"))) == sorted(str(p["id"]) for p in emu.projects())
    assert sorted(_ids(run.records("releases"))) == sorted(str(r["id"]) for r in emu.releases())
    assert len(run.records("releases")) == 130  # two pages, both statuses
    assert sorted(r["slug"] for r in run.records("project_detail")) == sorted(emu.project_slugs)
    for stream in ALL:
        assert run.statuses(stream)[0] == "STARTED"
        assert "RUNNING" in run.statuses(stream)
        assert run.statuses(stream)[-1] == "COMPLETE"
        assert run.states(stream), f"no state for {stream}"
        for state in run.states(stream):
            assert "recordCount" in state["sourceStats"]
        assert sum(s["sourceStats"]["recordCount"] for s in run.states(stream)) == len(run.records(stream))


def test_events_checkpoint_after_every_page(make_emulator, tmp_path: Path) -> None:
    # sentry.io's limits: one concurrent request on project events, so one time window.
    # 2 issues, both exceptions: every generated event is an error event the list serves. All
    # within the last hour, so the project's list reads them all (older events of a narrow list
    # are read issue by issue: test_events_by_issue.py).
    emu = make_emulator(projects=1, events_per_project=4 * PAGE + PAGE // 2, issues_per_project=2, rate_limits="sentry",
                        days=0.04)
    run = Connector(tmp_path, emu, project=emu.project_slugs[0]).read(["events"])
    assert run.returncode == 0
    counts = [s["sourceStats"]["recordCount"] for s in run.states("events")]
    # 5 pages of 10 full events: a state after each of the 4 with a next page, and one when the window is done.
    assert counts[:4] == [float(PAGE)] * 4
    assert sum(counts) == 4 * PAGE + PAGE // 2
    # Intermediate states hold the window's page cursor.
    [window] = run.states("events")[1]["stream"]["stream_state"]["projects"][emu.project_slugs[0]]["windows"]
    assert window["cursor"]


def test_resuming_from_an_intermediate_checkpoint_reads_the_rest(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1, events_per_project=4 * PAGE + PAGE // 2, issues_per_project=2,
                        rate_limits="sentry")  # one window
    conn = Connector(tmp_path, emu, project=emu.project_slugs[0])
    first = conn.read(["events"])
    states = first.states("events")
    middle = {k: v for k, v in states[1].items() if k != "sourceStats"}
    # Records after that checkpoint, as the platform would lose them in a failed attempt.
    seen_before = 2 * PAGE  # two pages
    resumed = conn.read(["events"], state=[middle])
    assert resumed.returncode == 0
    ids_after = set(_ids(first.records("events")[seen_before:]))
    assert ids_after <= set(_ids(resumed.records("events")))
    assert len(resumed.records("events")) >= 4 * PAGE + PAGE // 2 - seen_before


def test_a_stream_the_token_cannot_read_fails_alone(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1)
    token = emu.create_token(scopes=["org:read", "event:read"])  # releases need project:read or project:releases
    run = Connector(tmp_path, emu, auth_token=token).read(["projects", "releases", "issues"])
    assert run.returncode != 0
    assert run.statuses("releases")[-1] == "INCOMPLETE"
    assert run.statuses("projects")[-1] == "COMPLETE"
    assert run.statuses("issues")[-1] == "COMPLETE"
    [error] = run.errors()
    assert error["stream_descriptor"] == {"name": "releases"}
    assert error["failure_type"] == "config_error"
    assert "project:releases" in error["message"]
    assert len(run.records("projects")) == len(emu.projects())


def test_bad_token_fails_the_read_with_a_config_error(emulator, tmp_path: Path) -> None:
    run = Connector(tmp_path, emulator, auth_token="wrong-token-value").read(["events", "issues"])
    assert run.returncode == 1
    errors = run.errors()
    assert errors and errors[0]["failure_type"] == "config_error"
    assert "auth_token" in errors[0]["message"]
    assert "wrong-token-value" not in run.stdout + run.stderr


def test_unknown_project_fails_its_streams_and_names_it(emulator, tmp_path: Path) -> None:
    run = Connector(tmp_path, emulator, project="nope-project").read(["events", "projects"])
    assert run.returncode == 1
    assert run.statuses("projects")[-1] == "COMPLETE"
    assert run.statuses("events")[-1] == "INCOMPLETE"
    assert any("nope-project" in e["message"] and e["failure_type"] == "config_error" for e in run.errors())


def test_a_bogus_catalog_is_a_config_error(emulator, tmp_path: Path) -> None:
    conn = Connector(tmp_path, emulator)
    from connector_helpers import run_cli, write_json

    catalog = {"streams": [{"stream": {"name": "not_a_stream", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
                            "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}]}
    run = run_cli("read", "--config", conn.config_path, "--catalog", write_json(tmp_path / "bogus.json", catalog))
    assert run.returncode == 1
    [error] = run.errors()
    assert error["failure_type"] == "config_error" and "not_a_stream" in error["message"]


def test_the_token_never_appears_in_any_output(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(projects=1)
    conn = Connector(tmp_path, emu)
    runs = [conn.read(ALL, mode="full_refresh"), conn.read(ALL), conn.cli("check"), conn.cli("discover")]
    emu.inject_fault("500", path=".*/issues/", times=100)
    failing = Connector(tmp_path / "failing", emu, max_retries=1) if (tmp_path / "failing").mkdir() is None else conn
    runs.append(failing.read(["issues"]))
    assert runs[-1].returncode == 1
    for run in runs:
        assert emu.token not in run.stdout
        assert emu.token not in run.stderr
    assert config_for(emu)["auth_token"] == emu.token
