"""Load: snapshots swap in atomically, views work from any directory, one writer at a time."""

import os
import subprocess
import sys

import duckdb
import polars as pl
import pytest

from tasks import load


def frames(n: int) -> dict[str, pl.DataFrame]:
    return {"articles": pl.DataFrame({"article_id": [f"a{i}" for i in range(n)], "n": list(range(n))}),
            "stories": pl.DataFrame({"story_id": ["s1"], "n_articles": [n]})}


def test_snapshot_then_views_readable_from_another_directory(tmp_path):
    wh = tmp_path / "wh"
    load.write_snapshot(wh, "run1", replace=frames(3))
    assert load.refresh_catalog(wh) is None
    assert load.table_names(wh) == ["articles", "stories"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run(
        [sys.executable, "-c", f"import duckdb; print(duckdb.connect('{wh / 'news.duckdb'}', read_only=True)"
         ".execute('select count(*) from articles').fetchone()[0])"],
        cwd=elsewhere, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3"


def test_append_keeps_prior_parts_and_replace_rewrites_and_tables_read_together_match(tmp_path):
    wh = tmp_path / "wh"
    load.write_snapshot(wh, "run1", replace=frames(3))
    load.write_snapshot(wh, "run2", replace={"stories": frames(1)["stories"]},
                        append={"articles": pl.DataFrame({"article_id": ["b1"], "n": [9]})})
    assert sorted(load.read_table(wh, "articles")["article_id"]) == ["a0", "a1", "a2", "b1"]
    assert load.read_table(wh, "stories")["n_articles"].to_list() == [1]
    with load.connect(wh) as con:
        assert con.execute("select count(*) from articles").fetchone()[0] == 4
    tables = load.read_tables(wh, ("stories", "quotes", "articles"))
    assert list(tables) == ["stories", "quotes", "articles"] and tables["quotes"] is None
    assert sorted(tables["articles"]["article_id"]) == ["a0", "a1", "a2", "b1"]  # both parts
    assert tables["stories"]["n_articles"].to_list() == [1]


def test_appends_merge_their_small_parts_and_keep_the_rows_in_order(tmp_path):
    wh = tmp_path / "wh"
    big = pl.DataFrame({"article_id": [f"a{i}" for i in range(load.ROW_GROUP_ROWS)], "n": range(load.ROW_GROUP_ROWS)})
    load.write_snapshot(wh, "run00", replace={"articles": big})
    first = next((load.current_snapshot(wh) / "articles").glob("*.parquet")).stat().st_ino
    rows = [big]
    for i in range(1, 3 * load.MERGE_PARTS):
        rows.append(pl.DataFrame({"article_id": [f"b{i}", f"c{i}"], "n": [i, -i]}))
        load.write_snapshot(wh, f"run{i:02d}", replace={}, append={"articles": rows[-1]})
        parts = sorted((load.current_snapshot(wh) / "articles").glob("*.parquet"))
        assert len(parts) <= 1 + load.MERGE_PARTS and parts[0].stat().st_ino == first  # the large part is only linked
        assert load.read_table(wh, "articles").equals(pl.concat(rows))


def test_crash_before_commit_leaves_previous_snapshot(tmp_path, monkeypatch):
    wh = tmp_path / "wh"
    load.write_snapshot(wh, "run1", replace=frames(3))

    def crash(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(load, "swap_current", crash)
    with pytest.raises(OSError):
        load.write_snapshot(wh, "run2", replace=frames(7))
    monkeypatch.undo()
    assert load.read_table(wh, "articles").height == 3
    load.write_snapshot(wh, "run3", replace=frames(5))
    assert load.read_table(wh, "articles").height == 5
    assert not list((wh / load.SNAPSHOTS).glob("*.staging"))


def test_old_snapshots_are_pruned(tmp_path):
    wh = tmp_path / "wh"
    for i in range(5):
        load.write_snapshot(wh, f"run{i}", replace=frames(i + 1))
    assert len(list((wh / load.SNAPSHOTS).iterdir())) == load.KEEP_SNAPSHOTS
    assert load.read_table(wh, "articles").height == 5


def test_second_writer_is_refused_with_a_clear_message(tmp_path):
    wh = tmp_path / "wh"
    with load.writer_lock(wh), pytest.raises(load.WarehouseBusy, match=f"pid {os.getpid()}"), \
            load.writer_lock(wh, wait_seconds=0.6):
        pass
    with load.writer_lock(wh):
        pass


def test_locked_catalog_is_a_warning_not_a_failure(tmp_path):
    wh = tmp_path / "wh"
    load.write_snapshot(wh, "run1", replace=frames(2))
    load.refresh_catalog(wh)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,time; c=duckdb.connect('{wh / 'news.duckdb'}');"
         " print('ready', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        warning = load.refresh_catalog(wh)
        assert warning is not None and "open in another process" in warning
    finally:
        holder.kill()


def test_connect_on_empty_warehouse_explains(tmp_path):
    with pytest.raises(FileNotFoundError, match="newsetl run"):
        load.connect(tmp_path)


def test_views_survive_duckdb_reopen(tmp_path):
    wh = tmp_path / "wh"
    load.write_snapshot(wh, "run1", replace=frames(2))
    load.refresh_catalog(wh)
    load.write_snapshot(wh, "run2", replace=frames(6))
    with duckdb.connect(str(wh / "news.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from articles").fetchone()[0] == 6
