"""Helpers for tests that run the flow, the CLI or Prefect itself in child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT

PYTHON = sys.executable
BIN = Path(sys.executable).parent


def child_env(prefect_home: Path, api_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment for a child process: a private PREFECT_HOME and, if given, an existing Prefect API."""
    env = {**os.environ, "PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "GX_ANALYTICS_ENABLED": "false", "PYTHONUNBUFFERED": "1", **extra}
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a child in its own process group, stdout and stderr into `log`."""
    with log.open("w") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 10) -> None:
    """Signal a child's whole process group, then SIGKILL it if it has not exited within `grace` seconds."""
    for attempt in (sig, signal.SIGKILL):
        try:
            os.killpg(proc.pid, attempt)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


def wait_for_text(log: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    """Wait until `text` appears in a child's log; fail if the child exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) before printing {text!r}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} after {timeout} s:\n{log.read_text()}")
        time.sleep(0.1)


def current_api_url() -> str:
    """The API URL of the Prefect test harness active in this process (children reuse it: no start-up wait)."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()
