"""Data quality through the whole flow: bad input loses nothing, a failed critical check leaves the warehouse as it
was, and every run reports (dq_results, quarantine, Data Docs, Prefect artifact, `newsetl report`)."""

import json
import shutil

import polars as pl
import pytest
from typer.testing import CliRunner

import tasks.dedup
import tasks.ingest
from flows.news_etl import news_etl
from newsetl.cli import app
from tasks import load
from tasks.assemble import INDEX_DF, INDEX_KEYS
from tasks.validate import NO_TEXT_LEFT, DataQualityError
from tests.conftest import BAD_INPUT, SEEDS

HUGE_BYTES = 50_000_000
EXPECTED_FILES = {  # file -> (status, start of reason, articles read)
    "all_boilerplate.txt": ("ok", None, 1),
    "binary.txt": ("quarantined", "binary file (NUL bytes), not text", 0),
    "empty.txt": ("quarantined", "empty file", 0),
    "huge.txt": ("quarantined", f"article too large: {HUGE_BYTES:,} bytes > limit", 0),
    "latin1.txt": ("ok", "invalid UTF-8 at byte 3; bytes that are not UTF-8 decoded as cp1252", 1),
    "mixed.jsonl": ("ok", None, 3),
    "nested/page.html": ("ok", None, 1),
    "notes.pdf": ("quarantined", "unsupported file type '.pdf'", 0),
    "vanishing.txt": ("error", "file disappeared before it could be read", 0),
}
EXPECTED_LINES = {2: "invalid JSON", 3: "no text", 5: "exact repeat of", 7: "JSON value is a list, not an object"}


def snapshot(warehouse) -> dict[str, pl.DataFrame]:
    return {name: load.read_table(warehouse, name) for name in load.table_names(warehouse)}


def latest_summary_artifact() -> str:
    """The markdown of the newest news_etl summary artifact."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["news-etl-summary"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    return found[0].data


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory, prefect_harness):
    """The bad-input fixtures plus a 50 MB article and a file that vanishes mid-run, loaded into a new warehouse."""
    root = tmp_path_factory.mktemp("bad")
    src = root / "src"
    shutil.copytree(BAD_INPUT, src)
    with (src / "huge.txt").open("w") as huge:
        huge.write("Word " * (HUGE_BYTES // 5))
    (src / "vanishing.txt").write_text("NATO ministers met in Brussels on Thursday.")
    real_discover = tasks.ingest.discover_files

    def discover_then_delete(dirs):
        found = real_discover(dirs)
        (src / "vanishing.txt").unlink()
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tasks.ingest, "discover_files", discover_then_delete)
        counts = news_etl(source_dir=str(src), warehouse_dir=str(root / "wh"))
    return src, root / "wh", counts, latest_summary_artifact()


def test_every_input_file_gets_one_log_row_with_a_clear_status_and_reason(bad_run):
    src, wh, _, _ = bad_run
    log = load.read_table(wh, "ingest_log")
    files = log.filter(pl.col("source_line").is_null())
    by_name = {r["source_file"].removeprefix(f"{src}/"): r for r in files.iter_rows(named=True)}
    assert sorted(by_name) == sorted(EXPECTED_FILES) and files.height == len(EXPECTED_FILES)
    for name, (status, reason, n_articles) in EXPECTED_FILES.items():
        row = by_name[name]
        assert (row["status"], row["n_articles"]) == (status, n_articles), name
        assert row["reason"] is None if reason is None else row["reason"].startswith(reason), (name, row["reason"])
    lines = log.filter(pl.col("source_line").is_not_null())
    assert lines["source_file"].str.ends_with("mixed.jsonl").all() and lines["status"].eq("quarantined").all()
    assert {
        r["source_line"]: r["reason"][: len(EXPECTED_LINES[r["source_line"]])] for r in lines.iter_rows(named=True)
    } == EXPECTED_LINES


def test_every_file_and_line_is_accounted_for(bad_run):
    src, wh, _, _ = bad_run
    tables = snapshot(wh)
    log = tables["ingest_log"]
    jsonl_lines = [line for line in (src / "mixed.jsonl").read_text().splitlines() if line.strip()]
    units = len(EXPECTED_FILES) - 1 + len(jsonl_lines)  # one per single-article file, one per JSONL line
    files = log.filter(pl.col("source_line").is_null())
    rejected_files = files.filter(pl.col("status") != "ok").height
    assert files["n_articles"].sum() + rejected_files + log["source_line"].is_not_null().sum() == units
    quarantined_articles = tables["quarantine"].filter(pl.col("table_name") == "articles")
    assert tables["articles"].height + quarantined_articles.height == files["n_articles"].sum()


def test_good_articles_in_a_file_with_bad_lines_still_load(bad_run):
    _, wh, counts, _ = bad_run
    articles = load.read_table(wh, "articles")
    assert sorted(articles.filter(pl.col("source_file").str.ends_with("mixed.jsonl"))["source_id"]) == [
        "m1",
        "m4",
        "m4",
    ]
    assert sorted(articles["source_id"]) == ["latin1.txt", "m1", "m4", "m4", "page.html"]
    assert counts["articles"] == 5


def test_all_boilerplate_article_is_quarantined_not_dropped(bad_run):
    _, wh, _, _ = bad_run
    quarantine = load.read_table(wh, "quarantine")
    article = quarantine.filter(pl.col("table_name") == "articles").to_dicts()
    assert len(article) == 1 and article[0]["reason"] == NO_TEXT_LEFT
    assert json.loads(article[0]["row_json"])["source_id"] == "all_boilerplate.txt"
    assert article[0]["expectation"] == "expect_column_values_to_be_in_set"
    spans = quarantine.filter(pl.col("table_name") == "boilerplate")
    assert spans.height > 0 and (spans["row_key"] == article[0]["row_key"]).all()
    assert article[0]["row_key"] not in load.read_table(wh, "articles")["article_id"].to_list()
    emptied_story = quarantine.filter(pl.col("table_name") == "stories")["row_key"].to_list()
    assert len(emptied_story) == 1 and emptied_story[0] not in load.read_table(wh, "stories")["story_id"].to_list()
    held = load.read_table(wh, "articles").group_by("story_id").len()
    stories = load.read_table(wh, "stories").join(held, on="story_id", how="full")
    assert stories.height == held.height and (stories["n_articles"] == stories["len"]).fill_null(False).all()
    dq = load.read_table(wh, "dq_results")
    failed = dq.filter(~pl.col("success"))
    assert ("articles", "body_has_text", "warning") in failed.select("table_name", "column", "severity").rows()
    assert (failed["severity"] == "warning").all()


def test_run_reports_artifact_data_docs_and_cli(bad_run):
    _, wh, _, summary = bad_run
    assert "| ingest | files quarantined | 4 |" in summary and "| ingest | files error | 1 |" in summary
    assert "| ingest | lines rejected | 4 |" in summary and "| clean | articles | 6 |" in summary
    assert "| load | articles rows | 5 |" in summary
    assert f"| articles | {NO_TEXT_LEFT} | 1 |" in summary
    assert "| boilerplate | its articles row (same article_id) was quarantined | 6 |" in summary
    index = wh.resolve() / "data_docs" / "index.html"
    assert index.is_file() and f"Data Docs: `{index}`" in summary
    result = CliRunner().invoke(app, ["report", "--warehouse", str(wh)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for text in (NO_TEXT_LEFT, "article too large", "file disappeared", "Quarantined rows: 8", f"Data Docs: {index}"):
        assert text in result.output, text


def test_report_without_a_warehouse_fails_clearly(tmp_path):
    result = CliRunner().invoke(app, ["report", "--warehouse", str(tmp_path)])
    assert result.exit_code == 1 and "run `newsetl run` first" in result.output


def test_failed_critical_check_leaves_the_last_good_snapshot(prefect_harness, tmp_path, monkeypatch):
    src, wh = tmp_path / "src", tmp_path / "wh"
    shutil.copytree(SEEDS, src)
    news_etl(source_dir=str(src), warehouse_dir=str(wh))
    good_snapshot, before = load.current_snapshot(wh), snapshot(wh)
    (src / "new.txt").write_text("Poland proposed a peacekeeping mission for Ukraine on Friday, officials said.")
    real_assign = tasks.dedup.assign_stories

    def duplicate_a_story(*args):
        result = real_assign(*args)
        return result._replace(stories=pl.concat([result.stories, result.stories.head(1)]))

    monkeypatch.setattr(tasks.dedup, "assign_stories", duplicate_a_story)
    with pytest.raises(DataQualityError, match=r"stories\.story_id: expect_column_values_to_be_unique failed"):
        news_etl(source_dir=str(src), warehouse_dir=str(wh))
    assert load.current_snapshot(wh) == good_snapshot
    after = snapshot(wh)
    assert sorted(after) == sorted(before)
    for name, frame in before.items():
        assert after[name].equals(frame), name
    assert "new.txt" not in after["articles"]["source_id"].to_list()
    docs = (wh / "data_docs" / "index.html").read_text()
    assert docs.count("validations/stories/") == 2  # the good run and the failed one
    assert "FAILED: critical data-quality checks failed" in latest_summary_artifact()


FUTURE_ARTICLE = (  # its date is implausible, so validation quarantines it
    "date 2999-03-01 https://example.com/future\nNATO and Poland discuss a peacekeeping mission\n\n"
    "Warsaw proposed on Friday that NATO send an armed peacekeeping mission to Ukraine, officials in Brussels said. "
    "Allies rejected the plan.\n"
)


def test_a_quarantined_article_leaves_the_dedup_index_as_a_rebuild_would(prefect_harness, tmp_path):
    src, wh = tmp_path / "src", tmp_path / "wh"
    shutil.copytree(SEEDS, src)
    news_etl(source_dir=str(src), warehouse_dir=str(wh))
    (src / "future.txt").write_text(FUTURE_ARTICLE)
    news_etl(source_dir=str(src), warehouse_dir=str(wh))
    quarantined = load.read_table(wh, "quarantine").filter(pl.col("table_name") == "articles")
    assert [json.loads(row)["source_id"] for row in quarantined["row_json"]] == ["future.txt"]
    articles = load.read_table(wh, "articles")
    assert articles.height == 5
    rebuilt = tasks.dedup.build_index(articles)
    assert load.read_table(wh, INDEX_DF).sort("key").equals(rebuilt.df.sort("key"))  # its features are not counted
    assert sorted(load.read_table(wh, INDEX_KEYS)["article_id"]) == sorted(articles["article_id"])
