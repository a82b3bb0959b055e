"""Combine one run's new rows with the warehouse's prior tables into the tables to validate and load."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import closing
from itertools import pairwise
from typing import TypeVar

import numpy as np
import polars as pl

from tasks.dedup import DedupIndex, refresh_stories, without_articles
from tasks.extract import aggregate_events
from tasks.ingest import MANIFEST_SCHEMA, READ_STATUSES, REREAD, full_manifest, is_unchanged

PER_ARTICLE_TABLES = ("articles", "boilerplate", "event_mentions", "quotes")
# The dedup index: pipeline state kept in the snapshot beside the tables, without a view and not validated.
INDEX_KEYS, INDEX_DF = "_dedup_keys", "_dedup_df"
HISTORY_TABLES = ("ingest_log", "dq_results", "quarantine")


def stack(prior: pl.DataFrame | None, new: pl.DataFrame) -> pl.DataFrame:
    """Prior rows then new rows, tolerating columns added since the prior run."""
    if prior is None or prior.is_empty():
        return new
    return pl.concat([prior, new], how="diagonal_relaxed")


def batches(frame: pl.DataFrame, max_rows: int, max_bytes: int | None = None,
            text_column: str | None = None) -> list[pl.DataFrame]:
    """`frame` cut into consecutive zero-copy slices of at most `max_rows` rows and at most `max_bytes` of text in
    `text_column` (a longer row gets a slice of its own), so a batch's memory does not depend on article length;
    one empty slice if `frame` is empty."""
    if max_bytes is None or text_column is None:
        bounds = [*range(0, frame.height, max_rows), frame.height]
    else:
        ends = frame[text_column].str.len_bytes().fill_null(0).cast(pl.Int64).cum_sum().to_numpy()
        bounds = [0]
        while bounds[-1] < frame.height:
            start = bounds[-1]
            fits = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + max_bytes, side="right"))
            bounds.append(min(max(fits, start + 1), start + max_rows))
    return [frame.slice(start, end - start) for start, end in pairwise(bounds)] or [frame]


R = TypeVar("R")  # what a stream returns when it ends


def rebatched(frames: Generator[pl.DataFrame, None, R], max_rows: int, max_bytes: int, text_column: str
              ) -> Generator[pl.DataFrame, None, R]:
    """The frames of a stream cut into the batches `batches` would cut from all of them at once, each yielded as
    soon as it is complete; returns what the stream returns."""
    pending: list[pl.DataFrame] = []
    rows = text_bytes = 0
    with closing(frames):  # closing this stream closes the one it reads
        while True:
            try:
                frame = next(frames)
            except StopIteration as end:
                if pending:
                    yield concat(pending)
                return end.value
            pending.append(frame)
            rows += frame.height
            text_bytes += frame[text_column].str.len_bytes().sum() or 0
            if rows <= max_rows and text_bytes <= max_bytes:  # no batch can be complete yet: cut nothing (many
                continue  # small frames would otherwise be cut again and again)
            *complete, last = batches(pl.concat(pending, rechunk=False), max_rows, max_bytes, text_column)
            yield from complete
            pending, rows, text_bytes = [last], last.height, last[text_column].str.len_bytes().sum() or 0


def concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Batch results back into one frame, in batch order."""
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")


def replaced_files(ingest_log: pl.DataFrame) -> pl.Series:
    """Files whose earlier content, if any, no longer holds: read again this run (changed; whether or not it still
    yields articles) or removed from its source folder. Not a file skipped as unchanged, nor one that failed to be
    read (an error may pass)."""
    files = ingest_log.filter(pl.col("source_line").is_null())
    return files.filter((pl.col("status") == "removed")
                        | pl.col("status").is_in(READ_STATUSES) & ~is_unchanged())["source_file"]


def superseded_articles(prior_articles: pl.DataFrame | None, ingest_log: pl.DataFrame) -> pl.Series:
    """Ids of prior articles whose source file was replaced (see `replaced_files`)."""
    if prior_articles is None:
        return pl.Series("article_id", [], dtype=pl.String)
    return prior_articles.filter(pl.col("source_file").is_in(replaced_files(ingest_log).implode()))["article_id"]


def prune_superseded(prior: dict[str, pl.DataFrame | None], ingest_log: pl.DataFrame
                     ) -> tuple[dict[str, pl.DataFrame | None], pl.DataFrame | None]:
    """Prior tables without the articles (and their rows) of replaced files (see `replaced_files`), and the prior
    copies of those articles, taken out of the prior articles to be deduplicated again with the new ones: their
    original is gone. (A copy has no mentions or quotes; its boilerplate spans stay.)"""
    gone = superseded_articles(prior.get("articles"), ingest_log)
    if gone.is_empty():
        return prior, None
    pruned = {name: frame.filter(~pl.col("article_id").is_in(gone.implode()))
              if frame is not None and name in PER_ARTICLE_TABLES else frame
              for name, frame in prior.items()}
    orphaned = pl.col("duplicate_of").is_in(gone.implode()).fill_null(False)
    return pruned | {"articles": pruned["articles"].filter(~orphaned)}, pruned["articles"].filter(orphaned)


def loaded_rows(prior: dict[str, pl.DataFrame | None]) -> dict[str, int]:
    """Per per-article table and the ingest log, how many rows earlier runs loaded (and so validated): they lead
    the stacked tables of this run."""
    return {name: prior[name].height for name in (*PER_ARTICLE_TABLES, "ingest_log") if prior.get(name) is not None}


def prior_index(prior: dict[str, pl.DataFrame | None]) -> DedupIndex | None:
    """The dedup index the warehouse keeps, if it has one."""
    keys, df = prior.get(INDEX_KEYS), prior.get(INDEX_DF)
    return DedupIndex(keys, df) if keys is not None and df is not None else None


def index_tables(index: DedupIndex, rebuilt: DedupIndex | None, kept_articles: pl.DataFrame, appending: bool
                 ) -> tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame]]:
    """(tables to rewrite, rows to append) for the dedup index after a run: the new articles' keys (those not
    quarantined) are appended to the stored ones (`appending`: they describe the prior articles), else written
    alone (a full refresh) or with the prior articles' keys when those had to be rebuilt."""
    def kept(keys: pl.DataFrame) -> pl.DataFrame:  # not copied when all are kept: at 1M articles 370 MB of lists
        is_kept = keys["article_id"].is_in(kept_articles["article_id"].implode())
        return keys if is_kept.all() else keys.filter(is_kept)

    if rebuilt is not None:
        return {INDEX_KEYS: kept(stack(rebuilt.keys, index.keys)), INDEX_DF: index.df}, {}
    if not appending:
        return {INDEX_KEYS: kept(index.keys), INDEX_DF: index.df}, {}
    return {INDEX_DF: index.df}, {INDEX_KEYS: kept(index.keys)}


def manifest(prior: pl.DataFrame | None, ingest_log: pl.DataFrame) -> pl.DataFrame:
    """Per path, the content hash (with size and modification time) of every file read so far and still in place:
    the incremental run's skip list, with the files each one holds exact repeats from (`repeat_of`: it is read
    again when one of those is replaced). A file skipped for its known content hash keeps its new size and time (so
    the next run need not hash it), the run that read it and its repeats; a replaced file leaves it unless read
    anew."""
    prior = full_manifest(prior)
    files = ingest_log.filter(pl.col("source_line").is_null())
    unread = files.filter((pl.col("status") == "error") & pl.col("reason").str.starts_with(REREAD))["source_file"]
    prior = prior.with_columns(  # a file that had to be read again but could not be: read it whole next run
        pl.when(pl.col("source_file").is_in(unread.implode())).then(None).otherwise(pl.col(c)).alias(c)
        for c in ("file_hash", "file_bytes", "file_mtime_ns"))
    repeats = ingest_log.filter(pl.col("source_line").is_not_null() & (pl.col("repeat_of") != pl.col("source_file"))
                                ).group_by("source_file").agg(pl.col("repeat_of").unique().sort().alias("repeats"))
    read = files.filter(pl.col("status") == "ok").drop("repeat_of")
    read = read.join(prior.select("source_file", read_by="run_id", repeated="repeat_of"), on="source_file",
                     how="left", maintain_order="left").join(repeats, on="source_file", how="left",
                                                             maintain_order="left").with_columns(
        run_id=pl.when(is_unchanged()).then("read_by").otherwise("run_id"),
        repeat_of=pl.when(is_unchanged()).then("repeated").otherwise("repeats"),
    ).select(list(MANIFEST_SCHEMA))
    gone = pl.concat([read["source_file"], replaced_files(ingest_log)])
    return stack(prior.filter(~pl.col("source_file").is_in(gone.implode())), read).sort("source_file")


def assemble_tables(prior: dict[str, pl.DataFrame | None], new: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """All tables after this run (prior already pruned): per-article tables gain the new rows, events are
    re-aggregated over all mentions, histories grow, the manifest is updated."""
    tables = {name: stack(prior.get(name), new[name]) for name in PER_ARTICLE_TABLES}
    tables["stories"] = new["stories"]
    tables["events"] = aggregate_events(tables["event_mentions"])
    for name in HISTORY_TABLES:
        tables[name] = stack(prior.get(name), new[name])
    tables["manifest"] = manifest(prior.get("manifest"), new["ingest_log"])
    return tables


def without_quarantined(before: dict[str, pl.DataFrame], kept: dict[str, pl.DataFrame], index: DedupIndex
                        ) -> tuple[dict[str, pl.DataFrame], DedupIndex]:
    """The tables validation kept (`kept`, from `before`) with what their quarantined rows counted taken out:
    stories and the events that lost mentions aggregated again from the articles and mentions left, and the dedup
    index without the quarantined articles."""
    tables = dict(kept)
    if kept["articles"].height < before["articles"].height:
        tables["stories"] = refresh_stories(kept["articles"], kept["stories"])
        index = without_articles(index, before["articles"].join(kept["articles"], on="article_id", how="anti"))
    if kept["event_mentions"].height < before["event_mentions"].height:
        mention = ["event_id", "article_id", "sentence_index"]
        touched = before["event_mentions"].join(kept["event_mentions"], on=mention, how="anti")["event_id"].unique()
        is_touched = pl.col("event_id").is_in(touched.implode())
        again = aggregate_events(kept["event_mentions"].filter(is_touched))
        tables["events"] = pl.concat([kept["events"].filter(~is_touched), again], how="diagonal_relaxed")
    return tables, index


def split_appends(prior: dict[str, pl.DataFrame | None], tables: dict[str, pl.DataFrame]
                  ) -> tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame]]:
    """(tables to rewrite, new rows to append): a per-article or history table whose prior rows come through
    unchanged, in order and with the same schema, only needs its new rows written."""
    replace, append = dict(tables), {}
    for name in (*PER_ARTICLE_TABLES, *HISTORY_TABLES):
        before, after = prior.get(name), tables.get(name)
        if before is None or after is None or after.height < before.height or after.schema != before.schema:
            continue
        if after.slice(0, before.height).equals(before):
            append[name] = after.slice(before.height)
            del replace[name]
    return replace, append
