"""Batching and the append-or-rewrite decision for load."""

import polars as pl

from tasks.assemble import batches, concat, split_appends


def test_batches_cover_every_row_once_in_order():
    frame = pl.DataFrame({"article_id": [str(i) for i in range(7)]})
    parts = batches(frame, 3)
    assert [p.height for p in parts] == [3, 3, 1]
    assert concat(parts).equals(frame)
    assert [p.height for p in batches(frame.clear(), 3)] == [0]


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
