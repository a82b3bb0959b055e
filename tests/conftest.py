"""Shared fixtures and helpers: paths to the seeds and fixtures, a Prefect test harness for flow tests, and the
buffer size of a column."""

import os
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
BAD_INPUT = ROOT / "tests" / "fixtures" / "bad_input"
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API for the whole session (flow tests only)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def buffer_bytes(column: pl.Series) -> int:
    """Bytes of every buffer the column holds on to (a string view keeps its source's whole buffer)."""
    return column.to_arrow(compat_level=pl.CompatLevel.newest()).get_total_buffer_size()
