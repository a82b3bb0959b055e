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

from newsetl.settings import SHARED_CORPORA

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tasks.dedup import NEAR_JACCARD, assign_stories  # noqa: E402
from tasks.dedup_features import HASH_SEED, SHINGLE_WORDS  # noqa: E402
from tasks.ids import stable_id_expr  # noqa: E402

CORPUS = SHARED_CORPORA / "reuters21578.jsonl"
SAMPLE = 3000
SEED = 7


def word_shingles(bodies: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The brute-force reference's hashed word 3-shingles as (doc index, shingle hash) arrays in document order
    (repeats kept)."""
    tokens = bodies.str.to_lowercase().str.extract_all(r"\w+")
    doc = np.repeat(np.arange(len(bodies), dtype=np.int64), tokens.list.len().fill_null(0).to_numpy())
    h = tokens.explode().drop_nulls().hash(seed=HASH_SEED).to_numpy()
    if len(h) < SHINGLE_WORDS:
        return np.empty(0, np.int64), np.empty(0, np.uint64)
    end = len(h) - SHINGLE_WORDS + 1
    mult = np.uint64(0x9E3779B97F4A7C15)
    sh = h[:end].copy()
    for k in range(1, SHINGLE_WORDS):
        sh = sh * mult + h[k : end + k]
    same_doc = doc[:end] == doc[SHINGLE_WORDS - 1 :]
    return doc[:end][same_doc], sh[same_doc]


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
            published_date=pl.col("date")
            .str.extract(r"(\d{1,2}-[A-Z]{3}-\d{4})")
            .str.strptime(pl.Date, "%d-%b-%Y", strict=False),
            body="body",
            content_hash=stable_id_expr("body"),
            ingested_at=pl.lit(datetime(2026, 1, 1)),
        )
    )


def perturbed_copies(articles: pl.DataFrame, n_copies: int) -> pl.DataFrame:
    """Synthetic growth: copy k drops every (k+3)-th word and moves k years later, so it is neither a near
    copy nor in the date window of its original or other copies: ~10x distinct articles to dedup and cluster."""
    frames = [articles]
    for k in range(1, n_copies + 1):
        words = pl.col("body").str.split(" ")
        body = words.list.eval(pl.element().filter(pl.int_range(pl.len()) % (k + 3) != 1)).list.join(" ")
        frames.append(
            articles.with_columns(
                body=body,
                article_id=stable_id_expr(pl.lit(k), "article_id"),
                published_date=pl.col("published_date") + pl.duration(days=366 * k),
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


def timed(articles: pl.DataFrame, repeats: int = 1) -> tuple[pl.DataFrame, float, float]:
    """assign_stories output, best wall seconds and best CPU seconds (all threads) over `repeats` runs."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out, _, _ = assign_stories(articles)
        wall, cpu = min(wall, time.perf_counter() - start), min(cpu, time.process_time() - start_cpu)
    return out, wall, cpu


def rate(n: int, wall: float, cpu: float) -> str:
    """Throughput line: wall and CPU based (the CPU figure is robust to other jobs on a shared machine)."""
    return f"{n} articles {wall:.2f}s wall ({n / wall:,.0f}/s), {cpu:.2f}s CPU ({n / cpu:,.0f}/s)"


def main() -> None:
    articles = load_articles()
    plain = articles.filter(pl.col("body").str.count_matches(r"\w+") >= 20).group_by("content_hash").len()
    print(
        f"Reuters: {articles.height} non-empty articles; plain group-by: {plain.filter(pl.col('len') > 1).height} "
        "groups of identical 20+-word bodies"
    )
    timed(articles.head(500))  # warm-up: thread pools, first allocations
    out, wall, cpu = timed(articles, repeats=2)
    n_groups, n_ok = exact_groups(articles, out)
    print(f"exact groups: {n_groups} found, {n_ok} with every copy -> first copy ('exact')")
    kinds = out.group_by("duplicate_kind").len().sort("duplicate_kind", nulls_last=True)
    print("duplicate_kind counts:", dict(zip(kinds["duplicate_kind"].to_list(), kinds["len"].to_list(), strict=True)))
    n_true, n_found = near_recall(out)
    print(
        f"near copies (J>={NEAR_JACCARD}, brute force {SAMPLE} sampled x all): {n_found}/{n_true} pairs "
        f"share a first copy, recall {n_found / max(n_true, 1):.3f}"
    )
    small = articles.head(articles.height // 10)
    _, small_wall, small_cpu = timed(small, repeats=3)
    print(f"throughput (best of 3 / 2 runs): {rate(small.height, small_wall, small_cpu)}")
    print(f"                                 {rate(articles.height, wall, cpu)}; {out['story_id'].n_unique()} stories")
    print(
        f"growth x{articles.height / small.height:.0f} articles: time x{wall / small_wall:.1f} wall, "
        f"x{cpu / small_cpu:.1f} CPU"
    )
    if "--big" in sys.argv:
        big = perturbed_copies(articles, 9)
        big_out, big_wall, big_cpu = timed(big)
        print(
            f"synthetic: {rate(big.height, big_wall, big_cpu)}; time vs 19k x{big_wall / wall:.1f} wall, "
            f"x{big_cpu / cpu:.1f} CPU; {big_out['story_id'].n_unique()} stories"
        )


if __name__ == "__main__":
    main()
