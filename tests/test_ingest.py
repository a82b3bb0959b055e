"""Ingest: every file found is logged; good articles load even from files with bad lines."""

import json
import os
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tasks.assemble import manifest, rebatched
from tasks.ingest import MANIFEST_SCHEMA, MAX_ARTICLE_BYTES, REMOVED, REREAD, ingest_sources, is_unchanged
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


def write_bulk_jsonl(path: Path) -> None:
    """A JSONL file long enough to be read in bulk, so that ingest yields its articles as a frame of their own."""
    import tasks.ingest as ingest

    path.write_text("".join(json.dumps({"id": f"{path.name}{i}", "text": f"NATO ministers met {i} times."}) + "\n"
                            for i in range(ingest.BULK_JSONL_LINES)))


def write_stories(path: Path, *ids: str) -> None:
    """A JSONL file of one short story per id, in order."""
    path.write_text("".join(json.dumps({"id": i, "text": f"Story {i} says the minister resigned on Monday."}) + "\n"
                            for i in ids))


def file_reasons(log: pl.DataFrame) -> dict[str, str | None]:
    """The reason of each file's row, by file name."""
    files = log.filter(pl.col("source_line").is_null())
    return dict(zip(files["source_file"].str.split("/").list.last(), files["reason"], strict=True))


def test_articles_are_yielded_file_by_file_before_later_files_are_read(tmp_path):
    import tasks.ingest as ingest

    for name in ("a.jsonl", "b.jsonl"):
        write_bulk_jsonl(tmp_path / name)
    stream = ingest.read_sources([tmp_path], run_id="r1")
    first = next(stream)
    assert first["source_file"].unique().to_list() == [str(tmp_path / "a.jsonl")]
    assert first.height == ingest.BULK_JSONL_LINES
    (tmp_path / "b.jsonl").unlink()  # not read yet
    rest = []
    log = ingest.drain(stream, rest.append)
    assert sum(frame.height for frame in rest) == 0
    assert log_of(log, "b.jsonl")[0]["status"] == "error" and "disappeared" in log_of(log, "b.jsonl")[0]["reason"]
    assert log_of(log, "a.jsonl")[0]["n_articles"] == ingest.BULK_JSONL_LINES


def test_a_consumer_failing_mid_stream_closes_it_and_turns_the_cycle_collector_back_on(tmp_path):
    import gc

    import tasks.ingest as ingest

    for name in ("a.jsonl", "b.jsonl"):  # the first frame comes while files are still read (the collector off)
        write_bulk_jsonl(tmp_path / name)

    def fail(_frame):
        raise RuntimeError("consumer failed")

    assert gc.isenabled()
    for stream in (ingest.read_sources([tmp_path], run_id="r1"),
                   rebatched(ingest.read_sources([tmp_path], run_id="r1"), 10, 1000, "raw_text")):
        with pytest.raises(RuntimeError, match="consumer failed"):
            ingest.drain(stream, fail)
        assert gc.isenabled()  # though `stream` still refers to the stream


def test_unchanged_files_are_logged_but_not_reread():
    _, first = ingest_sources([SEEDS], run_id="r1")
    raw, log = ingest_sources([SEEDS], run_id="r2", manifest=first.head(3).select("source_file", "file_hash"))
    assert raw.height == 2
    assert log.filter(pl.col("reason").str.starts_with("unchanged")).height == 3


def test_files_with_the_same_size_and_time_are_not_even_read(tmp_path, monkeypatch):
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(f"Story {name} says the minister resigned on Monday after the vote.")
    _, first = ingest_sources([tmp_path], run_id="r1")
    stamp = (tmp_path / "c.txt").stat().st_mtime_ns
    (tmp_path / "c.txt").write_text("Story c.txt says the minister resigned on Sunday after the vote.")
    os.utime(tmp_path / "c.txt", ns=(stamp, stamp))  # same size and time: taken as unchanged, by design
    (tmp_path / "b.txt").write_text("Story b.txt says the minister stayed on Monday after the vote!!")
    read = []
    monkeypatch.setattr(Path, "read_bytes", lambda self, real=Path.read_bytes: read.append(self.name) or real(self))
    raw, log = ingest_sources([tmp_path], run_id="r2", manifest=manifest(None, first))
    assert read == ["b.txt"] and raw["source_id"].to_list() == ["b.txt"]
    reasons = dict(zip(log["source_file"].str.split("/").list.last(), log["reason"], strict=True))
    assert reasons["a.txt"] == reasons["c.txt"] == "unchanged since an earlier run (same size and time); not read"
    assert log.filter(pl.col("source_file").str.ends_with("a.txt"))["file_hash"].item() == first["file_hash"][0]


def test_missing_source_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ingest_sources([tmp_path / "nope"], run_id="r1")



def test_bulk_jsonl_path_gives_the_same_rows_and_log_as_the_per_line_path(tmp_path, monkeypatch):
    import tasks.ingest as ingest

    first = {"id": "a1", "title": "T", "url": "https://x.org/1", "outlet": "X", "published": "2024-01-02",
             "text": "One é 😀"}
    page = "<html><head><title>Summit</title></head><body><p>" + "Leaders met in Rome on Monday. " * 5 + "</p>"
    records = [
        first,
        {"text": "no id, so the file name and line"},
        {"id": "", "title": "", "body": "empty id and title", "text": " \x1f\u3000"},
        {"id": 7, "title": True, "published": 2024, "text": "non-string fields take the per-line path"},
        first,
        {"id": "r", "title": 5, "text": "repeat of a per-line line"},
        {"id": "r", "text": "repeat of a per-line line"},
        {"id": "h", "html": page + "</body></html>"},
        {"id": "none", "text": "  ", "body": None},
        ["not", "an", "object"],
    ]
    text = "\n".join(json.dumps(r) for r in records) + "\n".join([
        "", '{"id": "bad"', "", '{"id": "nan", "text": "NaN is lenient JSON", "x": NaN}\r',
        '{"id": "sep", "text": "a\u2028b"}', '{"text": "first", "text": "last key wins"}',
        '{"id": "big", "text": "huge int", "n": 123456789012345678901234567890}',
    ])
    (tmp_path / "a.jsonl").write_text(text, encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(json.dumps(first) + '\n{"id": "b", "text": "B"}\n', encoding="utf-8")
    bulk = ingest.plain_jsonl_articles
    assert bulk("a.jsonl", ingest.jsonl_lines(text), None).height == 8

    monkeypatch.setattr(ingest, "BULK_JSONL_LINES", 0)  # every file through the bulk path
    raw, log = ingest.ingest_sources([tmp_path], run_id="r1")
    monkeypatch.setattr(ingest, "plain_jsonl_articles", lambda source_file, _, at: bulk(source_file, [], at))
    per_line_raw, per_line_log = ingest.ingest_sources([tmp_path], run_id="r1")
    monkeypatch.setattr(ingest, "BULK_JSONL_LINES", 10**6)  # every file as a short one, line by line
    short_raw, short_log = ingest.ingest_sources([tmp_path], run_id="r1")

    for other_raw, other_log in [(per_line_raw, per_line_log), (short_raw, short_log)]:
        assert raw["ingested_at"].n_unique() == 1 and raw.schema == other_raw.schema
        assert_frame_equal(raw.drop("ingested_at"), other_raw.drop("ingested_at"))
        assert_frame_equal(log.drop("logged_at"), other_log.drop("logged_at"))
    assert raw.height + log["source_line"].is_not_null().sum() == len(ingest.jsonl_lines(text)) - 1 + 2
    by_id = {r["source_id"]: r for r in raw.to_dicts()}
    assert by_id["7"]["meta_title"] == "True" and by_id["a.jsonl:2"]["raw_text"] == "no id, so the file name and line"
    assert by_id["a.jsonl:3"]["raw_text"] == "empty id and title" and by_id["a.jsonl:3"]["meta_title"] is None
    assert by_id["sep"]["raw_text"] == "a\u2028b"


def test_jsonl_lines_split_only_at_line_breaks_not_at_separators_inside_strings(tmp_path):
    texts = ["First paragraph.\u2028Second paragraph.", "Caption\u0085and body\u2029end.", "Plain text."]
    lines = [json.dumps({"id": f"a{n}", "text": t}, ensure_ascii=False) for n, t in enumerate(texts)]
    (tmp_path / "a.jsonl").write_bytes("\r\n".join([lines[0], "{broken", lines[1], lines[2]]).encode() + b"\r\n")
    raw, log = ingest_sources([tmp_path], run_id="r1")
    assert raw.sort("source_line").select("source_id", "source_line", "raw_text").rows() == [
        ("a0", 1, texts[0]), ("a1", 3, texts[1]), ("a2", 4, texts[2])]
    assert log.filter(pl.col("status") != "ok").select("source_line", "status").rows() == [(2, "quarantined")]


def test_a_touched_but_unchanged_file_is_hashed_once_then_skipped_by_its_time(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("Story a says the minister resigned on Monday after the vote.")
    _, first = ingest_sources([tmp_path], run_id="r1")
    os.utime(tmp_path / "a.txt", ns=(10**18, 10**18))  # touched: a new modification time, the same content
    read = []
    monkeypatch.setattr(Path, "read_bytes", lambda self, real=Path.read_bytes: read.append(self.name) or real(self))
    after_first = manifest(None, first)
    _, second = ingest_sources([tmp_path], run_id="r2", manifest=after_first)
    assert read == ["a.txt"] and second["reason"].to_list() == ["unchanged since an earlier run; not re-read"]
    after_second = manifest(after_first, second)
    assert after_second["file_mtime_ns"].to_list() == [10**18] and after_second["run_id"].to_list() == ["r1"]
    _, third = ingest_sources([tmp_path], run_id="r3", manifest=after_second)
    assert read == ["a.txt"] and third["reason"].to_list() == [
        "unchanged since an earlier run (same size and time); not read"]


def test_a_file_holding_repeats_is_read_again_once_their_first_copies_file_is_replaced(tmp_path):
    write_stories(tmp_path / "a.jsonl", "a0", "a1")
    write_stories(tmp_path / "b.jsonl", "a1", "a2", "a2")  # a repeat of its own too
    _, first = ingest_sources([tmp_path], run_id="r1")
    after_first = manifest(None, first)
    assert dict(after_first.select("source_file", "repeat_of").iter_rows()) == {
        str(tmp_path / "a.jsonl"): None, str(tmp_path / "b.jsonl"): [str(tmp_path / "a.jsonl")]}
    raw, second = ingest_sources([tmp_path], run_id="r2", manifest=after_first)
    assert raw.is_empty() and second.select(is_unchanged()).to_series().all()
    assert manifest(after_first, second).equals(after_first)  # an unchanged file keeps its repeats
    (tmp_path / "a.jsonl").unlink()
    raw, third = ingest_sources([tmp_path], run_id="r3", manifest=after_first)
    assert raw["source_id"].to_list() == ["a1", "a2"]
    assert third.filter(pl.col("source_line").is_null()).select("source_file", "status", "reason").rows() == [
        (str(tmp_path / "b.jsonl"), "ok", REREAD), (str(tmp_path / "a.jsonl"), "removed", REMOVED)]
    assert manifest(after_first, third)["repeat_of"].to_list() == [None]


def test_a_chain_of_repeats_is_read_again_from_its_first_copies_on(tmp_path):
    write_stories(tmp_path / "a.jsonl", "a1")
    write_stories(tmp_path / "b.jsonl", "a1", "b1")  # repeats a's a1
    write_stories(tmp_path / "c.jsonl", "b1")  # repeats b's b1
    _, first = ingest_sources([tmp_path], run_id="r1")
    write_stories(tmp_path / "b.jsonl", "a1")  # b1 leaves b: c's copy is an article again
    raw, second = ingest_sources([tmp_path], run_id="r2", manifest=manifest(None, first))
    assert raw.select("source_id", pl.col("source_file").str.split("/").list.last()).rows() == [
        ("a1", "b.jsonl"), ("b1", "c.jsonl")]  # (a1 is dropped later: a, unchanged, holds it)
    assert file_reasons(second) == {
        "a.jsonl": "unchanged since an earlier run (same size and time); not read", "b.jsonl": None, "c.jsonl": REREAD}


def test_a_file_read_again_unchanged_does_not_make_the_files_repeating_it_read_again(tmp_path):
    write_stories(tmp_path / "a.jsonl", "a1")
    write_stories(tmp_path / "b.jsonl", "a1", "b1")  # repeats a's a1
    write_stories(tmp_path / "c.jsonl", "b1")  # repeats b's b1, which stays in b
    _, first = ingest_sources([tmp_path], run_id="r1")
    (tmp_path / "a.jsonl").unlink()
    raw, second = ingest_sources([tmp_path], run_id="r2", manifest=manifest(None, first))
    assert raw["source_id"].to_list() == ["a1", "b1"]  # b only
    assert file_reasons(second) == {
        "b.jsonl": REREAD, "c.jsonl": "unchanged since an earlier run (same size and time); not read",
        "a.jsonl": REMOVED}


def test_a_file_that_could_not_be_read_again_is_read_whole_next_run(tmp_path, monkeypatch):
    write_stories(tmp_path / "a.jsonl", "a1")
    write_stories(tmp_path / "b.jsonl", "a1", "b1")  # repeats a's a1
    _, first = ingest_sources([tmp_path], run_id="r1")
    write_stories(tmp_path / "a.jsonl", "a2")  # a1 leaves a: b's copy is an article again
    real = Path.read_bytes

    def denied(path: Path) -> bytes:
        if path.name == "b.jsonl":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", denied)
    _, second = ingest_sources([tmp_path], run_id="r2", manifest=manifest(None, first))
    assert second.filter(pl.col("source_file").str.ends_with("b.jsonl"))["status"].to_list() == ["error"]
    monkeypatch.setattr(Path, "read_bytes", real)
    after_second = manifest(manifest(None, first), second)
    raw, _ = ingest_sources([tmp_path], run_id="r3", manifest=after_second)
    assert raw["source_id"].to_list() == ["a1", "b1"]


def test_a_repeat_read_again_goes_to_the_first_file_holding_it_as_in_a_full_refresh(tmp_path):
    write_stories(tmp_path / "a.jsonl", "x")
    write_stories(tmp_path / "b.jsonl", "x", "b1")  # repeats a's x
    _, first = ingest_sources([tmp_path], run_id="r1")
    (tmp_path / "a.jsonl").unlink()
    write_stories(tmp_path / "c.jsonl", "x")  # new, after b in the folder: x is b's, not c's
    raw, second = ingest_sources([tmp_path], run_id="r2", manifest=manifest(None, first))
    full, _ = ingest_sources([tmp_path], run_id="r3")
    origins = [(r["source_id"], Path(r["source_file"]).name) for r in raw.sort("source_id").iter_rows(named=True)]
    assert origins == [("b1", "b.jsonl"), ("x", "b.jsonl")]
    assert full.select("source_id", "source_file").sort("source_id").equals(
        raw.select("source_id", "source_file").sort("source_id"))
    assert file_reasons(second) == {"b.jsonl": REREAD, "c.jsonl": None, "a.jsonl": REMOVED}
    repeats = dict(manifest(manifest(None, first), second).select("source_file", "repeat_of").iter_rows())
    assert repeats == {str(tmp_path / "b.jsonl"): None, str(tmp_path / "c.jsonl"): [str(tmp_path / "b.jsonl")]}


@pytest.mark.parametrize("bulk_from", [0, 10**6], ids=["in bulk", "line by line"])
def test_odd_but_legal_jsonl_lines_load_and_unreadable_ones_are_each_rejected(tmp_path, monkeypatch, bulk_from):
    import tasks.ingest as ingest

    monkeypatch.setattr(ingest, "MAX_ARTICLE_BYTES", 300_000)
    monkeypatch.setattr(ingest, "BULK_JSONL_LINES", bulk_from)
    lines = [
        '{"id": "cr", "text":\r"A bare CR between tokens is JSON whitespace."}',
        '{"id": "lone", "text": "broken emoji \\ud83d here", "title": "also \\udc00 here"}',
        '{"id": "pair", "text": "an escaped pair \\ud83d\\ude00 is one emoji"}',
        '{"id": "nul", "text": "a raw NUL \x00 is not JSON"}',
        '{"id": "deep", "text": "x", "n": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"id": "digits", "text": "x", "n": ' + "7" * 5_000 + "}",
        '{"id": "huge", "text": "' + "word " * 70_000 + '"}',
        '{"id": "last", "text": "The line after them keeps its number."}',
    ]
    (tmp_path / "a.jsonl").write_bytes("\n".join(lines).encode("utf-8") + b"\n")
    raw, log = ingest_sources([tmp_path], run_id="r1")
    texts = dict(zip(raw["source_id"], raw["raw_text"], strict=True))
    assert raw.sort("source_line").select("source_id", "source_line").rows() == [
        ("cr", 1), ("lone", 2), ("pair", 3), ("last", 8)]
    assert texts["lone"] == "broken emoji \ufffd here" and texts["pair"] == "an escaped pair \U0001f600 is one emoji"
    assert raw.filter(pl.col("source_id") == "lone")["meta_title"].item() == "also \ufffd here"
    rejected = dict(zip(log["source_line"], log["reason"], strict=True))
    assert rejected[4].startswith("invalid JSON: Invalid control character") and " at at " not in rejected[4]
    assert rejected[5].startswith("unreadable JSON: maximum recursion depth")
    assert rejected[6].startswith("unreadable JSON: Exceeds the limit")
    assert rejected[7] == "line too large: more than 300,000 bytes"
    assert log.filter(pl.col("source_line").is_null())["n_articles"].to_list() == [4]


def test_a_stray_byte_is_read_as_cp1252_without_garbling_the_utf8_around_it(tmp_path):
    (tmp_path / "a.txt").write_bytes("\ufeffErdoğan met officials in Αθήνα on Monday.".encode() + b" Caf\xe9 talk.")
    raw, log = ingest_sources([tmp_path], run_id="r1")
    assert raw["raw_text"].item() == "Erdoğan met officials in Αθήνα on Monday. Café talk."
    assert log["reason"].item() == "invalid UTF-8 at byte 54; bytes that are not UTF-8 decoded as cp1252"


def test_a_file_name_that_is_not_utf8_is_logged_with_escapes(tmp_path):
    (tmp_path / os.fsdecode(b"caf\xe9.txt")).write_text("The minister resigned on Monday after the vote.")
    raw, log = ingest_sources([tmp_path], run_id="r1")
    assert raw["source_id"].to_list() == ["caf\\xe9.txt"] and log["status"].to_list() == ["ok"]
    assert log["source_file"].item().endswith("/caf\\xe9.txt")


def test_a_file_that_fails_unexpectedly_is_an_error_and_the_rest_loads(tmp_path, monkeypatch):
    import tasks.ingest as ingest

    (tmp_path / "a.html").write_text("<html><body><p>Leaders met in Rome.</p></body></html>")
    (tmp_path / "b.txt").write_text("The minister resigned on Monday after the vote.")
    monkeypatch.setattr(ingest, "html_to_text", lambda html, meta: 1 / 0)
    raw, log = ingest_sources([tmp_path], run_id="r1")
    assert raw["source_id"].to_list() == ["b.txt"]
    assert log.select("status", "reason").rows() == [
        ("error", "could not be read: ZeroDivisionError: division by zero"), ("ok", None)]


def test_html_fragments_are_extracted_and_dates_come_from_page_metadata_only(tmp_path):
    story = "Leaders met in Rome on Monday to agree on aid for the flooded villages in the north. " * 3
    dated = ('<html><head><meta property="article:published_time" content="2024-03-05"></head><body><p>'
             + story + "</p></body></html>")
    undated = "<html><body><p>" + story + "It recalled the summit on 21 November 1995.</p>" \
              "<footer>Copyright © 2019</footer></body></html>"
    records = [{"id": "fragment", "html": "<p>" + story + "</p>"}, {"id": "dated", "html": dated},
               {"id": "undated", "html": undated}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    raw, log = ingest_sources([tmp_path], run_id="r1")
    rows = {r["source_id"]: r for r in raw.to_dicts()}
    assert sorted(rows) == ["dated", "fragment", "undated"]
    assert rows["fragment"]["raw_text"].startswith("Leaders met in Rome on Monday")
    assert rows["dated"]["meta_published"] == "2024-03-05" and rows["undated"]["meta_published"] is None


def test_linked_folders_are_read_and_entries_that_are_not_files_are_logged(tmp_path):
    source, elsewhere = tmp_path / "source", tmp_path / "elsewhere"
    source.mkdir()
    elsewhere.mkdir()
    (source / "a.txt").write_text("The minister resigned on Monday after the vote.")
    (elsewhere / "b.txt").write_text("Leaders met in Rome on Tuesday to agree on aid.")
    (source / "linked").symlink_to(elsewhere, target_is_directory=True)
    (source / "linked" / "again").symlink_to(source, target_is_directory=True)  # a loop back to the source
    (source / "gone.txt").symlink_to(tmp_path / "missing.txt")
    (source / "loop.txt").symlink_to(source / "loop.txt")
    os.mkfifo(source / "pipe.txt")
    raw, log = ingest_sources([source], run_id="r1")
    assert sorted(raw["source_id"]) == ["a.txt", "b.txt"]
    reasons = {Path(f).relative_to(source).as_posix(): (s, r) for f, s, r in log.select(
        "source_file", "status", "reason").iter_rows()}
    assert reasons == {
        "a.txt": ("ok", None), "linked/b.txt": ("ok", None),
        "gone.txt": ("error", f"broken symbolic link (to {tmp_path / 'missing.txt'})"),
        "loop.txt": ("error", "cannot read file: Too many levels of symbolic links"),
        "pipe.txt": ("error", "not a regular file"),
    }


def test_an_html_page_in_a_declared_legacy_encoding_is_decoded_with_it(tmp_path):
    page = ('<html><head><meta charset="windows-1251"><title>Новости дня</title></head><body><p>'
            + "Министры встретились в Москве в понедельник, чтобы обсудить помощь. " * 4 + "</p></body></html>")
    (tmp_path / "a.html").write_bytes(page.encode("cp1251"))
    raw, log = ingest_sources([tmp_path], run_id="r1")
    assert raw["meta_title"].item() == "Новости дня" and raw["raw_text"].item().startswith("Министры встретились")
    first_cyrillic = page.index("Новости")  # the bytes before it are ASCII
    assert log["reason"].item() == f"invalid UTF-8 at byte {first_cyrillic}; decoded as cp1251, as the file declares"


def test_a_utf16_file_with_its_byte_order_mark_is_text_not_binary(tmp_path):
    (tmp_path / "a.txt").write_text("The minister resigned on Monday after the vote.", encoding="utf-16")
    raw, log = ingest_sources([tmp_path], run_id="r1")
    assert raw["raw_text"].item() == "The minister resigned on Monday after the vote."
    assert log.select("status", "reason").row(0) == ("ok", "decoded as UTF-16 (it starts with its byte-order mark)")


def test_the_same_content_at_another_path_is_read_not_skipped(tmp_path):
    (tmp_path / "a.txt").write_text("Story a says the minister resigned on Monday after the vote.")
    (tmp_path / "b.txt").write_text("Story b says the minister stayed on Tuesday after the vote.")
    _, first = ingest_sources([tmp_path], run_id="r1")
    (tmp_path / "a.txt").write_text((tmp_path / "b.txt").read_text())  # a's content changed to b's
    (tmp_path / "c.txt").write_text((tmp_path / "b.txt").read_text())  # a new copy of b
    raw, log = ingest_sources([tmp_path], run_id="r2", manifest=manifest(None, first))
    assert sorted(raw["source_id"]) == ["a.txt", "c.txt"]
    assert log.filter(pl.col("source_file").str.ends_with("b.txt"))["reason"].item().startswith("unchanged")


def test_files_are_removed_only_from_a_source_folder_that_is_there(tmp_path, monkeypatch):
    share, work = tmp_path / "share", tmp_path / "work"
    share.mkdir()
    work.mkdir()
    (share / "a.txt").write_text("Story a says the minister resigned on Monday after the vote.")
    (work / "b.txt").write_text("Story b says the minister stayed on Tuesday after the vote.")
    (work / "c.txt").write_text("Story c says the minister left on Wednesday after the vote.")
    (tmp_path / "mounted").symlink_to(share, target_is_directory=True)
    monkeypatch.chdir(work)
    _, first = ingest_sources([tmp_path / "mounted", "."], run_id="r1")
    (share / "a.txt").unlink()
    share.rmdir()  # the share is gone: its link is broken, which says nothing about its files
    (work / "c.txt").unlink()
    _, second = ingest_sources([tmp_path / "mounted", "."], run_id="r2", manifest=manifest(None, first))
    rows = {Path(f).name: (s, r) for f, s, r in second.select("source_file", "status", "reason").iter_rows()}
    assert rows["c.txt"][0] == "removed" and "a.txt" not in rows
    assert rows["mounted"] == ("error", f"broken symbolic link (to {share})")


def test_a_whole_html_page_after_a_long_comment_keeps_its_metadata(tmp_path):
    story = "Leaders met in Rome on Monday to agree on aid for the flooded villages in the north. " * 3
    page = ("<!-- saved from a browser, with a comment longer than fifty characters -->\n<html><head>"
            '<meta property="og:site_name" content="Rome Daily"><title>Aid agreed</title></head>'
            f"<body><article><p>{story}</p></article></body></html>")
    (tmp_path / "a.html").write_text(page)
    raw, _ = ingest_sources([tmp_path], run_id="r1")
    assert raw.select("meta_outlet", "meta_title").row(0) == ("Rome Daily", "Aid agreed")


def test_a_one_article_file_repeating_another_is_quarantined_with_the_file_of_its_first_copy(tmp_path):
    for folder in ("x", "y"):  # same name and text: the same article id
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "story.txt").write_text("Poland proposed a peacekeeping mission on Friday.")
    raw, log = ingest_sources([tmp_path], run_id="r1")
    assert raw["source_file"].to_list() == [str(tmp_path / "x" / "story.txt")]
    second = log.filter(pl.col("source_file") == str(tmp_path / "y" / "story.txt")).row(0, named=True)
    assert (second["status"], second["repeat_of"]) == ("quarantined", str(tmp_path / "x" / "story.txt"))
    assert second["reason"].startswith("exact repeat of ")


def test_a_manifest_from_before_sizes_times_and_repeats_were_kept_still_skips_unchanged_files(tmp_path):
    write_stories(tmp_path / "a.jsonl", "a1")
    write_stories(tmp_path / "b.jsonl", "a1", "b1")  # repeats a's a1
    _, first = ingest_sources([tmp_path], run_id="r1")
    old = manifest(None, first).select("source_file", "file_hash", "run_id")
    raw, second = ingest_sources([tmp_path], run_id="r2", manifest=old)
    assert raw.is_empty()
    assert set(file_reasons(second).values()) == {"unchanged since an earlier run; not re-read"}  # by hash
    upgraded = manifest(old, second)
    assert upgraded.columns == list(MANIFEST_SCHEMA) and upgraded["file_mtime_ns"].null_count() == 0
    assert upgraded["repeat_of"].to_list() == [None, None]  # learnt when b is next read


def test_a_first_copies_file_changed_while_the_run_reads_is_left_for_the_next_run(tmp_path, monkeypatch):
    import tasks.ingest as ingest

    write_stories(tmp_path / "a.jsonl", "a1")
    write_stories(tmp_path / "b.jsonl", "a1", "b1")  # repeats a's a1
    _, first = ingest_sources([tmp_path], run_id="r1")
    after_first = manifest(None, first)
    judge = ingest.replaced_first_files

    def then_changed(*args):  # a changes after the run judged b by it: b is not read again this run
        judged = judge(*args)
        write_stories(tmp_path / "a.jsonl", "a2")
        return judged

    monkeypatch.setattr(ingest, "replaced_first_files", then_changed)
    raw, second = ingest_sources([tmp_path], run_id="r2", manifest=after_first)
    assert raw.is_empty()  # a's new content is not taken, so its a1 is not withdrawn while b keeps only a repeat
    row = second.filter(pl.col("source_file").str.ends_with("a.jsonl")).row(0, named=True)
    assert (row["status"], row["reason"]) == ("error", ingest.CHANGED_WHILE_READ)
    after_second = manifest(after_first, second)
    assert after_second.equals(after_first)  # a's loaded content and b's repeats still hold
    monkeypatch.setattr(ingest, "replaced_first_files", judge)
    raw, third = ingest_sources([tmp_path], run_id="r3", manifest=after_second)
    assert raw.select("source_id", pl.col("source_file").str.split("/").list.last()).rows() == [
        ("a2", "a.jsonl"), ("a1", "b.jsonl"), ("b1", "b.jsonl")]  # (b1 is dropped later: loaded from b, which stays)
    assert file_reasons(third)["b.jsonl"] == REREAD
