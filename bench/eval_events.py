"""Evaluate event extraction on the PLOVER gold sentences, and measure throughput on Reuters-21578.

Usage: python bench/eval_events.py [--gold PATH] [--reuters [PATH]] [--repeat N] [--errors]

Each gold record (one sentence) is an article with published_date = record date; the prediction for a record
is its highest-confidence event mention. Gold types use older names, mapped DEMAND->REQUEST,
DISAPPROVE->ACCUSE, FIGHT->ASSAULT, INVESTIGATE->ACCUSE. Codes compare on their first three letters;
predicted organisation codes of kind igo/ngo compare as "IGO"/"NGO" (the gold's convention).

Metrics (N = all records, P = records with a predicted event):
  event recall        = P / N
  type accuracy       = predicted type == gold type, over P
  source accuracy     = predicted source code equals any gold source code, over P records with a gold source
  target accuracy     = predicted target code equals any gold target code, over P records with a gold target
  triple F1           = a record is a hit when its predicted (source, type, target) equals some gold triple
                        (gold sources x gold type x gold targets; a missing gold target or source is None
                        and matches only a predicted None); precision = hits / P, recall = hits / N.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import polars as pl

from newsetl.settings import SHARED_CORPORA

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.actors import actor_gazetteer  # noqa: E402
from tasks.extract import extract_events  # noqa: E402

GOLD = SHARED_CORPORA / "plover_gsr_dev.jsonl"
REUTERS = SHARED_CORPORA / "reuters21578.jsonl"
OLD_TYPES = {"DEMAND": "REQUEST", "DISAPPROVE": "ACCUSE", "FIGHT": "ASSAULT", "INVESTIGATE": "ACCUSE"}


def gold_codes(actors: object) -> list[str]:
    """First three letters of the gold actor codes (empty for a missing or free-text actor)."""
    if not isinstance(actors, list):
        return []
    return sorted({a["code"][:3] for a in actors if isinstance(a, dict) and a.get("code")})


def comparable_code(code: str | None, kinds: dict[str, str]) -> str | None:
    """A predicted code in the gold's convention: organisations as IGO/NGO, else the first three letters."""
    if code is None:
        return None
    return {"igo": "IGO", "ngo": "NGO"}.get(kinds.get(code, ""), code[:3])


def load_gold(path: Path) -> list[dict]:
    """Gold records with mapped type and source/target code lists."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for r in records:
        r["type"] = OLD_TYPES.get(r["event"], r["event"])
        r["sources"] = gold_codes(r.get("source"))
        r["targets"] = gold_codes(r.get("target"))
    return records


def evaluate(records: list[dict], show_errors: bool = False) -> dict[str, float]:
    """Run the extractor on the gold sentences and compute the metrics of the module docstring."""
    articles = pl.DataFrame(
        {
            "article_id": [r["id"] for r in records],
            "story_id": [r["id"] for r in records],
            "outlet": [None] * len(records),
            "published_date": [r["date"] for r in records],
            "title": [""] * len(records),
            "body": [r["text"] for r in records],
            "duplicate_of": [None] * len(records),
        },
        schema_overrides={"outlet": pl.String, "duplicate_of": pl.String},
    ).with_columns(pl.col("published_date").str.to_date())
    mentions, _ = extract_events(articles)
    top = {
        row["article_id"]: row
        for row in mentions.sort("confidence", "sentence_index", descending=[True, False])
        .unique("article_id", keep="first")
        .iter_rows(named=True)
    }
    kinds = dict(actor_gazetteer().select("code", "kind").drop_nulls().unique("code").iter_rows())
    n, found, type_ok, src_n, src_ok, tgt_n, tgt_ok, hits = len(records), 0, 0, 0, 0, 0, 0, 0
    for r in records:
        pred = top.get(r["id"])
        if pred is None:
            if show_errors:
                print(f"MISS {r['type']:9} {r['text'][:110]}")
            continue
        found += 1
        src, tgt = comparable_code(pred["source_code"], kinds), comparable_code(pred["target_code"], kinds)
        type_ok += pred["event_type"] == r["type"]
        if r["sources"]:
            src_n += 1
            src_ok += src in r["sources"]
        if r["targets"]:
            tgt_n += 1
            tgt_ok += tgt in r["targets"]
        gold_triples = {(s, r["type"], t) for s in (r["sources"] or [None]) for t in (r["targets"] or [None])}
        hit = (src, pred["event_type"], tgt) in gold_triples
        hits += hit
        if show_errors and not hit:
            kind = "TYPE" if pred["event_type"] != r["type"] else "ACTR"
            print(
                f"{kind} gold={r['type']}:{r['sources']}->{r['targets']} pred={pred['event_type']}:{src}->{tgt} "
                f"cue={pred['cue']!r} {pred['modality']} | {r['text'][:100]}"
            )
    precision = hits / found if found else 0.0
    recall = hits / n if n else 0.0
    return {
        "records": n,
        "event_recall": found / n if n else 0.0,
        "type_accuracy": type_ok / found if found else 0.0,
        "source_accuracy": src_ok / src_n if src_n else 0.0,
        "target_accuracy": tgt_ok / tgt_n if tgt_n else 0.0,
        "triple_precision": precision,
        "triple_recall": recall,
        "triple_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }


def reuters_throughput(path: Path, repeat: int = 3) -> dict[str, float]:
    """Articles per second (wall clock, best of `repeat` runs) of `extract_events` on the Reuters corpus.

    Gazetteers are loaded beforehand; the best run is the least disturbed by other jobs sharing the cores.
    """
    articles = pl.read_ndjson(path).select(
        pl.col("newid").cast(pl.String).alias("article_id"),
        pl.col("newid").cast(pl.String).alias("story_id"),
        pl.lit(None, pl.String).alias("outlet"),
        pl.col("date").str.slice(0, 11).str.to_date("%d-%b-%Y", strict=False).alias("published_date"),
        pl.col("title"),
        pl.col("body").fill_null(""),
        pl.lit(None, pl.String).alias("duplicate_of"),
    )
    extract_events(articles.head(50))  # warm the cached gazetteers
    runs = []
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        mentions, quotes = extract_events(articles)
        runs.append((time.perf_counter() - start, time.process_time() - cpu_start))
    seconds, cpu_seconds = min(runs)
    return {
        "articles": len(articles),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),  # summed over polars' threads
        "articles_per_s": round(len(articles) / seconds),
        "event_mentions": len(mentions),
        "quotes": len(quotes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", type=Path, default=GOLD)
    parser.add_argument("--reuters", nargs="?", type=Path, const=REUTERS, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="Reuters runs; the best one is reported")
    parser.add_argument("--errors", action="store_true", help="print the records the extractor gets wrong")
    args = parser.parse_args()
    scores = evaluate(load_gold(args.gold), show_errors=args.errors)
    for name, value in scores.items():
        print(f"{name:18} {value:.3f}" if isinstance(value, float) else f"{name:18} {value}")
    if args.reuters:
        for name, value in reuters_throughput(args.reuters, args.repeat).items():
            print(f"reuters_{name:10} {value}")


if __name__ == "__main__":
    main()
