"""Crash safety: a run SIGKILLed during load leaves the previous warehouse whole, and the next run completes."""

import re
import shutil
import signal
import subprocess

import duckdb
import polars as pl
import pytest

from flows.news_etl import news_etl
from tasks import load
from tests.conftest import ROOT, SEEDS
from tests.subprocs import PYTHON, child_env, current_api_url, start, stop, wait_for_text

HELD_BACK = "002_5b9274677ef01036.txt"

# `python flows/news_etl.py SRC WH` with one change: after the load stage has written its first Parquet part into
# the staging snapshot, it prints STAGED and hangs, so the test can kill it at a known point mid-load.
HANG_IN_LOAD = """
import runpy, sys, time
from tasks import load

write = load.write_parquet_durably

def write_then_hang(frame, path):
    write(frame, path)
    sys.stdout.write(f"STAGED {path}\\n")  # not print: the flow's log_prints would turn it into a log record
    sys.stdout.flush()
    time.sleep(600)

load.write_parquet_durably = write_then_hang
sys.argv = ["flows/news_etl.py", *sys.argv[1:]]
runpy.run_path("flows/news_etl.py", run_name="__main__")
"""


def row_counts(warehouse) -> dict[str, int]:
    """Rows per table, read both through read_table (Parquet) and the DuckDB catalog's views; they must agree."""
    from_parquet = {name: load.read_table(warehouse, name).height for name in load.table_names(warehouse)}
    with duckdb.connect(str(warehouse / load.CATALOG), read_only=True) as con:
        from_views = {name: con.execute(f"select count(*) from {name}").fetchone()[0] for name in from_parquet}
    assert from_views == from_parquet
    return from_parquet


@pytest.fixture
def loaded(tmp_path, prefect_harness):
    """Sources without one seed, already loaded into a warehouse; then the held-back seed is added."""
    src, wh = tmp_path / "src", tmp_path / "wh"
    shutil.copytree(SEEDS, src, ignore=shutil.ignore_patterns(HELD_BACK))
    news_etl(source_dir=str(src), warehouse_dir=str(wh))
    shutil.copy(SEEDS / HELD_BACK, src / HELD_BACK)
    return src, wh


def test_kill_during_load_keeps_previous_snapshot_then_next_run_completes(loaded, tmp_path):
    src, wh = loaded
    before_snapshot, before = load.current_snapshot(wh), row_counts(wh)
    env = child_env(tmp_path / "prefect", current_api_url())
    log = tmp_path / "killed.log"
    proc = start([PYTHON, "-c", HANG_IN_LOAD, str(src), str(wh)], env, log)
    try:
        wait_for_text(log, "STAGED", proc, timeout=180)
    finally:
        stop(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL

    staging = list((wh / load.SNAPSHOTS).glob("*.staging"))
    assert len(staging) == 1 and list(staging[0].rglob("*.parquet")), "the run was not killed mid-load"
    assert load.current_snapshot(wh) == before_snapshot
    assert row_counts(wh) == before
    assert HELD_BACK not in "".join(load.read_table(wh, "manifest")["source_file"])
    with load.writer_lock(wh):  # the killed run's lock died with it
        pass

    rerun = subprocess.run([PYTHON, "flows/news_etl.py", str(src), str(wh)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    extract_line = rerun.stderr.split("extract:")[1].splitlines()[0]
    assert re.search(r"\[(\d+) of \1 batches cached\]", extract_line), f"not reused from the killed run: {extract_line}"
    assert not list((wh / load.SNAPSHOTS).glob("*.staging"))
    assert load.current_snapshot(wh) != before_snapshot
    after = row_counts(wh)
    assert after["articles"] == before["articles"] + 1
    log_rows = load.read_table(wh, "ingest_log")
    latest = log_rows.filter(pl.col("run_id") == log_rows["run_id"][-1])
    assert latest.filter(pl.col("n_articles") > 0)["source_file"].to_list() == [str(src / HELD_BACK)]
