"""Story clustering on ECB+ dev: B-cubed P/R/F1 and ARI of `assign_stories` vs gold `cluster_id`, plus a
TF-IDF cosine average-link baseline at its best threshold. Usage: python bench/eval_stories.py"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from newsetl.settings import SHARED_CORPORA

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tasks.dedup import assign_stories  # noqa: E402
from tasks.ids import stable_id_expr  # noqa: E402

CORPUS = SHARED_CORPORA / "ecbplus_dev.jsonl"


def load_articles(path: Path = CORPUS) -> pl.DataFrame:
    """ECB+ documents as clean-stage articles (no dates, no outlets); gold `cluster_id` kept aside."""
    raw = pl.read_ndjson(path)
    return raw.select(
        article_id=pl.col("doc_id"),
        source_id=pl.col("doc_id"),
        url=pl.col("url"),
        outlet=pl.lit(None, pl.String),
        title=pl.col("title"),
        published_date=pl.lit(None, pl.Date),
        body=pl.col("text"),
        content_hash=stable_id_expr("text"),
        ingested_at=pl.lit(datetime(2026, 1, 1)),
        cluster_id=pl.col("cluster_id"),
    )


def bcubed(gold: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """B-cubed precision, recall, F1 over items."""
    frame = pl.DataFrame({"g": gold, "p": pred})
    both = frame.group_by("g", "p").agg(n=pl.len())
    g = frame.group_by("g").agg(ng=pl.len())
    p = frame.group_by("p").agg(np_=pl.len())
    cells = both.join(g, on="g").join(p, on="p")
    precision = float((cells["n"] ** 2 / cells["np_"]).sum()) / frame.height
    recall = float((cells["n"] ** 2 / cells["ng"]).sum()) / frame.height
    return precision, recall, 2 * precision * recall / (precision + recall)


def ari(gold: np.ndarray, pred: np.ndarray) -> float:
    """Adjusted Rand index."""
    frame = pl.DataFrame({"g": gold, "p": pred})
    comb = lambda s: float((s * (s - 1) / 2).sum())  # noqa: E731
    index = comb(frame.group_by("g", "p").len()["len"])
    a, b = comb(frame.group_by("g").len()["len"]), comb(frame.group_by("p").len()["len"])
    total = frame.height * (frame.height - 1) / 2
    expected = a * b / total
    return (index - expected) / ((a + b) / 2 - expected)


def tfidf_baseline(texts: list[str], gold: np.ndarray) -> tuple[float, float]:
    """Plain word TF-IDF cosine + average link; best B-cubed F1 over thresholds and that threshold."""
    words = (
        pl.DataFrame({"t": texts})
        .with_row_index("doc")
        .select("doc", w=pl.col("t").str.to_lowercase().str.extract_all(r"[a-z]+"))
        .explode("w")
        .drop_nulls()
        .group_by("doc", "w")
        .len()
    )
    vocab = words.group_by("w").agg(df=pl.len())
    n = len(texts)
    w = (
        words.join(vocab, on="w")
        .with_columns(v=(1 + pl.col("len").cast(pl.Float64).log()) * ((n + 1) / (pl.col("df") + 1)).log().add(1))
        .pivot(on="w", index="doc", values="v")
        .sort("doc")
        .fill_null(0)
        .drop("doc")
        .to_numpy()
    )
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    dist = np.clip(1 - w @ w.T, 0, None)
    np.fill_diagonal(dist, 0)
    tree = linkage(squareform(dist, checks=False), "average")
    scores = [(bcubed(gold, fcluster(tree, 1 - t, "distance"))[2], t) for t in np.arange(0.05, 0.6, 0.01)]
    return max(scores)


def main() -> None:
    articles = load_articles()
    gold = articles["cluster_id"].to_numpy()
    start = time.perf_counter()
    out, stories, _ = assign_stories(articles.drop("cluster_id"))
    elapsed = time.perf_counter() - start
    pred = articles.select("article_id").join(out, on="article_id", maintain_order="left")["story_id"].to_numpy()
    p, r, f = bcubed(gold, pred)
    print(f"ECB+ dev: {articles.height} articles, {len(set(gold))} gold clusters, {stories.height} stories")
    print(f"assign_stories took {elapsed:.2f}s")
    print(f"assign_stories   B3 P={p:.3f} R={r:.3f} F1={f:.3f}  ARI={ari(gold, pred):.3f}")
    half = articles.sort("article_id").with_columns(batch=pl.int_range(pl.len()) % 2)
    first, _, index = assign_stories(half.filter(pl.col("batch") == 0).drop("cluster_id", "batch"))
    second, _, _ = assign_stories(half.filter(pl.col("batch") == 1).drop("cluster_id", "batch"), prior=first,
                                  index=index)
    both = articles.select("article_id").join(pl.concat([first, second]), on="article_id", maintain_order="left")
    pred = both["story_id"].to_numpy()
    p, r, f = bcubed(gold, pred)
    print(f"incremental (2 batches)  B3 P={p:.3f} R={r:.3f} F1={f:.3f}  ARI={ari(gold, pred):.3f}")
    base_f, base_t = tfidf_baseline(articles["body"].to_list(), gold)
    print(f"TF-IDF avg-link  B3 F1={base_f:.3f} (best threshold {base_t:.2f}, tuned on gold)")


if __name__ == "__main__":
    main()
