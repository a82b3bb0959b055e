"""Ingest: every file found is logged; good articles load even from files with bad lines."""

import polars as pl
import pytest

from tasks.ingest import MAX_ARTICLE_BYTES, ingest_sources
from tests.conftest import BAD_INPUT, SEEDS


def log_of(log: pl.DataFrame, name: str) -> list[dict]:
    """Log rows of one file, by file name."""
    return log.filter(pl.col("source_file").str.ends_with("/" + name)).sort("source_line", nulls_last=False).to_dicts()


def test_seeds_become_five_articles_with_file_names_as_ids():
    raw, log = ingest_sources([SEEDS], run_id="r1")
    assert raw.height == 5
    assert sorted(raw["source_id"]) == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert raw["article_id"].n_unique() == 5
    assert log["status"].to_list() == ["ok"] * 5
    assert log["n_articles"].sum() == 5
    first = raw.filter(pl.col("source_id").str.starts_with("001"))["raw_text"][0]
    assert first.lstrip().startswith("date 2022-03-16")


def test_ids_are_stable_across_runs():
    first, _ = ingest_sources([SEEDS], run_id="r1")
    second, _ = ingest_sources([SEEDS], run_id="r2")
    assert first["article_id"].to_list() == second["article_id"].to_list()


def test_bad_input_is_logged_file_by_file_and_line_by_line():
    raw, log = ingest_sources([BAD_INPUT], run_id="r1")
    assert log_of(log, "empty.txt")[0]["status"] == "quarantined"
    assert log_of(log, "empty.txt")[0]["reason"] == "empty file"
    assert "binary" in log_of(log, "binary.txt")[0]["reason"]
    latin = log_of(log, "latin1.txt")[0]
    assert latin["status"] == "ok" and "invalid UTF-8" in latin["reason"]
    assert "Café owners" in raw.filter(pl.col("source_id") == "latin1.txt")["raw_text"][0]
    assert "unsupported file type '.pdf'" in log_of(log, "notes.pdf")[0]["reason"]
    html = raw.filter(pl.col("format") == "html").row(0, named=True)
    assert "diplomats met in Geneva" in html["raw_text"] and "Copyright" not in html["raw_text"]
    assert html["meta_title"] == "Talks in Geneva"


def test_jsonl_good_lines_load_and_each_bad_line_is_reported():
    raw, log = ingest_sources([BAD_INPUT / "mixed.jsonl"], run_id="r1")
    rows = log_of(log, "mixed.jsonl")
    by_line = {r["source_line"]: r for r in rows}
    assert by_line[None]["status"] == "ok" and by_line[None]["n_articles"] == 3
    assert by_line[2]["reason"].startswith("invalid JSON")
    assert by_line[3]["reason"].startswith("no text")
    assert "exact repeat of" in by_line[5]["reason"] and by_line[5]["reason"].endswith("(same id and text)")
    assert "not an object" in by_line[7]["reason"]
    assert sorted(raw["source_line"]) == [1, 4, 6]
    assert raw.filter(pl.col("source_line") == 1)["meta_published"][0] == "2024-05-02"
    n_lines = len((BAD_INPUT / "mixed.jsonl").read_text().splitlines())
    assert raw.height + sum(r["status"] == "quarantined" for r in rows) == n_lines


def test_oversized_article_is_quarantined_with_its_size(tmp_path):
    big = tmp_path / "huge.txt"
    big.write_text("Word " * (MAX_ARTICLE_BYTES // 5 + 10))
    (tmp_path / "ok.txt").write_text("Poland proposed a peacekeeping mission on Friday, officials said.")
    raw, log = ingest_sources([tmp_path], run_id="r1")
    assert raw["source_id"].to_list() == ["ok.txt"]
    reason = log_of(log, "huge.txt")[0]["reason"]
    assert reason.startswith("article too large") and f"{big.stat().st_size:,}" in reason


def test_file_that_disappears_mid_run_is_an_error_and_the_rest_loads(tmp_path, monkeypatch):
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(f"Article {name}: NATO ministers met in Brussels on Thursday.")
    import tasks.ingest as ingest

    real = ingest.discover_files

    def discover_then_delete(dirs):
        found = real(dirs)
        (tmp_path / "a.txt").unlink()
        return found

    monkeypatch.setattr(ingest, "discover_files", discover_then_delete)
    raw, log = ingest.ingest_sources([tmp_path], run_id="r1")
    assert raw["source_id"].to_list() == ["b.txt"]
    assert log_of(log, "a.txt")[0]["status"] == "error"
    assert "disappeared" in log_of(log, "a.txt")[0]["reason"]


def test_unchanged_files_are_logged_but_not_reread():
    _, first = ingest_sources([SEEDS], run_id="r1")
    raw, log = ingest_sources([SEEDS], run_id="r2", skip_hashes=frozenset(first["file_hash"][:3]))
    assert raw.height == 2
    assert log.filter(pl.col("reason").str.starts_with("unchanged")).height == 3


def test_missing_source_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ingest_sources([tmp_path / "nope"], run_id="r1")
