"""Validate: criticals fail the run, warnings quarantine rows (with dependents), every check is recorded."""

import contextlib
import datetime as dt
import json
import os
import re
import shutil

import polars as pl
import pytest

from newsetl.settings import load_settings
from tasks import validate
from tasks.assemble import loaded_rows
from tasks.validate import suite_definitions, suite_signature, validate_tables

CODES = ["NATO", "POL", "RUS", "UKR"]


def tables(**overrides) -> dict[str, pl.DataFrame]:
    """A small consistent warehouse; keyword arguments replace whole tables."""
    base = {
        "articles": pl.DataFrame(
            {
                "article_id": ["a1", "a2"],
                "story_id": ["s1", "s1"],
                "content_hash": ["h1", "h2"],
                "raw_chars": [100, 80],
                "clean_chars": [90, 80],
                "published_date": [dt.date(2024, 4, 4)] * 2,
                "body": ["NATO created a mission in Ukraine.", "Poland welcomed the NATO mission."],
                "duplicate_of": [None, "a1"],
            }
        ),
        "stories": pl.DataFrame(
            {"story_id": ["s1"], "n_articles": [2], "canonical_article_id": ["a1"], "outlets": [["RT", "Sputnik"]]}
        ),
        "events": pl.DataFrame(
            {
                "event_id": ["e1"],
                "story_id": ["s1"],
                "event_type": ["AGREE"],
                "source_code": ["NATO"],
                "target_code": ["UKR"],
                "confidence": [0.8],
                "n_articles": [2],
                "event_date": [dt.date(2024, 4, 4)],
            }
        ),
        "event_mentions": pl.DataFrame(
            {"event_id": ["e1", "e1"], "article_id": ["a1", "a2"], "event_date": [dt.date(2024, 4, 4)] * 2}
        ),
        "quotes": pl.DataFrame(
            {
                "quote_id": ["q1"],
                "article_id": ["a2"],
                "story_id": ["s1"],
                "speaker_code": ["POL"],
                "quote": ["We welcome it."],
            }
        ),
        "boilerplate": pl.DataFrame({"article_id": ["a1"], "char_start": [0], "char_end": [10]}),
        "ingest_log": pl.DataFrame(
            {
                "source_file": ["f.jsonl", "f.jsonl", "g.pdf"],
                "source_line": [None, 2, None],
                "status": ["ok", "quarantined", "quarantined"],
                "reason": [None, "invalid JSON", "unsupported file type '.pdf'"],
                "n_articles": [2, 0, 0],
                "run_id": ["run1"] * 3,
            }
        ),
    }
    return base | overrides


def run(t: dict[str, pl.DataFrame], expected_articles: int | None = None, loaded: dict[str, int] | None = None):
    return validate_tables(
        t,
        "run1",
        load_settings().expectations_dir,
        CODES,
        t["articles"].height if expected_articles is None else expected_articles,
        loaded,
    )


RESIDUAL = "icon bookmark-bicon bookmarkicon cameraicon"


def incremental(prior: dict[str, pl.DataFrame], **article) -> tuple[dict[str, pl.DataFrame], dict[str, int]]:
    """`prior` as loaded by an earlier run plus one new article a3 (story s2, one mention of a new event e2), and
    the `loaded` row counts saying so; keyword arguments override the new article's columns."""
    new_article = {
        "article_id": "a3",
        "story_id": "s2",
        "content_hash": "h3",
        "raw_chars": 60,
        "clean_chars": 50,
        "published_date": dt.date(2024, 4, 5),
        "body": "Russia rejected the NATO mission in Ukraine.",
        "duplicate_of": None,
    } | article
    new = {
        "articles": pl.DataFrame([new_article], schema=prior["articles"].schema),
        "stories": pl.DataFrame(
            {"story_id": ["s2"], "n_articles": [1], "canonical_article_id": ["a3"], "outlets": [["TASS"]]}
        ),
        "events": prior["events"].with_columns(
            event_id=pl.lit("e2"), story_id=pl.lit("s2"), event_type=pl.lit("REJECT"), source_code=pl.lit("RUS")
        ),
        "event_mentions": pl.DataFrame({"event_id": ["e2"], "article_id": ["a3"], "event_date": [dt.date(2024, 4, 5)]}),
        "ingest_log": prior["ingest_log"].head(1).with_columns(source_file=pl.lit("h.jsonl"), run_id=pl.lit("run2")),
    }
    t = {
        name: pl.concat([frame, new[name]], how="vertical_relaxed") if name in new else frame
        for name, frame in prior.items()
    }
    return t, loaded_rows(prior)


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
        body=pl.when(pl.col("article_id") == "a2")
        .then(pl.lit("icon bookmark-bicon bookmarkicon cameraicon"))
        .otherwise(pl.col("body"))
    )
    result = run(t)
    assert result.critical_failures == []
    assert result.tables["articles"]["article_id"].to_list() == ["a1"]
    moved = result.quarantine.sort("table_name")
    assert moved["table_name"].to_list() == ["articles", "event_mentions", "quotes"]
    assert json.loads(moved.row(0, named=True)["row_json"])["article_id"] == "a2"
    assert moved.row(0, named=True)["expectation"] == "expect_column_values_to_be_in_set"
    assert moved.row(0, named=True)["reason"].startswith("residual boilerplate in body")
    assert result.tables["event_mentions"].height == 1


def test_event_dated_after_its_article_is_quarantined():
    t = tables()
    t["event_mentions"] = t["event_mentions"].with_columns(
        event_date=pl.when(pl.col("article_id") == "a1").then(dt.date(2024, 4, 9)).otherwise(pl.col("event_date"))
    )
    result = run(t)
    assert result.quarantine["table_name"].to_list() == ["event_mentions"]
    assert result.tables["event_mentions"]["article_id"].to_list() == ["a2"]


def test_committed_suites_match_the_code():
    import great_expectations as gx

    root = load_settings().expectations_dir / "gx" / "expectations"
    for table, expectations in suite_definitions().items():
        stored = json.loads((root / f"{table}.json").read_text())
        code = gx.ExpectationSuite(name=table, expectations=expectations)
        assert [
            {k: v for k, v in e.items() if k not in ("id", "rendered_content")} for e in stored["expectations"]
        ] == suite_signature(code), table


@pytest.mark.parametrize(
    "table, column", [("events", "source_code"), ("events", "target_code"), ("quotes", "speaker_code")]
)
def test_unknown_actor_code_is_a_warning(table, column):
    t = tables()
    t[table] = t[table].with_columns(pl.lit("XXX").alias(column))
    result = run(t)
    assert result.critical_failures == []
    moved = result.quarantine.filter(pl.col("table_name") == table)
    assert moved["reason"].to_list() == [f"{column} is not in the actor gazetteer"]


def test_article_with_no_text_left_is_quarantined_with_its_story():
    t = tables()
    blank = pl.DataFrame(
        {
            "article_id": ["a3"],
            "story_id": ["s2"],
            "content_hash": ["h3"],
            "raw_chars": [138],
            "clean_chars": [0],
            "published_date": [None],
            "body": [""],
            "duplicate_of": [None],
        },
        schema_overrides={"published_date": pl.Date, "duplicate_of": pl.String},
    )
    t["articles"] = pl.concat([t["articles"], blank])
    t["stories"] = pl.concat(
        [
            t["stories"],
            pl.DataFrame(
                {"story_id": ["s2"], "n_articles": [1], "canonical_article_id": ["a3"], "outlets": [[]]},
                schema=t["stories"].schema,
            ),
        ]
    )
    t["boilerplate"] = pl.concat(
        [t["boilerplate"], pl.DataFrame({"article_id": ["a3"], "char_start": [0], "char_end": [138]})]
    )
    result = run(t)
    assert result.critical_failures == []
    assert quarantine_reasons(result) == {
        ("articles", "a3"): "no article text left after cleaning",
        ("boilerplate", "a3"): "its articles row (same article_id) was quarantined",
        ("stories", "s2"): "all its articles rows were quarantined",
    }
    assert result.tables["stories"]["story_id"].to_list() == ["s1"]
    assert result.tables["articles"]["article_id"].to_list() == ["a1", "a2"]


def quarantine_reasons(result) -> dict[tuple[str, str], str]:
    """(table, row key) -> reason of every quarantined row."""
    return {(r["table_name"], r["row_key"]): r["reason"] for r in result.quarantine.iter_rows(named=True)}


def test_event_left_without_mentions_is_quarantined():
    t = tables()
    t["event_mentions"] = t["event_mentions"].with_columns(event_date=dt.date(2024, 4, 9))
    result = run(t)
    assert sorted(result.quarantine["table_name"]) == ["event_mentions", "event_mentions", "events"]
    assert result.tables["events"].is_empty()


@pytest.mark.parametrize(
    "change, failing",
    [
        (pl.col("n_articles").replace(2, -1), "ingest_log.n_articles: expect_column_values_to_be_between"),
        (pl.col("reason").replace("invalid JSON", None), "ingest_log.reason: expect_column_values_to_not_be_null"),
        (pl.col("source_line").fill_null(2), "ingest_log.run_id,source_file,source_line: expect_compound_columns"),
    ],
)
def test_inconsistent_ingest_log_is_critical(change, failing):
    t = tables()
    t["ingest_log"] = t["ingest_log"].with_columns(change)
    assert any(f.startswith(failing) for f in run(t).critical_failures), run(t).critical_failures


@pytest.mark.parametrize(
    "table, column, parent",
    [
        ("articles", "duplicate_of", "articles"),
        ("articles", "story_id", "stories"),
        ("quotes", "story_id", "stories"),
        ("stories", "canonical_article_id", "articles"),
        ("boilerplate", "article_id", "articles"),
    ],
)
def test_references_to_missing_rows_are_critical(table, column, parent):
    t = tables()
    t[table] = t[table].with_columns(pl.lit("nope").alias(column))
    result = run(t)
    failing = f"{table}.{column}_in_{parent}: expect_column_values_to_be_in_set failed ({t[table].height} unexpected)"
    assert failing in result.critical_failures


def test_reference_checks_do_not_embed_parent_ids():
    stored = (load_settings().expectations_dir / "gx" / "expectations" / "articles.json").read_text()
    assert '"story_ids"' not in stored and "every story_id is found in stories.story_id" in stored


def test_expected_article_count_comes_from_the_ingest_log():
    from tasks.validate import expected_article_count

    log = tables()["ingest_log"]
    assert expected_article_count(None, log) == 2
    assert expected_article_count(tables()["articles"], log) == 4


def test_data_docs_are_built_under_the_warehouse(tmp_path):
    from tasks.validate import build_data_docs

    index = build_data_docs(run(tables()).gx_results, tmp_path / "wh", load_settings().expectations_dir)
    assert index == (tmp_path / "wh" / "data_docs" / "index.html").resolve()
    html = index.read_text()
    assert "run1" in html and "validations/articles/run1/" in html
    assert (index.parent / "expectations" / "articles.html").is_file()
    assert len(list((index.parent / "validations").rglob("*.html"))) == len(suite_definitions())


def test_data_docs_list_every_run_and_render_only_the_new_pages(tmp_path):
    from tasks.validate import build_data_docs

    wh, project = tmp_path / "wh", load_settings().expectations_dir
    failing = tables(articles=with_residual_boilerplate(tables()["articles"], "a2"))
    build_data_docs(validate_tables(failing, "run1", project, CODES, 2).gx_results, wh, project)
    rendered = {p: p.stat().st_mtime_ns for p in (wh / "data_docs").rglob("*.html") if p.name != "index.html"}
    for stored in (wh / "dq_validations").rglob("*.json"):
        stored.write_text("{")  # past results are listed from the index summary, not loaded again
    index = build_data_docs(validate_tables(tables(), "run2", project, CODES, 2).gx_results, wh, project)
    html = index.read_text()
    for table in suite_definitions():
        assert f"validations/{table}/run1/" in html and f"validations/{table}/run2/" in html
    assert html.count("'_validation_success_text': 'Failed'") == 1  # run1's articles
    assert {p: p.stat().st_mtime_ns for p in rendered} == rendered  # run1's pages and the suites' pages are kept


def test_data_docs_hold_the_newest_runs_and_archive_the_older_ones(tmp_path, monkeypatch):
    import tasks.validate
    from tasks.validate import DOCS_ARCHIVE, DOCS_SUMMARY, build_data_docs

    monkeypatch.setattr(tasks.validate, "DOCS_RUNS", 2)
    wh, project = tmp_path / "wh", load_settings().expectations_dir
    for run_id in ("run1", "run2", "run3"):  # one second apart at most: same run time, ordered by run name
        html = build_data_docs(validate_tables(tables(), run_id, project, CODES, 2).gx_results, wh, project).read_text()
    assert "/run1/" not in html
    assert all(f"validations/{t}/{r}/" in html for t in suite_definitions() for r in ("run2", "run3"))
    assert len(json.loads((wh / DOCS_SUMMARY).read_text())) == 2 * len(suite_definitions())
    for kept, files in (("dq_validations", "*.json"), ("data_docs/validations", "*.html")):
        assert {p.parent.parent.name for p in (wh / kept).rglob(files)} == {"run2", "run3"}
        archived = list((wh / DOCS_ARCHIVE / kept).rglob(files))
        assert {p.parent.parent.name for p in archived} == {"run1"} and len(archived) == len(suite_definitions())
    page = next((wh / DOCS_ARCHIVE / "data_docs" / "validations").rglob("*.html"))
    links = re.findall(r'href="([^"]+/(?:static/[^"]+\.css|expectations/[^"]+\.html))"', page.read_text())
    assert {"static", "expectations"} <= {href.split("/")[4] for href in links}
    assert all((page.parent / href).resolve().is_file() for href in links)  # it still finds styles and suite pages
    shutil.copytree(wh / DOCS_ARCHIVE / "dq_validations", wh / "dq_validations", dirs_exist_ok=True)  # a restore
    html = build_data_docs(validate_tables(tables(), "run4", project, CODES, 2).gx_results, wh, project).read_text()
    assert "/run1/" not in html and "/run2/" not in html and "validations/articles/run4/" in html
    assert {p.parent.parent.name for p in (wh / "dq_validations").rglob("*.json")} == {"run3", "run4"}


def test_data_docs_index_is_rebuilt_from_the_stored_results_without_its_summary(tmp_path):
    from tasks.validate import DOCS_SUMMARY, build_data_docs

    wh, project = tmp_path / "wh", load_settings().expectations_dir
    failing = tables(articles=with_residual_boilerplate(tables()["articles"], "a2"))
    build_data_docs(validate_tables(failing, "run1", project, CODES, 2).gx_results, wh, project)
    (wh / DOCS_SUMMARY).unlink()
    html = build_data_docs(validate_tables(tables(), "run2", project, CODES, 2).gx_results, wh, project).read_text()
    assert all(f"validations/{table}/{run}/" in html for table in suite_definitions() for run in ("run1", "run2"))
    assert html.count("'_validation_success_text': 'Failed'") == 1
    assert len(json.loads((wh / DOCS_SUMMARY).read_text())) == 2 * len(suite_definitions())


def test_data_docs_suite_page_is_rendered_again_when_its_suite_changed(tmp_path):
    from tasks.validate import build_data_docs

    project = shutil.copytree(load_settings().expectations_dir, tmp_path / "expectations")
    wh, result = tmp_path / "wh", validate_tables(tables(), "run1", project, CODES, 2)
    build_data_docs(result.gx_results, wh, project)
    pages = wh / "data_docs" / "expectations"
    rendered = {p.name: p.stat().st_mtime_ns for p in pages.glob("*.html")}
    later = rendered["articles.html"] / 1e9 + 10
    os.utime(project / "gx" / "expectations" / "articles.json", (later, later))
    build_data_docs(result.gx_results, wh, project)
    again = {p.name: p.stat().st_mtime_ns for p in pages.glob("*.html")}
    assert [name for name in rendered if again[name] != rendered[name]] == ["articles.html"]


def with_residual_boilerplate(articles: pl.DataFrame, article_id: str) -> pl.DataFrame:
    return articles.with_columns(
        body=pl.when(pl.col("article_id") == article_id).then(pl.lit(RESIDUAL)).otherwise(pl.col("body"))
    )


def test_incremental_run_checks_new_rows_not_prior_ones():
    prior = tables()
    prior["articles"] = with_residual_boilerplate(prior["articles"], "a2")  # would fail today's checks
    t, loaded = incremental(prior)
    result = run(t, loaded=loaded)
    assert result.critical_failures == [] and result.quarantine.is_empty()
    assert result.tables["articles"]["article_id"].to_list() == ["a1", "a2", "a3"]
    assert result.dq_results["success"].all()
    checked = result.gx_results["articles"].results[0].result["element_count"]
    assert checked == 1  # only a3 went to GX
    assert run(t).quarantine.filter(pl.col("table_name") == "articles")["row_key"].to_list() == ["a2"]


def test_incremental_run_quarantines_a_failing_new_row_with_its_dependents():
    t, loaded = incremental(tables())
    t["articles"] = with_residual_boilerplate(t["articles"], "a3")
    result = run(t, loaded=loaded)
    assert result.critical_failures == []
    assert quarantine_reasons(result) == {
        ("articles", "a3"): "residual boilerplate in body (icon-font run or player timestamps)",
        ("event_mentions", "e2"): "its articles row (same article_id) was quarantined",
        ("events", "e2"): "all its event_mentions rows were quarantined",
        ("stories", "s2"): "all its articles rows were quarantined",
    }
    assert json.loads(result.quarantine.row(0, named=True)["row_json"])["story_id"] == "s2"
    assert result.tables["articles"]["article_id"].to_list() == ["a1", "a2"]
    assert result.tables["events"]["event_id"].to_list() == ["e1"]


def test_incremental_run_still_catches_a_key_duplicated_between_prior_and_new_rows():
    t, loaded = incremental(tables(), article_id="a1")
    result = run(t, loaded=loaded)
    assert "articles.article_id: expect_column_values_to_be_unique failed (2 unexpected)" in result.critical_failures


def test_incremental_run_still_catches_a_prior_row_whose_parent_is_gone():
    t, loaded = incremental(tables())
    t["stories"] = t["stories"].with_columns(story_id=pl.col("story_id").replace("s1", "s9"))
    result = run(t, loaded=loaded)
    assert "quotes.story_id_in_stories: expect_column_values_to_be_in_set failed (1 unexpected)" in (
        result.critical_failures
    )
    assert "articles.story_id_in_stories: expect_column_values_to_be_in_set failed (2 unexpected)" in (
        result.critical_failures
    )


def test_incremental_run_catches_a_new_row_pointing_at_an_unknown_article():
    t, loaded = incremental(tables())
    t["event_mentions"] = t["event_mentions"].with_columns(
        article_id=pl.when(pl.col("event_id") == "e2").then(pl.lit("a9")).otherwise("article_id"))
    result = run(t, loaded=loaded)
    assert "event_mentions.article_id_in_articles: expect_column_values_to_be_in_set failed (1 unexpected)" in (
        result.critical_failures
    )


def test_shared_keys_looks_only_among_the_new_rows_keys():
    frame = pl.DataFrame({"k": ["a", "b", "a", None, "c", "b", None]}).with_row_index(validate.ROW)
    assert validate.shared_keys(frame, ["k"], None).to_list() == [0, 1, 2, 3, 5, 6]
    # rows 0..3 count as validated: their own duplicate (a) is not looked for; b and null come back with new rows
    assert validate.shared_keys(frame, ["k"], 4).to_list() == [1, 3, 5, 6]


def test_incremental_row_count_covers_the_whole_table():
    t, loaded = incremental(tables())
    assert run(t, expected_articles=3, loaded=loaded).critical_failures == []
    failures = run(t, expected_articles=4, loaded=loaded).critical_failures
    assert failures == ["articles.*: expect_table_row_count_to_equal failed (table-level unexpected)"]


def test_incremental_run_rechecks_a_prior_event_that_gains_a_mention():
    prior = tables()
    prior["events"] = prior["events"].with_columns(source_code=pl.lit("XXX"))  # loaded before the gazetteer changed
    t, loaded = incremental(prior)
    assert run(t, loaded=loaded).quarantine.is_empty()
    t["event_mentions"] = pl.concat(
        [
            t["event_mentions"],
            pl.DataFrame({"event_id": ["e1"], "article_id": ["a3"], "event_date": [dt.date(2024, 4, 4)]}),
        ]
    )
    result = run(t, loaded=loaded)
    moved = result.quarantine.filter(pl.col("table_name") == "events")
    assert moved["row_key"].to_list() == ["e1"] and moved["reason"].to_list() == [
        "source_code is not in the actor gazetteer"
    ]
    assert result.tables["event_mentions"]["event_id"].to_list() == ["e2"]


def test_cleaning_may_add_spaces_but_not_text():
    t = tables()
    glued = t["articles"].with_columns(clean_chars=pl.col("clean_chars") + 11)  # a2 grew from 80 to 91 chars
    assert run(t | {"articles": glued}).quarantine.is_empty()  # a2's body has 29 non-space characters
    longer = glued.with_columns(raw_chars=pl.col("raw_chars") - 60)
    result = run(t | {"articles": longer})
    assert result.quarantine.filter(pl.col("table_name") == "articles")["reason"].to_list() == [
        "cleaning made the body longer"
    ]


def test_event_may_carry_its_dateline_day_but_not_later():
    t = tables()
    next_day = t["event_mentions"].with_columns(event_date=pl.lit(dt.date(2024, 4, 5)))
    assert run(t | {"event_mentions": next_day}).quarantine.is_empty()
    two_days = t["event_mentions"].with_columns(
        event_date=pl.when(pl.col("article_id") == "a2").then(dt.date(2024, 4, 6)).otherwise(pl.col("event_date"))
    )
    result = run(t | {"event_mentions": two_days})
    assert result.quarantine.filter(pl.col("table_name") == "event_mentions")["row_key"].to_list() == ["e1"]
    assert result.tables["event_mentions"]["article_id"].to_list() == ["a1"]


def test_every_failing_row_is_quarantined_beyond_the_partial_list():
    t = tables()
    extra = pl.DataFrame(
        {
            "article_id": [f"x{i}" for i in range(25)],
            "story_id": ["s1"] * 25,
            "content_hash": [f"hx{i}" for i in range(25)],
            "raw_chars": [100] * 25,
            "clean_chars": [90] * 25,
            "published_date": [dt.date(2024, 4, 4)] * 25,
            "body": [RESIDUAL] * 25,
            "duplicate_of": [None] * 25,
        },
        schema=t["articles"].schema,
    )
    t["articles"] = pl.concat([t["articles"], extra])
    result = run(t)
    assert result.critical_failures == []
    assert sorted(result.quarantine["row_key"]) == sorted(extra["article_id"])  # GX's partial lists stop at 20
    check = next(c for c in result.gx_results["articles"].results if not c.success)
    assert len(check.result["unexpected_index_list"]) == 25


def test_validation_writes_nothing_into_the_gx_project(tmp_path):
    project = shutil.copytree(load_settings().expectations_dir, tmp_path / "expectations")
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    result = validate_tables(tables(), "run1", project, CODES, 2)
    assert result.dq_results["success"].all()
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before


@pytest.mark.parametrize(
    "published",
    [dt.date(1850, 5, 5), dt.date(2999, 1, 1), dt.date(1, 1, 1), dt.date(9999, 12, 31)],  # the last two: no ns
)
def test_implausible_published_date_is_quarantined(published):
    t = tables()
    t["articles"] = t["articles"].with_columns(
        published_date=pl.when(pl.col("article_id") == "a2").then(published).otherwise(pl.col("published_date"))
    )
    result = run(t)
    assert result.critical_failures == []
    assert quarantine_reasons(result)[("articles", "a2")] == "published_date is before 1900 or in the future"
    check = next(c for c in result.gx_results["articles"].results if not c.success)
    assert check.to_json_dict()["result"]["unexpected_list"] == [f"{published.isoformat()}T00:00:00"]


def test_results_are_the_same_without_reused_gx_configurations(monkeypatch):
    t = tables()
    t["articles"] = t["articles"].with_columns(  # a failing warning (residual boilerplate), run again in COMPLETE
        body=pl.when(pl.col("article_id") == "a2").then(pl.lit(RESIDUAL)).otherwise(pl.col("body"))
    )
    t["events"] = t["events"].with_columns(event_type=pl.lit("PARADE"))  # and a failing critical
    reused = run(t)
    monkeypatch.setattr(validate, "reused_configurations", contextlib.nullcontext)
    rebuilt = run(t)
    assert reused.critical_failures and reused.quarantine.height
    for table, result in reused.gx_results.items():
        assert result.to_json_dict()["results"] == rebuilt.gx_results[table].to_json_dict()["results"]
    assert reused.quarantine.equals(rebuilt.quarantine)


def test_copies_of_a_quarantined_original_go_with_it():
    t = tables()
    t["articles"] = t["articles"].with_columns(
        body=pl.when(pl.col("article_id") == "a1").then(pl.lit(RESIDUAL)).otherwise(pl.col("body"))
    )
    result = run(t)
    assert result.critical_failures == [] and result.tables["articles"].is_empty()
    reasons = quarantine_reasons(result)
    assert reasons[("articles", "a2")] == "its original (duplicate_of) was quarantined"
    assert reasons[("quotes", "q1")] == "its articles row (same article_id) was quarantined"  # the copy's quote
    assert reasons[("stories", "s1")] == "all its articles rows were quarantined"


def test_a_failing_row_is_found_by_its_position_after_a_parents_rows_were_moved():
    t = tables()
    t["articles"] = pl.concat([t["articles"], t["articles"].head(1).with_columns(
        article_id=pl.lit("a3"), content_hash=pl.lit("h3"), published_date=pl.lit(dt.date(2999, 1, 1)))])
    mention = t["event_mentions"].head(1)
    t["event_mentions"] = pl.concat([  # a3's mention comes first; a1's second one is dated after its article
        mention.with_columns(article_id=pl.lit("a3")), t["event_mentions"],
        mention.with_columns(event_date=pl.lit(dt.date(2024, 4, 9)))])
    result = run(t)
    assert result.critical_failures == []
    moved = result.quarantine.filter(pl.col("table_name") == "event_mentions")["row_json"].map_elements(
        lambda row: (json.loads(row)["article_id"], json.loads(row)["event_date"]), pl.Object).to_list()
    assert sorted(moved) == [("a1", "2024-04-09"), ("a3", "2024-04-04")]
    kept = result.tables["event_mentions"].select("article_id", "event_date").rows()
    assert kept == [("a1", dt.date(2024, 4, 4)), ("a2", dt.date(2024, 4, 4))]
