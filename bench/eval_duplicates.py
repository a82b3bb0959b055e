"""Copies and throughput on Reuters-21578: exact duplicate groups, near-duplicate recall (Jaccard >= 0.8 of
word 3-shingles, brute force for a sample of articles against the whole corpus) and `assign_stories`
throughput at ~1.9k and ~19k articles (optionally ~190k: --big adds 9 perturbed, re-dated copies of each).
Usage: python bench/eval_duplicates.py [--big]"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tasks.dedup import NEAR_JACCARD, assign_stories  # noqa: E402
from tasks.dedup_features import word_shingles  # noqa: E402
from tasks.ids import stable_id_expr  # noqa: E402

CORPUS = Path("/work/shared/corpora/reuters21578.jsonl")
SAMPLE = 1000
SEED = 7


def load_articles(path: Path = CORPUS) -> pl.DataFrame:
    """Non-empty Reuters bodies as clean-stage articles (content_hash over whitespace-normalised body)."""
    raw = pl.read_ndjson(path)
    body = pl.col("body").fill_null("").str.replace_all(r"\s+", " ").str.strip_chars()
    return (
        raw.with_columns(body=body)
        .filter(pl.col("body") != "")
        .select(
            article_id=stable_id_expr(pl.lit("reuters"), "newid"),
            source_id=pl.col("newid").cast(pl.String),
            url=pl.lit(None, pl.String),
            outlet=pl.lit("Reuters"),
            title=pl.col("title"),
            published_date=pl.col("date").str.strptime(pl.Datetime, "%d-%b-%Y %H:%M:%S%.f", strict=False).dt.date(),
            body="body",
            content_hash=stable_id_expr("body"),
            ingested_at=pl.lit(datetime(2026, 1, 1)),
        )
    )


def perturbed_copies(articles: pl.DataFrame, n_copies: int) -> pl.DataFrame:
    """Synthetic growth: copy k drops every 4th word (offset k) and moves 60*k days later, so it is neither a
    near copy nor in the date window of its original: ~10x distinct articles to dedup and cluster."""
    frames = [articles]
    for k in range(1, n_copies + 1):
        words = pl.col("body").str.split(" ")
        body = words.list.eval(pl.element().filter(pl.int_range(pl.len()) % 4 != k % 4)).list.join(" ")
        frames.append(
            articles.with_columns(
                body=body,
                article_id=stable_id_expr(pl.lit(k), "article_id"),
                published_date=pl.col("published_date") + pl.duration(days=60 * k),
            ).with_columns(content_hash=stable_id_expr("body"))
        )
    return pl.concat(frames)


def exact_groups(articles: pl.DataFrame, out: pl.DataFrame) -> tuple[int, int]:
    """(groups of identical bodies with 20+ words, groups whose copies all point to the group's first copy)."""
    groups = (
        out.filter(pl.col("body").str.count_matches(r"\w+") >= 20)
        .sort("published_date", "article_id", nulls_last=True)
        .group_by("content_hash")
        .agg(ids=pl.col("article_id"), dup=pl.col("duplicate_of"), kind=pl.col("duplicate_kind"))
        .filter(pl.col("ids").list.len() > 1)
    )
    ok = groups.filter(
        (pl.col("dup").list.slice(1).list.set_difference(pl.col("ids").list.slice(0, 1)).list.len() == 0)
        & (pl.col("kind").list.slice(1).list.eval(pl.element() == "exact").list.all())
    )
    return groups.height, ok.height


def near_recall(out: pl.DataFrame) -> tuple[int, int]:
    """Brute-force pairs (sample x corpus) with Jaccard >= 0.8 and different text; how many share a first copy."""
    doc, sh = word_shingles(out["body"])
    _, col = np.unique(sh, return_inverse=True)
    m = sp.csr_matrix((np.ones(len(doc), np.float32), (doc, col)), shape=(out.height, col.max() + 1))
    m.sum_duplicates()
    m.data[:] = 1.0
    sizes = np.diff(m.indptr).astype(np.float64)
    sample = np.sort(np.random.default_rng(SEED).choice(out.height, SAMPLE, replace=False))
    inter = (m[sample] @ m.T).tocoo()
    i, j = sample[inter.row], inter.col
    jac = inter.data / (sizes[i] + sizes[j] - inter.data)
    hashes = out["content_hash"].to_numpy()
    true = (jac >= NEAR_JACCARD) & (hashes[i] != hashes[j])
    first = out.select(pl.coalesce("duplicate_of", "article_id")).to_series().to_numpy()
    return int(true.sum()), int((first[i[true]] == first[j[true]]).sum())


def timed(articles: pl.DataFrame, repeats: int = 1) -> tuple[pl.DataFrame, float]:
    """assign_stories output and best wall seconds over `repeats` runs."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out, _ = assign_stories(articles)
        best = min(best, time.perf_counter() - start)
    return out, best


def main() -> None:
    articles = load_articles()
    plain = articles.filter(pl.col("body").str.count_matches(r"\w+") >= 20).group_by("content_hash").len()
    print(f"Reuters: {articles.height} non-empty articles; plain group-by: {plain.filter(pl.col('len') > 1).height} "
          "groups of identical 20+-word bodies")
    timed(articles.head(500))  # warm-up: thread pools, first allocations
    out, secs = timed(articles, repeats=2)
    n_groups, n_ok = exact_groups(articles, out)
    print(f"exact groups: {n_groups} found, {n_ok} with every copy -> first copy ('exact')")
    kinds = out.group_by("duplicate_kind").len().sort("duplicate_kind", nulls_last=True)
    print("duplicate_kind counts:", dict(zip(kinds["duplicate_kind"].to_list(), kinds["len"].to_list())))
    n_true, n_found = near_recall(out)
    print(f"near copies (J>={NEAR_JACCARD}, brute force {SAMPLE} sampled x all): {n_found}/{n_true} pairs "
          f"share a first copy, recall {n_found / max(n_true, 1):.3f}")
    small = articles.head(articles.height // 10)
    _, small_secs = timed(small, repeats=3)
    print(f"throughput: {small.height} articles {small_secs:.2f}s ({small.height / small_secs:,.0f}/s); "
          f"{articles.height} articles {secs:.2f}s ({articles.height / secs:,.0f}/s); time ratio x{secs / small_secs:.1f} "
          f"(best of 3 / 2 runs; {out['story_id'].n_unique()} stories at 19k)")
    if "--big" in sys.argv:
        big = perturbed_copies(articles, 9)
        big_out, big_secs = timed(big)
        print(f"synthetic {big.height} articles {big_secs:.2f}s ({big.height / big_secs:,.0f}/s); "
              f"time ratio vs 19k x{big_secs / secs:.1f}; stories: {big_out['story_id'].n_unique()}")


if __name__ == "__main__":
    main()
