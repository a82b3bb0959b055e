"""The flow end to end on the seeds into a temp warehouse: contract, idempotency, incremental runs, CLI."""

import contextlib
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from flows.news_etl import STAGE_RECORD, news_etl, worth_retrying
from newsetl.cli import app
from tasks import load
from tasks.assemble import INDEX_DF, INDEX_KEYS
from tasks.dedup import build_index
from tasks.ingest import REMOVED, REREAD, is_unchanged
from tests.conftest import SEEDS

CONTRACT = {
    "articles": ["article_id", "source_file", "source_id", "url", "outlet", "title", "published_date", "body",
                 "raw_chars", "clean_chars", "content_hash", "story_id", "duplicate_of", "ingested_at"],
    "boilerplate": ["article_id", "rule", "text", "char_start", "char_end"],
    "stories": ["story_id", "title", "first_published", "n_articles", "n_outlets", "outlets",
                "canonical_article_id"],
    "events": ["event_id", "story_id", "event_date", "source_actor", "source_code", "event_type", "event_mode",
               "target_actor", "target_code", "location", "negated", "n_articles", "n_outlets", "sentence",
               "confidence"],
    "event_mentions": ["event_id", "article_id", "sentence_index", "sentence", "char_start", "char_end", "outlet"],
    "quotes": ["quote_id", "article_id", "story_id", "speaker", "speaker_code", "quote"],
    "ingest_log": ["source_file", "status", "reason", "n_articles", "run_id"],
    "dq_results": ["run_id", "table_name", "expectation", "success", "unexpected_count"],
}


def snapshot(warehouse) -> dict[str, pl.DataFrame]:
    return {name: load.read_table(warehouse, name) for name in load.table_names(warehouse)}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, prefect_harness):
    """The seeds copied to a temp folder and loaded once into a temp warehouse."""
    root = tmp_path_factory.mktemp("flow")
    shutil.copytree(SEEDS, root / "seeds")
    counts = news_etl(source_dir=str(root / "seeds"), warehouse_dir=str(root / "wh"))
    return root, counts


def test_every_contract_table_and_column_is_there(seeded):
    root, counts = seeded
    tables = snapshot(root / "wh")
    for name, columns in CONTRACT.items():
        assert name in tables, name
        assert set(columns) <= set(tables[name].columns), (name, set(columns) - set(tables[name].columns))
    assert counts["articles"] == 5 and counts["stories"] == 3
    assert tables["ingest_log"]["status"].to_list() == ["ok"] * 5


def test_seeds_make_three_stories_without_copies(seeded):
    root, _ = seeded
    articles = load.read_table(root / "wh", "articles")
    groups = articles.group_by("story_id").agg(pl.col("source_id").str.slice(0, 3).sort()).sort("source_id")
    assert sorted(groups["source_id"].to_list()) == [["000", "001"], ["002", "003"], ["004"]]
    assert articles["duplicate_of"].is_null().all()


def test_bodies_are_clean_and_events_were_extracted(seeded):
    root, _ = seeded
    tables = snapshot(root / "wh")
    bodies = "\n".join(tables["articles"]["body"])
    assert "bookmarkicon" not in bodies and "25:57" not in bodies
    events = tables["events"]
    assert events.filter((pl.col("event_type") == "REQUEST") & (pl.col("source_code") == "POL")).height >= 1
    assert events.filter((pl.col("event_type") == "REJECT") & (pl.col("source_code") == "NATO")).height >= 1
    assert set(tables["event_mentions"]["event_id"]) <= set(events["event_id"])
    assert tables["dq_results"].height > 0 and tables["dq_results"]["success"].all()


def test_views_answer_sql_from_any_directory(seeded, tmp_path, monkeypatch):
    root, counts = seeded
    monkeypatch.chdir(tmp_path)
    with duckdb.connect(str(root / "wh" / "news.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from events").fetchone()[0] == counts["events"]
        assert con.execute("select count(distinct story_id) from articles").fetchone()[0] == 3


def test_rerun_and_full_refresh_are_idempotent(seeded):
    root, _ = seeded
    before = snapshot(root / "wh")
    news_etl(source_dir=str(root / "seeds"), warehouse_dir=str(root / "wh"))
    after_incremental = snapshot(root / "wh")
    news_etl(source_dir=str(root / "seeds"), warehouse_dir=str(root / "wh"), full_refresh=True)
    after_refresh = snapshot(root / "wh")
    for name, key in [("articles", "article_id"), ("stories", "story_id"), ("events", "event_id"),
                      ("event_mentions", "event_id"), ("quotes", "quote_id"), ("boilerplate", "article_id")]:
        for after in (after_incremental, after_refresh):
            assert sorted(after[name][key]) == sorted(before[name][key]), name
    unchanged = after_incremental["ingest_log"].filter(pl.col("run_id") != before["ingest_log"]["run_id"][0])
    assert unchanged["reason"].str.starts_with("unchanged").all() and unchanged.height == 5


@pytest.mark.parametrize("index", ["kept", "missing"])
def test_incremental_run_reads_only_the_new_file_and_it_joins_its_story(seeded, tmp_path, index):
    root, _ = seeded
    src, wh = tmp_path / "src", tmp_path / "wh"
    shutil.copytree(root / "seeds", src)
    new_file = src / "002_5b9274677ef01036.txt"
    held_back = new_file.read_text()
    new_file.unlink()
    news_etl(source_dir=str(src), warehouse_dir=str(wh))
    before = snapshot(wh)
    keys = load.current_snapshot(wh) / INDEX_KEYS
    assert load.read_table(wh, INDEX_KEYS).height == 4 and len(list(keys.glob("*.parquet"))) == 1
    if index == "missing":  # a warehouse written before the dedup index was kept: the run rebuilds it
        shutil.rmtree(keys)
        shutil.rmtree(load.current_snapshot(wh) / INDEX_DF)
    new_file.write_text(held_back)
    news_etl(source_dir=str(src), warehouse_dir=str(wh))
    after = snapshot(wh)
    assert INDEX_KEYS not in after and INDEX_DF not in after  # internal state: no view, not in `tables`
    kept_keys = load.read_table(wh, INDEX_KEYS)
    assert sorted(kept_keys["article_id"]) == sorted(after["articles"]["article_id"])
    parts = len(list((load.current_snapshot(wh) / INDEX_KEYS).glob("*.parquet")))
    assert parts == (2 if index == "kept" else 1)
    latest = after["ingest_log"].filter(pl.col("run_id") == after["ingest_log"]["run_id"][-1])
    assert latest.filter(pl.col("n_articles") > 0)["source_file"].to_list() == [str(new_file)]
    added = after["articles"].filter(pl.col("source_id") == new_file.name)
    sputnik_story = before["articles"].filter(pl.col("source_id").str.starts_with("003"))["story_id"][0]
    assert added["story_id"][0] == sputnik_story
    assert set(before["stories"]["story_id"]) == set(after["stories"]["story_id"])


def test_a_changed_file_replaces_its_articles_and_the_dedup_index_matches_a_rebuild(seeded, tmp_path):
    root, _ = seeded
    src, wh = tmp_path / "src", tmp_path / "wh"
    shutil.copytree(root / "seeds", src)
    news_etl(source_dir=str(src), warehouse_dir=str(wh))
    before = snapshot(wh)
    changed = src / "002_5b9274677ef01036.txt"
    changed.write_text(changed.read_text() + "\nNATO foreign ministers will meet again in Brussels next month.\n")
    news_etl(source_dir=str(src), warehouse_dir=str(wh))
    after = snapshot(wh)
    old_id = before["articles"].filter(pl.col("source_id") == changed.name)["article_id"][0]
    new_row = after["articles"].filter(pl.col("source_id") == changed.name)
    assert after["articles"].height == 5 and new_row.height == 1 and new_row["article_id"][0] != old_id
    assert "next month" in new_row["body"][0]
    for table in ("boilerplate", "event_mentions", "quotes"):
        assert old_id not in after[table]["article_id"].to_list(), table
    held = after["articles"].group_by("story_id").len()
    stories = after["stories"].join(held, on="story_id", how="full")
    assert stories.height == held.height and (stories["n_articles"] == stories["len"]).fill_null(False).all()
    rebuilt = build_index(after["articles"])
    kept = load.read_table(wh, INDEX_DF)
    assert kept.sort("key").equals(rebuilt.df.sort("key"))  # the superseded article's features are not counted
    assert sorted(load.read_table(wh, INDEX_KEYS)["article_id"]) == sorted(after["articles"]["article_id"])


def test_cli_tables_and_query(seeded):
    root, counts = seeded
    runner = CliRunner()
    listed = runner.invoke(app, ["tables", "--warehouse", str(root / "wh")])
    assert listed.exit_code == 0, listed.output
    for name in CONTRACT:
        assert name in listed.output
    queried = runner.invoke(app, ["query", "select count(*) as n from events", "--warehouse", str(root / "wh")])
    assert queried.exit_code == 0 and str(counts["events"]) in queried.output
    bad = runner.invoke(app, ["query", "select * from nope", "--warehouse", str(root / "wh")])
    assert bad.exit_code != 0


@contextlib.contextmanager
def flow_log() -> Iterator[list[logging.LogRecord]]:
    """The records the flow logs meanwhile."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, logger = Collect(), logging.getLogger("prefect.flow_runs")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


@contextlib.contextmanager
def stage_records() -> Iterator[dict[str, dict]]:
    """The stage records (`STAGE_RECORD`) the flow logs meanwhile, by stage (filled once the block ends)."""
    stages: dict[str, dict] = {}
    with flow_log() as records:
        yield stages
    stages.update({stage["stage"]: stage for record in records if (stage := getattr(record, STAGE_RECORD, None))})


def story_partition(articles: pl.DataFrame) -> set[frozenset[str]]:
    """Which articles share a story, whatever the story ids."""
    return {frozenset(ids) for ids in articles.group_by("story_id").agg("article_id")["article_id"].to_list()}


def test_removed_emptied_renamed_and_repeated_input_leaves_what_a_full_refresh_builds(seeded, tmp_path):
    root, _ = seeded
    src, wh, rebuilt = tmp_path / "src", tmp_path / "wh", tmp_path / "rebuilt"
    shutil.copytree(root / "seeds", src)
    text = "Ministers from {} met in Geneva on Monday and agreed to keep talking about the grain corridor. " * 3
    line = lambda n: json.dumps({"id": f"a{n}", "text": text.replace("{}", f"country {n}")})  # noqa: E731
    (src / "day1.jsonl").write_text(line(0) + "\n" + line(1) + "\n")
    news_etl(source_dir=str(src), warehouse_dir=str(wh))
    (src / "004_dd3f107e0edbb5a5.txt").unlink()  # removed
    (src / "003_a88de07e7e5ec5c5.txt").write_text("")  # emptied
    (src / "000_5aebb8792d952252.txt").rename(src / "100_renamed.txt")
    (src / "day2.jsonl").write_text(line(1) + "\n" + line(2) + "\n")  # a1 again, from a file that stays
    loaded_before = load.read_table(wh, "articles").height
    with stage_records() as stages:
        news_etl(source_dir=str(src), warehouse_dir=str(wh))
    assert stages["read"]["counts"]["prior_articles"] == loaded_before  # as read, before withdrawals
    news_etl(source_dir=str(src), warehouse_dir=str(rebuilt), full_refresh=True)
    incremental, full = snapshot(wh), snapshot(rebuilt)
    assert sorted(incremental["articles"]["article_id"]) == sorted(full["articles"]["article_id"])
    assert story_partition(incremental["articles"]) == story_partition(full["articles"])
    for table, key in [("event_mentions", "article_id"), ("quotes", "quote_id"), ("boilerplate", "article_id")]:
        assert sorted(incremental[table][key]) == sorted(full[table][key]), table
    assert sorted(load.read_table(wh, INDEX_KEYS)["article_id"]) == sorted(incremental["articles"]["article_id"])
    log = incremental["ingest_log"].filter(pl.col("run_id") == incremental["ingest_log"]["run_id"][-1])
    by_file = {(Path(f).name, n): (s, r) for f, n, s, r in log.select(
        "source_file", "source_line", "status", "reason").iter_rows()}
    assert by_file[("004_dd3f107e0edbb5a5.txt", None)] == ("removed", REMOVED)
    assert by_file[("000_5aebb8792d952252.txt", None)] == ("removed", REMOVED)
    assert by_file[("003_a88de07e7e5ec5c5.txt", None)] == ("quarantined", "empty file")
    assert by_file[("day2.jsonl", 1)] == ("quarantined", f"exact repeat of {src / 'day1.jsonl'}:2 (same id and text)")
    assert log.filter(pl.col("source_file").str.ends_with("day2.jsonl") & pl.col("source_line").is_null())[
        "n_articles"].to_list() == [1]
    ingested = stages["ingest"]["counts"]  # what the run reports, as the stored log has it (the repeat rejected)
    assert ingested["articles"] == log["n_articles"].sum() == 2
    assert ingested["rejected"] == log["status"].is_in(["quarantined", "error"]).sum() == 2
    manifest = load.read_table(wh, "manifest")["source_file"].map_elements(lambda f: Path(f).name, pl.String)
    assert sorted(manifest) == sorted(p.name for p in src.iterdir() if p.stat().st_size)
    news_etl(source_dir=str(src), warehouse_dir=str(wh))  # nothing changed: every file skipped, nothing removed
    again = snapshot(wh)
    latest = again["ingest_log"].filter(pl.col("run_id") == again["ingest_log"]["run_id"][-1])
    assert latest.select(is_unchanged()).to_series().sum() == latest.height - 1  # the empty file is read again
    assert sorted(again["articles"]["article_id"]) == sorted(incremental["articles"]["article_id"])


@pytest.mark.parametrize("first_copy", ["removed", "changed"])
@pytest.mark.parametrize("repeated_in", ["the same run", "a later run"])
def test_a_repeat_is_loaded_once_its_first_copy_is_withdrawn(first_copy, repeated_in, tmp_path, prefect_harness):
    src, wh, rebuilt = tmp_path / "src", tmp_path / "wh", tmp_path / "rebuilt"
    src.mkdir()
    text = "Ministers from {} met in Geneva on Monday and agreed to keep talking about the grain corridor. " * 3
    line = lambda n: json.dumps({"id": f"a{n}", "text": text.replace("{}", f"country {n}")})  # noqa: E731
    day1, day2 = src / "day1.jsonl", src / "day2.jsonl"
    day1.write_text(line(0) + "\n" + line(1) + "\n")
    if repeated_in == "a later run":
        news_etl(source_dir=str(src), warehouse_dir=str(wh))
    day2.write_text(line(1) + "\n" + line(2) + "\n")
    news_etl(source_dir=str(src), warehouse_dir=str(wh))
    assert sorted(load.read_table(wh, "articles")["source_id"]) == ["a0", "a1", "a2"]  # a1 from day1 only
    if first_copy == "removed":
        day1.unlink()
    else:
        day1.write_text(line(0) + "\n")
    (src / "day3.jsonl").write_text(line(1) + "\n")  # new, after day2: a1 is day2's, as in a full refresh
    news_etl(source_dir=str(src), warehouse_dir=str(wh))
    news_etl(source_dir=str(src), warehouse_dir=str(rebuilt), full_refresh=True)
    incremental, full = snapshot(wh), snapshot(rebuilt)
    origin = ["source_id", "source_file"]
    assert incremental["articles"].select(origin).sort(origin).equals(full["articles"].select(origin).sort(origin))
    assert (str(day2), "a1") in incremental["articles"].select("source_file", "source_id").rows()
    log = incremental["ingest_log"].filter(pl.col("run_id") == incremental["ingest_log"]["run_id"][-1])
    read_again = log.filter((pl.col("source_file") == str(day2)) & pl.col("source_line").is_null())
    assert read_again.select("status", "reason", "n_articles").row(0) == ("ok", REREAD, 2)
    assert load.read_table(wh, "manifest").filter(pl.col("source_file") == str(day2))["repeat_of"].to_list() == [None]
    news_etl(source_dir=str(src), warehouse_dir=str(wh))  # nothing changed: day2 is not read again
    log = load.read_table(wh, "ingest_log")
    assert log.filter(pl.col("run_id") == log["run_id"][-1]).select(is_unchanged()).to_series().all()


def test_a_run_whose_data_docs_fail_still_loads_and_says_so(tmp_path, monkeypatch, prefect_harness):
    import tasks.validate

    def broken(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(tasks.validate, "build_data_docs", broken)
    with flow_log() as records, stage_records() as stages:
        counts = news_etl(source_dir=str(SEEDS), warehouse_dir=str(tmp_path / "wh"))
    assert counts["articles"] == load.read_table(tmp_path / "wh", "articles").height == 5
    warnings = [record.getMessage() for record in records if record.levelno >= logging.WARNING]
    assert warnings == ["Data Docs were not rendered: OSError: disk full"]
    assert stages["load"]["note"] == "Data Docs not rendered"


def test_a_full_refresh_keeps_the_run_histories_and_rewrites_the_dedup_index(seeded, tmp_path):
    root, _ = seeded
    wh = tmp_path / "wh"
    news_etl(source_dir=str(root / "seeds"), warehouse_dir=str(wh))
    news_etl(source_dir=str(root / "seeds"), warehouse_dir=str(wh), full_refresh=True)
    tables = snapshot(wh)
    assert tables["dq_results"]["run_id"].n_unique() == 2 and tables["ingest_log"]["run_id"].n_unique() == 2
    assert sorted(load.read_table(wh, INDEX_KEYS)["article_id"]) == sorted(tables["articles"]["article_id"])


def test_a_missing_source_folder_fails_the_run_with_its_name(tmp_path, prefect_harness):
    with pytest.raises(FileNotFoundError, match=f"source folder {tmp_path / 'missing'} does not exist"):
        news_etl(source_dir=str(tmp_path / "missing"), warehouse_dir=str(tmp_path / "wh"))
    assert load.current_snapshot(tmp_path / "wh") is None


@pytest.mark.parametrize(("error", "retried"), [(FileNotFoundError("gone"), False), (OSError("busy disk"), True)])
def test_io_is_retried_unless_a_file_is_missing(error, retried):
    class Failed:  # a failed task run's state: its result is the exception
        def result(self, raise_on_failure: bool = True):
            return error

    assert worth_retrying(None, None, Failed()) is retried


def test_copies_of_a_removed_original_are_deduplicated_again_and_extracted(seeded, tmp_path):
    root, _ = seeded
    src, wh, rebuilt = tmp_path / "src", tmp_path / "wh", tmp_path / "rebuilt"
    shutil.copytree(root / "seeds", src)
    original = src / "004_dd3f107e0edbb5a5.txt"
    (src / "104_copy.txt").write_text(original.read_text())
    news_etl(source_dir=str(src), warehouse_dir=str(wh))
    copy = load.read_table(wh, "articles").filter(pl.col("source_id") == "104_copy.txt")
    assert copy["duplicate_of"].item() is not None  # a copy of 004, not extracted
    original.unlink()
    news_etl(source_dir=str(src), warehouse_dir=str(wh))  # used to fail: the copy pointed at a withdrawn article
    news_etl(source_dir=str(src), warehouse_dir=str(rebuilt), full_refresh=True)
    incremental, full = snapshot(wh), snapshot(rebuilt)
    assert incremental["articles"].filter(pl.col("source_id") == "104_copy.txt")["duplicate_of"].item() is None
    assert sorted(incremental["articles"]["article_id"]) == sorted(full["articles"]["article_id"])
    assert story_partition(incremental["articles"]) == story_partition(full["articles"])
    for table, key in [("event_mentions", "article_id"), ("quotes", "quote_id"), ("boilerplate", "article_id")]:
        assert sorted(incremental[table][key]) == sorted(full[table][key]), table
