"""Score boilerplate removal on the boilerplate dev corpus, and time cleaning on Reuters-21578.

Metric: each document becomes a bag (multiset) of word 4-gram shingles. Tokenisation: lowercase the text and
split on runs of non-word characters (regex `\\W+`, so punctuation and whitespace are ignored). Per document,
precision = |pred ∩ gold| / |pred| and recall = |pred ∩ gold| / |gold| (multiset intersection; an empty side
scores 1 if both are empty, else 0); P and R are averaged over documents and F1 is the harmonic mean of the
two averages. Compared: no cleaning, the C4 line filter (keep lines of 5+ words ending in terminal
punctuation), `clean_articles` run on the whole corpus as one batch, and `clean_articles` run on each
document alone.

Usage: python bench/eval_boilerplate.py [--corpus PATH] [--reuters [PATH]]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from newsetl.settings import SHARED_CORPORA

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.clean import clean_articles  # noqa: E402

DEV_CORPUS = SHARED_CORPORA / "boilerplate_dev.jsonl"
REUTERS_CORPUS = SHARED_CORPORA / "reuters21578.jsonl"
SHINGLE = 4
C4_MIN_WORDS = 5
C4_END_RE = re.compile(r"[.!?\"'”’]$")


def shingles(text: str) -> Counter:
    """Bag of word 4-grams over lowercase tokens split on non-word characters."""
    words = [w for w in re.split(r"\W+", text.lower()) if w]
    return Counter(tuple(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1))


def precision_recall(pred: str, gold: str) -> tuple[float, float]:
    """Shingle precision and recall of one predicted body against its gold body."""
    p, g = shingles(pred), shingles(gold)
    overlap = sum((p & g).values())
    precision = overlap / sum(p.values()) if p else float(not g)
    recall = overlap / sum(g.values()) if g else float(not p)
    return precision, recall


def c4_filter(text: str) -> str:
    """C4-style line filter: keep lines with 5+ words that end in terminal punctuation."""
    lines = (line.strip() for line in text.splitlines())
    return "\n".join(line for line in lines if len(line.split()) >= C4_MIN_WORDS and C4_END_RE.search(line))


def raw_frame(texts: list[str], urls: list[str | None], ids: list[str]) -> pl.DataFrame:
    """A raw_articles-shaped frame of plain-text documents, as ingest would build it."""
    n = len(texts)
    return pl.DataFrame(
        {
            "article_id": ids,
            "source_file": ["bench"] * n,
            "source_id": ids,
            "source_line": list(range(1, n + 1)),
            "format": ["txt"] * n,
            "raw_text": texts,
            "meta_title": [None] * n,
            "meta_url": urls,
            "meta_outlet": [None] * n,
            "meta_published": [None] * n,
            "ingested_at": [datetime.now(UTC)] * n,
        },
        schema_overrides={
            "source_line": pl.Int64,
            "meta_title": pl.String,
            "meta_url": pl.String,
            "meta_outlet": pl.String,
            "meta_published": pl.String,
        },
    )


def newsetl_bodies(records: list[dict]) -> list[str]:
    """Bodies from one `clean_articles` batch over all records, in record order."""
    ids = [f"{i:06d}" for i in range(len(records))]
    articles, _ = clean_articles(raw_frame([r["text"] for r in records], [r.get("url") for r in records], ids))
    return articles.sort("article_id")["body"].to_list()


def newsetl_bodies_one_by_one(records: list[dict]) -> list[str]:
    """Bodies from one `clean_articles` call per record (no cross-document repetition signal)."""
    return [newsetl_bodies([record])[0] for record in records]


def score(name: str, records: list[dict], clean: Callable[[list[dict]], list[str]]) -> None:
    """Print averaged P, R, their F1 and throughput for one cleaning method."""
    start = time.perf_counter()
    bodies = clean(records)
    elapsed = time.perf_counter() - start
    pairs = [precision_recall(body, r["gold_body"]) for body, r in zip(bodies, records, strict=True)]
    p = sum(x for x, _ in pairs) / len(pairs)
    r = sum(y for _, y in pairs) / len(pairs)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    print(f"{name:<12} P={p:.3f} R={r:.3f} F1={f1:.3f} docs/s={len(records) / max(elapsed, 1e-9):,.0f}")


def bench_reuters(path: Path) -> None:
    """Print cleaning throughput (articles/s, wall clock; CPU time and load shown as the machine may be shared)
    on the Reuters-21578 bodies as one batch."""
    records = [json.loads(line) for line in path.open(encoding="utf-8")]
    texts = [r.get("body") or "" for r in records]
    raw = raw_frame(texts, [None] * len(texts), [f"{i:06d}" for i in range(len(texts))])
    start, cpu_start = time.perf_counter(), time.process_time()
    articles, boilerplate = clean_articles(raw)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(
        f"reuters      {len(records):,} articles in {elapsed:.2f}s = {len(records) / elapsed:,.0f} articles/s "
        f"({cpu:.2f} CPU-s over all threads, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}); "
        f"{boilerplate.height:,} boilerplate spans; {articles['clean_chars'].sum():,} of "
        f"{articles['raw_chars'].sum():,} chars kept"
    )


def main() -> None:
    """Run the dev-set comparison and, on request, the Reuters throughput check."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEV_CORPUS)
    parser.add_argument("--reuters", nargs="?", type=Path, const=REUTERS_CORPUS, default=None)
    args = parser.parse_args()
    records = [json.loads(line) for line in args.corpus.open(encoding="utf-8")]
    print(f"{len(records)} documents from {args.corpus}")
    score("baseline", records, lambda rs: [r["text"] for r in rs])
    score("c4", records, lambda rs: [c4_filter(r["text"]) for r in rs])
    score("newsetl", records, newsetl_bodies)
    score("newsetl/1doc", records, newsetl_bodies_one_by_one)
    if args.reuters:
        bench_reuters(args.reuters)


if __name__ == "__main__":
    main()
