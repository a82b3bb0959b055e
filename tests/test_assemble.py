"""Batching and the append-or-rewrite decision for load."""

import datetime as dt

import polars as pl

from tasks.assemble import batches, concat, rebatched, split_appends, without_quarantined
from tasks.dedup import DedupIndex
from tasks.extract import aggregate_events
from tasks.ingest import drain


def test_batches_cover_every_row_once_in_order():
    frame = pl.DataFrame({"article_id": [str(i) for i in range(7)]})
    parts = batches(frame, 3)
    assert [p.height for p in parts] == [3, 3, 1]
    assert concat(parts).equals(frame)
    assert [p.height for p in batches(frame.clear(), 3)] == [0]


def test_batches_hold_at_most_max_bytes_of_text_and_a_longer_article_alone():
    texts = ["a" * 5, "b" * 3, "c" * 20, "d", None, "e" * 4, "f" * 8]
    frame = pl.DataFrame({"article_id": [str(i) for i in range(len(texts))], "body": texts})
    parts = batches(frame, 3, max_bytes=8, text_column="body")
    assert [p["article_id"].to_list() for p in parts] == [["0", "1"], ["2"], ["3", "4", "5"], ["6"]]
    assert concat(parts).equals(frame)
    assert [p.height for p in batches(frame, 2, max_bytes=1000, text_column="body")] == [2, 2, 2, 1]
    assert [p.height for p in batches(frame.clear(), 3, max_bytes=8, text_column="body")] == [0]


def test_a_stream_is_rebatched_as_the_whole_frame_would_be_and_keeps_its_return_value():
    texts = ["a" * 5, "b" * 3, "c" * 20, "d", None, "e" * 4, "f" * 8, "g", "h" * 7, "i" * 2]
    frame = pl.DataFrame({"article_id": [str(i) for i in range(len(texts))], "body": texts})

    def stream(cuts):
        for start, end in zip([0, *cuts], [*cuts, frame.height], strict=True):
            yield frame.slice(start, end - start)
        return "log"

    whole = [p["article_id"].to_list() for p in batches(frame, 3, max_bytes=8, text_column="body")]
    for cuts in ([], [1], [2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9], [4, 9]):
        parts = []
        assert drain(rebatched(stream(cuts), 3, 8, "body"), parts.append) == "log"
        assert [p["article_id"].to_list() for p in parts] == whole, cuts


def test_a_stream_of_many_small_frames_is_cut_only_when_a_batch_can_be_complete(monkeypatch):
    import tasks.assemble as assemble

    frames = [pl.DataFrame({"article_id": [str(i)], "body": ["word " * 3]}) for i in range(30)]
    cuts = []
    real = assemble.batches
    monkeypatch.setattr(assemble, "batches", lambda frame, *args: cuts.append(frame.height) or real(frame, *args))

    def stream():
        yield from frames
        return None

    parts = []
    drain(assemble.rebatched(stream(), 10, 10_000, "body"), parts.append)
    assert [p.height for p in parts] == [10, 10, 10]
    assert len(cuts) <= 3  # not once per frame: each cut scans every pending row


def test_tables_that_only_gained_rows_are_appended_the_rest_rewritten():
    prior = {"articles": pl.DataFrame({"article_id": ["a", "b"]}),
             "quotes": pl.DataFrame({"article_id": ["a"], "quote_id": ["q1"]})}
    tables = {"articles": pl.DataFrame({"article_id": ["a", "b", "c"]}),
              "quotes": pl.DataFrame({"article_id": ["c"], "quote_id": ["q2"]}),  # prior row quarantined
              "stories": pl.DataFrame({"story_id": ["s1"]})}
    replace, append = split_appends(prior, tables)
    assert append["articles"]["article_id"].to_list() == ["c"]
    assert set(replace) == {"quotes", "stories"}


def test_full_refresh_rewrites_everything():
    tables = {"articles": pl.DataFrame({"article_id": ["a"]})}
    assert split_appends({}, tables) == (tables, {})


def test_events_and_the_index_lose_what_quarantined_rows_counted():
    mention = {"event_id": "e1", "story_id": "s1", "event_date": dt.date(2024, 4, 4), "source_actor": "Russia",
               "source_code": "RUS", "event_type": "THREATEN", "event_mode": None, "target_actor": "Poland",
               "target_code": "POL", "location": None, "negated": False, "sentence": "Russia threatened Poland.",
               "confidence": 0.9, "sentence_index": 0, "char_start": 0, "char_end": 25}
    mentions = pl.DataFrame([mention | {"article_id": a, "outlet": outlet} for a, outlet in (("a1", "A"), ("a2", "B"))])
    articles = pl.DataFrame({"article_id": ["a1", "a2"], "story_id": ["s1", "s1"]})
    before = {"articles": articles, "event_mentions": mentions, "events": aggregate_events(mentions)}
    index = DedupIndex.empty()
    kept, kept_index = without_quarantined(before, before | {"event_mentions": mentions.head(1)}, index)
    assert before["events"].select("n_articles", "n_outlets").row(0) == (2, 2)
    assert kept["events"].select("event_id", "n_articles", "n_outlets").rows() == [("e1", 1, 1)]
    assert kept["articles"] is articles and kept_index is index  # no article left: stories and index unchanged
