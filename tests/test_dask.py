"""Scale-out: the flow with its per-batch tasks on a local Dask cluster builds the same warehouse as a local run."""

import shutil

import polars as pl
import pytest

from flows.news_etl import news_etl
from tasks import load
from tests.conftest import SEEDS

distributed = pytest.importorskip("distributed")
prefect_dask = pytest.importorskip("prefect_dask")

KEYS = {
    "articles": ["article_id", "story_id", "duplicate_of"],
    "boilerplate": ["article_id", "char_start", "char_end"],
    "stories": ["story_id", "canonical_article_id"],
    "events": ["event_id"],
    "event_mentions": ["event_id", "article_id", "sentence_index"],
    "quotes": ["quote_id"],
}


def warehouse_keys(warehouse) -> dict[str, pl.DataFrame | int]:
    """Sorted key columns of the content tables, row counts of the rest (their rows carry run ids)."""
    tables = {name: load.read_table(warehouse, name) for name in load.table_names(warehouse)}
    return {name: frame.select(KEYS[name]).sort(KEYS[name], nulls_last=True) if name in KEYS else frame.height
            for name, frame in tables.items()}


def test_dask_cluster_builds_the_same_warehouse_as_a_local_run(tmp_path, prefect_harness, monkeypatch):
    shutil.copytree(SEEDS, tmp_path / "seeds")
    news_etl(source_dir=str(tmp_path / "seeds"), warehouse_dir=str(tmp_path / "local"))
    monkeypatch.setenv("NEWSETL_BATCH_SIZE", "2")  # several batches, so the workers share the work
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1) as cluster:
        runner = prefect_dask.DaskTaskRunner(address=cluster.scheduler_address)
        news_etl.with_options(task_runner=runner)(source_dir=str(tmp_path / "seeds"),
                                                  warehouse_dir=str(tmp_path / "dask"))
    local, dask = warehouse_keys(tmp_path / "local"), warehouse_keys(tmp_path / "dask")
    assert local.keys() == dask.keys()
    for name, expected in local.items():
        if isinstance(expected, int):
            assert dask[name] == expected, name
        else:
            assert dask[name].equals(expected), name
