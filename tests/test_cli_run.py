"""The `newsetl` CLI: `run` in real processes (progress per stage, the summary, one writer at a time), and the
one-line errors, exit codes and untouched folders when a source folder is missing or no run has loaded the
warehouse."""

import shutil

import polars as pl
import pytest
from typer.testing import CliRunner

import flows.news_etl
from newsetl.cli import app
from tasks import load
from tests.conftest import SEEDS
from tests.subprocs import BIN, PYTHON, child_env, current_api_url, start, stop, wait_for_text

# `newsetl run ARGS...`, except that the load stage announces LOADING and then waits for the file argv[1] to exist:
# the test decides when this run, which holds the writer lock all along, may finish.
RUN_HELD_IN_LOAD = """
import pathlib, sys, time
from tasks import load
from newsetl.cli import app

write, go = load.write_snapshot, pathlib.Path(sys.argv[1])

def write_when_told(*args, **kwargs):
    sys.stdout.write("LOADING\\n")  # not print: the flow's log_prints would turn it into a log record
    sys.stdout.flush()
    while not go.exists():
        time.sleep(0.1)
    return write(*args, **kwargs)

load.write_snapshot = write_when_told
app(sys.argv[2:], prog_name="newsetl")
"""


def test_help_documents_every_command():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        summary = command.callback.__doc__.strip().splitlines()[0].split(";")[0].rstrip(".")
        assert name in result.output and summary[:40] in result.output, name
        sub = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "200"})
        assert sub.exit_code == 0 and "--warehouse" in sub.output, name


@pytest.mark.parametrize("command", [["tables"], ["query", "select 1"], ["report"]])
@pytest.mark.parametrize("state", ["missing", "empty"])
def test_commands_on_a_warehouse_without_a_run_fail_in_one_line(tmp_path, command, state):
    wh = tmp_path / "wh"
    if state == "empty":  # what a run that failed before loading leaves
        wh.mkdir()
        (wh / load.LOCK_FILE).touch()
    result = CliRunner().invoke(app, [*command, "--warehouse", str(wh)])
    assert result.exit_code == 1, result.output
    assert result.output == f"no run recorded in {wh.resolve()}: run `newsetl run` first\n"
    assert wh.exists() == (state == "empty")


@pytest.mark.parametrize(("missing", "says"), [(["gone"], "source folder missing"),
                                               (["gone", "also_gone"], "source folders missing")])
def test_run_with_a_missing_source_folder_starts_nothing(tmp_path, monkeypatch, missing, says):
    started = []
    monkeypatch.setattr(flows.news_etl, "news_etl", lambda **kwargs: started.append(kwargs))
    src, wh = tmp_path / "src", tmp_path / "wh"
    src.mkdir()
    gone = [tmp_path / name for name in missing]
    result = CliRunner().invoke(app, ["run", *(f"--source={s}" for s in [src, *gone]), "--warehouse", str(wh)])
    assert result.exit_code == 2, result.output
    assert result.output == f"{says}: {', '.join(str(g.resolve()) for g in gone)}\n"
    assert not started and not wh.exists()


def test_second_run_is_refused_or_waits_while_one_is_writing(tmp_path, prefect_harness):
    src, wh, go = tmp_path / "src", tmp_path / "wh", tmp_path / "go"
    shutil.copytree(SEEDS, src)
    args = ["run", "--source", str(src), "--warehouse", str(wh)]
    env = child_env(tmp_path / "prefect", current_api_url())
    logs = {name: tmp_path / f"{name}.log" for name in ("first", "refused", "waiting")}
    first = start([PYTHON, "-c", RUN_HELD_IN_LOAD, str(go), *args], env, logs["first"])
    waiting = None
    try:
        wait_for_text(logs["first"], "LOADING", first, timeout=180)
        refused = start([str(BIN / "newsetl"), *args], {**env, "NEWSETL_LOCK_WAIT_SECONDS": "0"}, logs["refused"])
        assert refused.wait(timeout=180) == 2
        refusal = logs["refused"].read_text()
        assert "warehouse busy" in refusal and f"being written by pid {first.pid}" in refusal, refusal

        waiting = start([str(BIN / "newsetl"), *args], {**env, "NEWSETL_LOCK_WAIT_SECONDS": "120"}, logs["waiting"])
        wait_for_text(logs["waiting"], f"being written by pid {first.pid}", waiting, timeout=180)
        go.touch()
        assert first.wait(timeout=120) == 0, logs["first"].read_text()
        assert waiting.wait(timeout=180) == 0, logs["waiting"].read_text()
    finally:
        for proc in (first, waiting):
            if proc is not None and proc.poll() is None:
                stop(proc)

    shown = logs["first"].read_text()
    for line in ("✓ start", "✓ ingest    5 files, 5 new files", "✓ clean     5 articles", "✓ load"):
        assert line in shown, shown
    assert "5 new articles from 5 of 5 files" in shown and "articles          5" in shown, shown
    assert "✓ ingest    5 files, 0 new files, 5 unchanged" in logs["waiting"].read_text()
    runs = load.read_table(wh, "ingest_log").group_by("run_id").agg(pl.col("n_articles").sum())
    assert sorted(runs["n_articles"]) == [0, 5]
