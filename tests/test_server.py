"""End to end on a real Prefect server: work pool, `prefect deploy --all`, a worker, and two runs of the daily
deployment, the second of which loads only the file added since the first."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

from tasks import load
from tests.conftest import ROOT, SEEDS
from tests.subprocs import BIN, child_env, start, stop

pytestmark = pytest.mark.server

POOL = "newsetl-process"
HELD_BACK = "002_5b9274677ef01036.txt"  # covers the same story as seeds/003
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(api: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """Poll the API's health endpoint until it answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"Prefect server did not come up:\n{log.read_text()}")
        time.sleep(0.2)


def prefect(env: dict[str, str], *args: str) -> str:
    """Run a `prefect` CLI command from the project root; its output, or fail with it."""
    done = subprocess.run([str(BIN / "prefect"), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def run_daily(env: dict[str, str], api: str, src: Path, wh: Path, timeout: float = 300) -> dict:
    """`prefect deployment run news-etl/daily` on src and wh, then poll the flow run until it ends."""
    out = prefect(env, "deployment", "run", "news-etl/daily", "--param", f"source_dir={src}",
                  "--param", f"warehouse_dir={wh}")
    flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        flow_run = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=10).json()
        if flow_run["state"]["type"] in TERMINAL:
            return flow_run
        time.sleep(0.5)
    raise AssertionError(f"flow run {flow_run_id} not finished after {timeout} s: {flow_run['state']}")


def ingest_of(wh: Path, run_id: str) -> pl.DataFrame:
    """The ingest_log rows written by one flow run."""
    return load.read_table(wh, "ingest_log").filter(pl.col("run_id") == run_id)


def test_daily_deployment_runs_incrementally_on_a_real_server(tmp_path, capsys):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    # The scheduler service stays off so the deployments' cron schedules create no runs during the test; the
    # worker polls every second instead of every 10.
    env = child_env(tmp_path / "prefect", api, PREFECT_CLI_PROMPT="false",
                    PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false", PREFECT_WORKER_QUERY_SECONDS="1")
    src, wh = tmp_path / "src", tmp_path / "wh"
    shutil.copytree(SEEDS, src, ignore=shutil.ignore_patterns(HELD_BACK))
    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name], clock = time.monotonic() - clock, time.monotonic()

    server = start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
                   env, tmp_path / "server.log")
    worker = None
    try:
        wait_healthy(api, server, tmp_path / "server.log")
        lap("server start")
        prefect(env, "work-pool", "create", POOL, "--type", "process")
        prefect(env, "deploy", "--all", "--no-prompt")
        lap("work pool + deploy")
        worker = start([str(BIN / "prefect"), "worker", "start", "--pool", POOL], env, tmp_path / "worker.log")

        first = run_daily(env, api, src, wh)
        lap("daily run 1 (incl. worker start)")
        assert first["state"]["type"] == "COMPLETED", (tmp_path / "worker.log").read_text()
        assert {"articles", "stories", "events", "event_mentions", "quotes", "ingest_log", "manifest"} <= set(
            load.table_names(wh))
        assert load.read_table(wh, "articles").height == 4 and load.read_table(wh, "stories").height == 3
        assert ingest_of(wh, first["id"])["n_articles"].sum() == 4

        shutil.copy(SEEDS / HELD_BACK, src / HELD_BACK)
        second = run_daily(env, api, src, wh)
        lap("daily run 2")
        assert second["state"]["type"] == "COMPLETED", (tmp_path / "worker.log").read_text()
        loaded = ingest_of(wh, second["id"])
        assert loaded.height == 5
        assert loaded.filter(pl.col("n_articles") > 0)["source_file"].to_list() == [str(src / HELD_BACK)]
        articles = load.read_table(wh, "articles")
        story_of = dict(zip(articles["source_id"].str.slice(0, 3), articles["story_id"], strict=True))
        assert articles.height == 5 and load.read_table(wh, "stories").height == 3
        assert story_of["002"] == story_of["003"]
    finally:
        for proc in (worker, server):
            if proc is not None:
                stop(proc)
        with capsys.disabled():
            print("\nserver test timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
