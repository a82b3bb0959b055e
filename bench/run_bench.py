"""Throughput benchmark: the real news_etl flow on the Reuters corpus and corpora grown from it.

    .venv/bin/python bench/run_bench.py --sizes 19k,100k,1m [--incremental] [--dask ADDRESS]

For each size it generates the corpus once (bench/results/corpora/<size>/, git-ignored), then in a fresh child
process (own Prefect home) runs the flow with a full refresh and reads the per-stage timings the flow logs
(`newsetl_stage` records), sampling peak RSS per stage (the flow process alone, and with its children such as the
temporary Prefect server). In the same child it measures
a FLOOR: polars reading the same JSONL plus one regex pass over all text. With --incremental it then adds 1% new
articles and runs the flow again incrementally, then with SMALL_INCREMENT new articles (what a run costs whatever
it adds: the +1% run's cost beyond it is the 1%'s own), then once more with nothing new. Figures are printed and
written to bench/results/<timestamp>.json.
Totals are the sum of stage times: interpreter and Prefect start-up are excluded, and so is importing the
libraries (the flow and Great Expectations, which validation imports on first use), timed on its own first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

from bench.make_corpus import parse_size, write_corpus, write_increment  # noqa: E402

STAGE_RECORD = "newsetl_stage"
SMALL_INCREMENT = 10  # articles of the run that measures a run's fixed cost


class PeakRss:
    """Samples, in a thread, the RSS of this process alone (`own`) and with its children (`peak`: the temporary
    Prefect server among them); `take()` returns both peaks since the last take."""

    def __init__(self, interval: float = 0.05) -> None:
        self.process, self.interval = psutil.Process(), interval
        self.peak = self.own = self.overall = self.overall_own = 0
        threading.Thread(target=self.run, daemon=True).start()

    def rss(self) -> tuple[int, int]:
        """Resident memory of this process, and of it with its children, in bytes."""
        own = total = self.process.memory_info().rss
        for child in self.process.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a child may exit while we look
                total += child.memory_info().rss
        return own, total

    def run(self) -> None:
        """Sample until the process exits."""
        while True:
            own, total = self.rss()
            self.own, self.peak = max(self.own, own), max(self.peak, total)
            self.overall_own, self.overall = max(self.overall_own, self.own), max(self.overall, self.peak)
            time.sleep(self.interval)

    def take(self) -> tuple[int, int]:
        own, total = self.rss()
        peaks = max(self.own, own), max(self.peak, total)
        self.own = self.peak = 0
        return peaks


class StageCollector(logging.Handler):
    """Collects the flow's stage records, each with the peak RSS seen while it ran."""

    def __init__(self, sampler: PeakRss) -> None:
        super().__init__()
        self.sampler, self.stages = sampler, []

    def emit(self, record: logging.LogRecord) -> None:
        stage = getattr(record, STAGE_RECORD, None)
        if stage:
            own, total = self.sampler.take()
            self.stages.append({**stage, "peak_rss_mb": total / 2**20, "peak_rss_flow_mb": own / 2**20})


def import_libraries() -> float:
    """Seconds to import the flow and Great Expectations (which validation imports on first use): start-up, kept
    out of the stage times like interpreter and Prefect start-up, and reported on its own."""
    started = time.monotonic()
    import great_expectations  # noqa: F401

    import flows.news_etl  # noqa: F401

    return time.monotonic() - started


def measure_floor(source: Path) -> float:
    """Seconds for polars to read the corpus plus one regex pass over every text."""
    import polars as pl

    started = time.monotonic()
    frame = pl.concat([pl.read_ndjson(p) for p in sorted(source.glob("*.jsonl"))])
    frame.select(pl.col("text").str.count_matches(r"\b[A-Z][a-z]+\b").sum())
    return time.monotonic() - started


def run_flow(source: Path, warehouse: Path, full_refresh: bool, sampler: PeakRss) -> list[dict]:
    """Run the flow once; its stage records with per-stage peak RSS."""
    from flows.news_etl import news_etl

    collector = StageCollector(sampler)
    logger = logging.getLogger("prefect.flow_runs")
    logger.addHandler(collector)
    sampler.take()
    try:
        news_etl(source_dir=str(source), warehouse_dir=str(warehouse), full_refresh=full_refresh)
    finally:
        logger.removeHandler(collector)
    return collector.stages


def child(args: argparse.Namespace) -> None:
    """One size in a fresh process: floor, full run, optionally the incremental runs; JSON on stdout."""
    sampler = PeakRss()
    result = {"imports_seconds": import_libraries(), "floor_seconds": measure_floor(args.source)}
    result["full"] = run_flow(args.source, args.warehouse, True, sampler)
    if args.increment:
        added = []
        try:
            runs = (("incremental", args.increment), ("small", args.small_increment), ("unchanged", None))
            for kind, increment in runs:
                if increment:
                    os.link(increment, args.source / increment.name)
                    added.append(args.source / increment.name)
                result[kind] = run_flow(args.source, args.warehouse, False, sampler)
        finally:
            for path in added:
                path.unlink()
    result["peak_rss_mb"], result["peak_rss_flow_mb"] = sampler.overall / 2**20, sampler.overall_own / 2**20
    print("BENCH-RESULT " + json.dumps(result))


def prepare(size: int, label: str, incremental: bool, seed: int) -> tuple[Path, list[Path]]:
    """The corpus folder for a size (generated once) and, if asked, the increment files outside it: 1% of the size,
    and SMALL_INCREMENT articles (other ids, drawn with another seed)."""
    corpus = RESULTS / "corpora" / label
    if not corpus.is_dir():
        write_corpus(corpus, size, seed)
    if not incremental:
        return corpus, []
    increments = [RESULTS / "corpora" / f"{label}-increment.jsonl", RESULTS / "corpora" / f"{label}-small.jsonl"]
    if not increments[0].is_file():
        write_increment(increments[0].parent, max(1, size // 100), seed, increments[0].name)
    if not increments[1].is_file():
        write_increment(increments[1].parent, SMALL_INCREMENT, seed + 1, increments[1].name, prefix="small")
    return corpus, increments


def summarise(label: str, n: int, run: list[dict]) -> dict:
    """Per stage and total: seconds, articles/s, peak RSS."""
    stages = {s["stage"]: {"seconds": s["seconds"], "articles_per_s": n / s["seconds"] if s["seconds"] else None,
                           "peak_rss_mb": s["peak_rss_mb"], "peak_rss_flow_mb": s["peak_rss_flow_mb"],
                           "counts": s["counts"], "note": s["note"]} for s in run}
    total = sum(s["seconds"] for s in run)
    return {"size": label, "articles": n, "stages": stages, "total_seconds": total, "articles_per_s": n / total,
            "peak_rss_mb": max(s["peak_rss_mb"] for s in run),
            "peak_rss_flow_mb": max(s["peak_rss_flow_mb"] for s in run)}


def print_table(name: str, summary: dict, floor: float | None) -> None:
    """One run's figures as a text table (peak RSS of the flow's process, and with its children)."""
    print(f"\n{name}: {summary['articles']:,} articles")
    print(f"{'stage':<10} {'wall s':>9} {'articles/s':>12} {'RSS flow MB':>12} {'+children MB':>13}")
    for stage, s in summary["stages"].items():
        rate = f"{s['articles_per_s']:,.0f}" if s["articles_per_s"] else "-"
        print(f"{stage:<10} {s['seconds']:>9.2f} {rate:>12} {s['peak_rss_flow_mb']:>12,.0f} {s['peak_rss_mb']:>13,.0f}"
              + (f"  [{s['note']}]" if s["note"] else ""))
    rate = f"{summary['articles_per_s']:,.0f}" if summary["articles_per_s"] else "-"
    print(f"{'total':<10} {summary['total_seconds']:>9.2f} {rate:>12} "
          f"{summary['peak_rss_flow_mb']:>12,.0f} {summary['peak_rss_mb']:>13,.0f}")
    if floor:
        print(f"floor {floor:.2f} s; flow / floor = {summary['total_seconds'] / floor:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="19k", help="comma-separated sizes, e.g. 19k,100k,1m")
    parser.add_argument("--incremental", action="store_true", help="also time adding 1%% new articles")
    parser.add_argument("--dask", metavar="ADDRESS", help="run per-batch work on this Dask scheduler ('local': "
                                                          "a temporary local cluster)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--increment", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--small-increment", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    report = {"started": datetime.now(UTC).isoformat(), "cpus": os.cpu_count(), "dask": args.dask, "runs": []}
    for label in args.sizes.split(","):
        n = parse_size(label)
        corpus, increments = prepare(n, label, args.incremental, args.seed)
        with tempfile.TemporaryDirectory(prefix="newsetl-bench-") as tmp:
            env = {**os.environ, "PREFECT_HOME": f"{tmp}/prefect", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                   "GX_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}
            if args.dask:
                env["NEWSETL_DASK_ADDRESS"] = args.dask
            command = [sys.executable, __file__, "--child", "--source", str(corpus), "--warehouse", f"{tmp}/wh"]
            if increments:
                command += ["--increment", str(increments[0]), "--small-increment", str(increments[1])]
            done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH-RESULT ")), None)
        if line is None:
            sys.exit(f"benchmark run for {label} failed:\n{done.stderr[-5000:]}")
        raw = json.loads(line.removeprefix("BENCH-RESULT "))
        run = {"imports_seconds": raw["imports_seconds"], "floor_seconds": raw["floor_seconds"],
               "full": summarise(label, n, raw["full"])}
        run["full"]["floor_ratio"] = run["full"]["total_seconds"] / raw["floor_seconds"]
        print_table(f"{label} full refresh", run["full"], raw["floor_seconds"])
        print(f"library imports before the run (start-up, not in the total): {raw['imports_seconds']:.2f} s")
        if "incremental" in raw:
            run["incremental"] = summarise(label, max(1, n // 100), raw["incremental"])
            run["incremental_cost_ratio"] = run["incremental"]["total_seconds"] / run["full"]["total_seconds"]
            print_table(f"{label} incremental (+1%)", run["incremental"], None)
            print(f"incremental / full = {run['incremental_cost_ratio']:.1%}")
            run["small"] = summarise(label, SMALL_INCREMENT, raw["small"])
            run["small_cost_ratio"] = run["small"]["total_seconds"] / run["full"]["total_seconds"]
            print_table(f"{label} with {SMALL_INCREMENT} new articles (a run's fixed cost)", run["small"], None)
            print(f"{SMALL_INCREMENT} new / full = {run['small_cost_ratio']:.1%}")
            run["marginal_seconds"] = run["incremental"]["total_seconds"] - run["small"]["total_seconds"]
            run["marginal_cost_ratio"] = run["marginal_seconds"] / run["full"]["total_seconds"]
            print(f"the 1%'s own cost (+1% run minus the {SMALL_INCREMENT}-article run): "
                  f"{run['marginal_seconds']:.2f} s = {run['marginal_cost_ratio']:.1%} of the full run")
            run["unchanged"] = summarise(label, 0, raw["unchanged"])
            run["unchanged_cost_ratio"] = run["unchanged"]["total_seconds"] / run["full"]["total_seconds"]
            print_table(f"{label} with nothing new (what any run over it costs)", run["unchanged"], None)
            print(f"unchanged / full = {run['unchanged_cost_ratio']:.1%}")
        report["runs"].append(run)
    full = [r["full"] for r in report["runs"]]
    pairs = zip(full, full[1:], strict=False)
    report["scaling"] = [{"from": a["size"], "to": b["size"], "articles_x": b["articles"] / a["articles"],
                          "time_x": b["total_seconds"] / a["total_seconds"]} for a, b in pairs]
    for s in report["scaling"]:
        print(f"\n{s['from']} -> {s['to']}: {s['articles_x']:.1f}x articles cost {s['time_x']:.1f}x time")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
