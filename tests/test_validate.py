"""Validate: criticals fail the run, warnings quarantine rows (with dependents), every check is recorded."""

import datetime as dt
import json

import polars as pl
import pytest

from newsetl.settings import load_settings
from tasks.validate import suite_definitions, suite_signature, validate_tables

CODES = ["NATO", "POL", "RUS", "UKR"]


def tables(**overrides) -> dict[str, pl.DataFrame]:
    """A small consistent warehouse; keyword arguments replace whole tables."""
    base = {
        "articles": pl.DataFrame({
            "article_id": ["a1", "a2"], "story_id": ["s1", "s1"], "content_hash": ["h1", "h2"],
            "raw_chars": [100, 80], "clean_chars": [90, 80], "published_date": [dt.date(2024, 4, 4)] * 2,
            "body": ["NATO created a mission in Ukraine.", "Poland welcomed the NATO mission."]}),
        "stories": pl.DataFrame({"story_id": ["s1"], "n_articles": [2], "canonical_article_id": ["a1"],
                                 "outlets": [["RT", "Sputnik"]]}),
        "events": pl.DataFrame({"event_id": ["e1"], "story_id": ["s1"], "event_type": ["AGREE"],
                                "source_code": ["NATO"], "target_code": ["UKR"], "confidence": [0.8],
                                "n_articles": [2], "event_date": [dt.date(2024, 4, 4)]}),
        "event_mentions": pl.DataFrame({"event_id": ["e1", "e1"], "article_id": ["a1", "a2"],
                                        "event_date": [dt.date(2024, 4, 4)] * 2}),
        "quotes": pl.DataFrame({"quote_id": ["q1"], "article_id": ["a2"], "quote": ["We welcome it."]}),
        "boilerplate": pl.DataFrame({"article_id": ["a1"], "char_start": [0], "char_end": [10]}),
        "ingest_log": pl.DataFrame({"source_file": ["f.txt"], "status": ["ok"]}),
    }
    return base | overrides


def run(t: dict[str, pl.DataFrame], expected_articles: int | None = None):
    return validate_tables(t, "run1", load_settings().expectations_dir, CODES,
                           t["articles"].height if expected_articles is None else expected_articles)


def test_clean_tables_pass_every_check():
    result = run(tables())
    assert result.critical_failures == []
    assert result.quarantine.is_empty()
    assert result.dq_results["success"].all()
    assert result.dq_results.height == sum(len(v) for v in suite_definitions().values())


def test_duplicate_key_and_unknown_event_type_are_critical():
    t = tables()
    t["events"] = pl.concat([t["events"], t["events"].with_columns(event_type=pl.lit("CELEBRATE"))])
    result = run(t)
    joined = "\n".join(result.critical_failures)
    assert "events.event_id: expect_column_values_to_be_unique" in joined
    assert "events.event_type: expect_column_values_to_be_in_set" in joined


def test_row_count_against_ingest_log_is_critical():
    result = run(tables(), expected_articles=3)
    assert any("expect_table_row_count_to_equal" in f for f in result.critical_failures)


def test_dangling_reference_is_critical():
    t = tables()
    t["event_mentions"] = t["event_mentions"].with_columns(event_id=pl.lit("missing"))
    assert any(f.startswith("event_mentions.event_id") for f in run(t).critical_failures)


def test_warning_rows_move_to_quarantine_with_their_dependents():
    t = tables()
    t["articles"] = t["articles"].with_columns(
        body=pl.when(pl.col("article_id") == "a2").then(pl.lit("icon bookmark-bicon bookmarkicon cameraicon"))
        .otherwise(pl.col("body")))
    result = run(t)
    assert result.critical_failures == []
    assert result.tables["articles"]["article_id"].to_list() == ["a1"]
    moved = result.quarantine.sort("table_name")
    assert moved["table_name"].to_list() == ["articles", "event_mentions", "quotes"]
    assert json.loads(moved.row(0, named=True)["row_json"])["article_id"] == "a2"
    assert "not_match_regex" in moved.row(0, named=True)["reason"]
    assert result.tables["event_mentions"].height == 1


def test_event_dated_after_its_article_is_quarantined():
    t = tables()
    t["event_mentions"] = t["event_mentions"].with_columns(
        event_date=pl.when(pl.col("article_id") == "a1").then(dt.date(2024, 4, 9)).otherwise(pl.col("event_date")))
    result = run(t)
    assert result.quarantine["table_name"].to_list() == ["event_mentions"]
    assert result.tables["event_mentions"]["article_id"].to_list() == ["a2"]


def test_committed_suites_match_the_code():
    import great_expectations as gx

    root = load_settings().expectations_dir / "gx" / "expectations"
    for table, expectations in suite_definitions().items():
        stored = json.loads((root / f"{table}.json").read_text())
        code = gx.ExpectationSuite(name=table, expectations=expectations)
        assert [{k: v for k, v in e.items() if k not in ("id", "rendered_content")}
                for e in stored["expectations"]] == suite_signature(code), table


@pytest.mark.parametrize("column", ["source_code", "target_code"])
def test_unknown_actor_code_is_a_warning(column):
    t = tables()
    t["events"] = t["events"].with_columns(pl.lit("XXX").alias(column))
    result = run(t)
    assert result.critical_failures == []
    assert result.quarantine.filter(pl.col("table_name") == "events").height == 1
