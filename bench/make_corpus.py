"""Benchmark corpora: the Reuters-21578 corpus in newsetl's JSONL input format, and larger ones grown from it.

    python bench/make_corpus.py --size 100k --out bench/results/corpora/100k [--seed 7]

A grown corpus is deterministic for a given seed. Each article is derived from a Reuters story: a perturbed copy
(sentences reshuffled, a few words dropped), sometimes with wire boilerplate lines added, sometimes an exact
duplicate of an earlier article under a new id; dates are spread over several years. Files hold at most
`--per-file` articles each, so an incremental run can add one file.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from datetime import date, datetime, timedelta
from pathlib import Path

from newsetl.settings import SHARED_CORPORA

REUTERS = SHARED_CORPORA / "reuters21578.jsonl"
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"])")
BOILERPLATE = (
    "Reuters", "REUTER", "Copyright 1987 Reuters Ltd. All rights reserved.", "Advertisement",
    "Click here to subscribe to our newsletter", "Read more: Markets", "Share this article", "(c) Reuters 1987",
    "Sign up for the Morning Briefing", "Related coverage", "Follow us on Twitter @Reuters",
)
PER_FILE = 50_000


def parse_size(text: str) -> int:
    """'19k' -> 19_000, '1m' -> 1_000_000, '2500' -> 2500."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def reuters_articles(path: Path = REUTERS) -> list[dict]:
    """Reuters stories with a non-empty body, as input records (id, title, published, text)."""
    articles = []
    with path.open() as handle:
        for line in handle:
            record = json.loads(line)
            body = (record.get("body") or "").strip()
            if not body:
                continue
            day = datetime.strptime(record["date"].split()[0], "%d-%b-%Y").date()  # times can be malformed
            dateline = (record.get("dateline") or "").strip()
            articles.append({"id": f"reuters-{record['newid']}", "title": (record.get("title") or "").strip(),
                             "published": day.isoformat(),
                             "text": f"{dateline} {body}" if dateline else body})
    return articles


def perturb(base: dict, n: int, rng: random.Random) -> dict:
    """A new article derived from `base`: reshuffled sentences, dropped words, maybe boilerplate and a new date."""
    sentences = SENTENCE_END.split(base["text"])
    if len(sentences) > 2 and rng.random() < 0.7:
        head, rest = sentences[0], sentences[1:]
        rng.shuffle(rest)
        sentences = [head, *rest[: max(1, int(len(rest) * rng.uniform(0.6, 1.0)))]]
    text = " ".join(sentences)
    if rng.random() < 0.3:
        words = text.split(" ")
        drop = {rng.randrange(len(words)) for _ in range(max(1, len(words) // 50))}
        text = " ".join(w for i, w in enumerate(words) if i not in drop)
    if rng.random() < 0.4:
        top = rng.sample(BOILERPLATE, rng.randint(0, 2))
        bottom = rng.sample(BOILERPLATE, rng.randint(1, 3))
        text = "\n".join([*top, text, *bottom])
    published = date.fromisoformat(base["published"]) + timedelta(days=rng.randint(0, 4 * 365))
    return {"id": f"gen-{n}", "title": base["title"], "published": published.isoformat(), "text": text}


def grow(articles: list[dict], size: int, seed: int):
    """`size` articles: the originals first, then derived ones (5% exact duplicates of earlier ones)."""
    rng = random.Random(seed)
    emitted: list[dict] = []
    for n in range(size):
        if n < len(articles):
            article = articles[n]
        elif emitted and rng.random() < 0.05:
            article = {**emitted[rng.randrange(len(emitted))], "id": f"gen-{n}"}
        else:
            article = perturb(articles[rng.randrange(len(articles))], n, rng)
        if len(emitted) < 200_000:
            emitted.append(article)
        yield article


def write_corpus(out: Path, size: int, seed: int = 7, per_file: int = PER_FILE, prefix: str = "part") -> list[Path]:
    """Write `size` articles as JSONL files under `out`; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    handle = None
    for n, article in enumerate(grow(reuters_articles(), size, seed)):
        if n % per_file == 0:
            if handle:
                handle.close()
            files.append(out / f"{prefix}-{len(files):04d}.jsonl")
            handle = files[-1].open("w")
        handle.write(json.dumps(article) + "\n")
    if handle:
        handle.close()
    return files


def write_increment(out: Path, size: int, seed: int = 7, name: str = "increment.jsonl", prefix: str = "new") -> Path:
    """One file of `size` new derived articles (ids `<prefix>-<n>`), for an incremental run."""
    rng, articles = random.Random(seed + 1), reuters_articles()
    path = out / name
    with path.open("w") as handle:
        for n in range(size):
            article = perturb(articles[rng.randrange(len(articles))], n, rng)
            handle.write(json.dumps({**article, "id": f"{prefix}-{n}"}) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="19k", help="number of articles, e.g. 19k, 100k, 1m")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-file", type=int, default=PER_FILE)
    args = parser.parse_args()
    files = write_corpus(args.out, parse_size(args.size), args.seed, args.per_file)
    print(f"wrote {len(files)} files to {args.out}")


if __name__ == "__main__":
    main()
