"""The news_etl flow: ingest -> clean -> dedup -> extract -> validate -> load.

Prefect lives here only: each task is a thin wrapper around a pure stage function from `tasks/`.
Run locally with `python flows/news_etl.py [SOURCE_DIR] [WAREHOUSE_DIR]` or `newsetl run`.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import sys
import time
import uuid
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from newsetl.settings import Settings, load_settings
from tasks import assemble, clean, dedup, extract, ingest, load, validate
from tasks.actors import known_actor_codes

# read beside ingest; the manifest, which ingest needs first, is read before
PRIOR_TABLES = ("articles", "stories", "boilerplate", "event_mentions", "quotes", "ingest_log", "dq_results",
                "quarantine", assemble.INDEX_KEYS, assemble.INDEX_DF)


STAGES = ("start", "ingest", "read", "clean", "dedup", "extract", "validate", "load")
STAGE_RECORD = "newsetl_stage"  # LogRecord attribute carrying {"stage", "seconds", "counts", "note"}
CACHE_DIR = ".cache"  # under the warehouse: persisted task results, keyed by input content
CACHE_TTL = timedelta(days=8)  # covers the weekly rebuild; older entries are deleted


def worth_retrying(_task, _task_run, state) -> bool:
    """Retry IO that may pass (a busy disk, a network share), not a missing file (waiting will not bring it)."""
    return not isinstance(state.result(raise_on_failure=False), FileNotFoundError)


IO_RETRIES = {"retries": 3, "retry_delay_seconds": exponential_backoff(backoff_factor=2), "retry_jitter_factor": 0.5,
              "retry_condition_fn": worth_retrying}
IO_TIMEOUT = 900  # seconds; a stuck stage fails the run instead of holding the writer lock forever
STAGE_TIMEOUT = 3 * 3600
RUN_TIMEOUT = 12 * 3600
PROJECT_ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


class StageLog:
    """Logs one line per finished stage with its counts and seconds; `newsetl run` renders these records."""

    def __init__(self, logger: logging.LoggerAdapter) -> None:
        self.logger = logger
        self.mark = time.monotonic()

    def __call__(self, stage: str, note: str = "", **counts: int) -> None:
        now = time.monotonic()
        seconds, self.mark = now - self.mark, now
        text = ", ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in counts.items())
        record = {"stage": stage, "seconds": seconds, "counts": counts, "note": note}
        self.logger.info("%s: %s%s (%.1f s)", stage, text, f" [{note}]" if note else "", seconds,
                         extra={STAGE_RECORD: record})


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of the stage code and its data files, so a code change invalidates cached results."""
    digest = hashlib.sha256(pl.__version__.encode())
    for path in sorted((PROJECT_ROOT / "tasks").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:  # compiled code (and numba caches) aside
            digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def content_key(frame: pl.DataFrame) -> str:
    """A cheap content hash of a frame: schema plus polars row hashes (stable within one polars version)."""
    digest = hashlib.sha256(str(frame.schema).encode())
    digest.update(frame.hash_rows().to_numpy().tobytes())
    return digest.hexdigest()


def extract_cache_key(_context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Extraction depends only on the articles' content and the code, not on when they were ingested."""
    articles = parameters["articles"].drop("ingested_at", strict=False)
    return f"extract-{code_fingerprint()[:16]}-{content_key(articles)}"


def prune_cache(cache_dir: Path) -> None:
    """Delete cached results past their expiry (Prefect ignores them but never deletes the files)."""
    cutoff = time.time() - CACHE_TTL.total_seconds()
    for path in cache_dir.glob("*"):
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)


# Caching. Only extract is cached, across runs, in <warehouse>/.cache: it is pure and the costliest stage, so a
# re-run after a failed or killed run (or a rebuild over unchanged inputs) reuses its result. The others are not:
# read-warehouse, ingest and load do IO whose result depends on the disk, not their arguments; clean and dedup
# carry each article's ingest time into their output (and dedup depends on the whole prior warehouse), so a
# content key would hand back stale rows; validate stamps the run id into dq_results. Within a run each stage
# runs once, so there is nothing to reuse.
# Timed by the flow, which waits for the read in a thread (Prefect's timeout would only warn there); see `news_etl`.
@task(name="read-warehouse", **IO_RETRIES, cache_policy=NO_CACHE)
def read_prior(warehouse_dir: str, names: tuple[str, ...]) -> dict[str, pl.DataFrame | None]:
    """Tables of the warehouse's current snapshot (None for those it does not hold)."""
    return load.read_tables(warehouse_dir, names)


def in_background(call: Callable[..., T], *args: Any) -> Future[T]:
    """Run `call` (a Prefect task) in a thread of the flow's process with the flow's context, not on the task
    runner: with Dask it would run on a worker, which may not even see the warehouse (and its result would travel
    back)."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(contextvars.copy_context().run, call, *args)
    pool.shutdown(wait=False)  # its thread ends with the call
    return future


# Not retried: a retry would yield the files read so far again (a file that cannot be read is logged as an error
# and read again next run). No timeout of its own: Prefect's would also count the flow's time between the yields,
# and fire there as a crash; the run's timeout covers it.
@task(name="ingest", cache_policy=NO_CACHE)
def ingest_task(source_dirs: list[str], run_id: str, manifest: pl.DataFrame | None
                ) -> Generator[pl.DataFrame, None, pl.DataFrame]:
    """Read new or changed input files, yielding their raw articles as they are read; returns the ingest log."""
    return (yield from ingest.read_sources(source_dirs, run_id, manifest))


# clean and extract run per batch in the task runner's worker threads, where Prefect cannot enforce a timeout.
@task(name="clean", cache_policy=NO_CACHE)
def clean_task(raw: pl.DataFrame):
    """Strip boilerplate and pull metadata."""
    return clean.clean_articles(raw)


@task(name="dedup", timeout_seconds=STAGE_TIMEOUT, cache_policy=NO_CACHE)
def dedup_task(articles: pl.DataFrame, prior_articles: pl.DataFrame | None, index: dedup.DedupIndex | None,
               prior_stories: pl.DataFrame | None) -> tuple[dedup.Dedup, dedup.DedupIndex | None]:
    """Mark copies and group articles into stories; also returns the prior articles' index when it had to be
    rebuilt from their texts (`index` None: a warehouse written before the index was kept, or one whose
    articles were superseded by a changed or removed file)."""
    rebuilt = None
    if index is None and prior_articles is not None and prior_articles.height:
        rebuilt = index = dedup.build_index(prior_articles)
    return dedup.assign_stories(articles, prior_articles, index, prior_stories), rebuilt


@task(name="extract", cache_key_fn=extract_cache_key, cache_expiration=CACHE_TTL,
      persist_result=True)
def extract_task(articles: pl.DataFrame):
    """Events, their mentions, and quotes."""
    return extract.extract_events(articles)


@task(name="validate", timeout_seconds=STAGE_TIMEOUT, cache_policy=NO_CACHE)
def validate_task(tables: dict[str, pl.DataFrame], run_id: str, expected_articles: int,
                  loaded: dict[str, int] | None) -> validate.Validated:
    """Great Expectations gates and quarantine (over the rows earlier runs did not load, see `validate_tables`)."""
    return validate.validate_tables(tables, run_id, load_settings().expectations_dir, known_actor_codes(),
                                    expected_articles, loaded)


@task(name="load", **IO_RETRIES, timeout_seconds=IO_TIMEOUT, cache_policy=NO_CACHE)
def load_task(warehouse_dir: str, run_id: str, tables: dict[str, pl.DataFrame],
              append: dict[str, pl.DataFrame]) -> str | None:
    """Commit a snapshot (`tables` rewritten, `append` rows added) and refresh the DuckDB views; returns a
    warning if the catalog was locked."""
    load.write_snapshot(warehouse_dir, run_id, replace=tables, append=append)
    return load.refresh_catalog(warehouse_dir)


@task(name="data-docs", cache_policy=NO_CACHE)
def data_docs_task(gx_results: dict, warehouse_dir: str) -> str:
    """Render the run's validation results as Data Docs under the warehouse."""
    return str(validate.build_data_docs(gx_results, warehouse_dir, load_settings().expectations_dir))


def rendered(rendering: Future[str], logger: logging.LoggerAdapter, before_unlock: ExitStack) -> str:
    """Where the run's Data Docs are, or why they are not: a report, so its failure fails no run (the tables and
    `dq_results` hold what it shows). Waited for here, the wait registered for a failure before is dropped."""
    before_unlock.pop_all()
    try:
        return rendering.result(timeout=IO_TIMEOUT)
    except Exception as err:  # noqa: BLE001  any failure, a timeout included, is the report's
        logger.warning("Data Docs were not rendered: %s: %s", type(err).__name__, err)
        return f"not rendered ({type(err).__name__}: {err})"


def stage_counts(ingest_log: pl.DataFrame, new: dict[str, pl.DataFrame], events: pl.DataFrame,
                 validated: validate.Validated) -> dict[str, dict[str, int]]:
    """What each stage produced this run (the load stage's row counts are reported separately)."""
    files = ingest_log.filter(pl.col("source_line").is_null())
    failed = validated.dq_results.filter(~pl.col("success"))
    return {
        "ingest": {"files": files.height, **{f"files {s}": int((files["status"] == s).sum())
                                             for s in validate.INGEST_STATUSES},
                   "lines rejected": ingest_log.height - files.height, "articles read": int(files["n_articles"].sum())},
        "clean": {"articles": new["articles"].height, "boilerplate spans": new["boilerplate"].height},
        "dedup": {"stories": new["stories"].height, "copies": int(new["articles"]["duplicate_of"].is_not_null().sum())},
        "extract": {"event mentions": new["event_mentions"].height, "quotes": new["quotes"].height,
                    "events (all stories)": events.height},
        "validate": {"expectations passed": validated.dq_results.height - failed.height,
                     "critical failed": int((failed["severity"] == "critical").sum()),
                     "warnings failed": int((failed["severity"] == "warning").sum()),
                     "rows quarantined": validated.quarantine.height},
    }


def summary_markdown(stages: dict[str, dict[str, int]], counts: dict[str, int], validated: validate.Validated,
                     seconds: float, data_docs: str) -> str:
    """The run's one-screen report for the Prefect UI: counts per stage, failed expectations, quarantine."""
    failed = validated.dq_results.filter(~pl.col("success"))
    outcome = "FAILED: critical data-quality checks failed; nothing was loaded" if validated.critical_failures \
        else "Loaded"
    lines = ["# news_etl run", "", f"{outcome} after {seconds:.1f} s. Data Docs: `{data_docs}`", "",
             "| stage | count | n |", "|---|---|---|"]
    lines += [f"| {stage} | {name} | {n} |" for stage, named in stages.items() for name, n in named.items()]
    lines += [f"| load | {name} rows | {n} |" for name, n in counts.items()]
    lines += ["", f"Expectations: {validated.dq_results.height - failed.height} passed, {failed.height} failed; "
              f"{validated.quarantine.height} rows quarantined."]
    lines += [f"- {r['table_name']}.{r['column']}: {r['expectation']} ({r['severity']}, "
              f"{r['unexpected_count']} unexpected)" for r in failed.iter_rows(named=True)]
    quarantined = validated.quarantine.group_by("table_name", "reason").len().sort("table_name", "reason")
    if quarantined.height:
        lines += ["", "| quarantined from | reason | rows |", "|---|---|---|"]
        lines += [f"| {r['table_name']} | {r['reason']} | {r['len']} |" for r in quarantined.iter_rows(named=True)]
    return "\n".join(lines)


def publish_summary(markdown: str) -> None:
    """Publish the run summary as a Prefect markdown artifact."""
    create_markdown_artifact(markdown, key="news-etl-summary", description="news_etl run summary")


def task_runner(settings: Settings):
    """Where mapped per-batch tasks run: `local_workers` threads here, or a Dask scheduler ("local": a temporary
    cluster)."""
    if not settings.dask_address:
        return ThreadPoolTaskRunner(max_workers=settings.local_workers)
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner() if settings.dask_address == "local" else DaskTaskRunner(address=settings.dask_address)


@flow(name="news-etl", log_prints=True, task_runner=task_runner(load_settings()), timeout_seconds=RUN_TIMEOUT)
def news_etl(source_dir: str | list[str] = "seeds", warehouse_dir: str = "warehouse",
             full_refresh: bool = False) -> dict[str, int]:
    """Turn the articles under `source_dir` into the warehouse at `warehouse_dir`; returns row counts per table.

    Incremental by default: files already loaded from the same path (same content) are not re-read; removed files
    withdraw their articles. `full_refresh` rebuilds everything from the source folders.
    """
    started = time.monotonic()
    logger = get_run_logger()
    log_stage = StageLog(logger)
    source_dirs = [source_dir] if isinstance(source_dir, str) else list(source_dir)
    run_id = flow_run.id or uuid.uuid4().hex
    settings = load_settings()
    lock = load.writer_lock(warehouse_dir, settings.lock_wait_seconds, on_wait=logger.warning)
    with lock, ExitStack() as before_unlock:
        log_stage("start", "full refresh" if full_refresh else "incremental", source_folders=len(source_dirs))
        # The prior tables are read while ingest and clean run; ingest needs only the manifest first.
        manifest = None if full_refresh else read_prior(warehouse_dir, ("manifest",))["manifest"]
        reading = in_background(read_prior, warehouse_dir, assemble.HISTORY_TABLES if full_refresh else PRIOR_TABLES)
        # Each batch is cleaned as soon as ingest has read it, while ingest (single-threaded Python) reads on. It
        # is submitted in the flow's own context: between ingest's yields, ingest's task-run context is the
        # current one, and a Dask client would ship it (holding the manifest) with every batch.
        batch_rows, batch_bytes = settings.batch_size, int(settings.batch_mb * 2**20)
        flow_context = contextvars.copy_context()
        cleaning, origin_parts = [], []

        def clean_soon(raw: pl.DataFrame) -> None:
            origin_parts.append(raw.select(ingest.ORIGIN))
            cleaning.append(flow_context.run(clean_task.submit, raw))

        ingest_log = ingest.drain(
            assemble.rebatched(ingest_task(source_dirs, run_id, manifest), batch_rows, batch_bytes, "raw_text"),
            clean_soon)
        prior = reading.result(timeout=IO_TIMEOUT) | {"manifest": manifest}
        # Prior articles of files changed or removed are superseded; articles loaded before from files that stay
        # are exact repeats.
        stored = prior
        prior, orphaned_copies = assemble.prune_superseded(prior, ingest_log)
        origins = pl.concat(origin_parts)
        origin_parts.clear()
        new_origins, ingest_log = ingest.without_loaded_repeats(origins, ingest_log, prior.get("articles"))
        files = ingest_log.filter(pl.col("source_line").is_null())
        log_stage("ingest", "clean and read ran meanwhile", files=files.height,
                  new_files=int((files["n_articles"] > 0).sum()),
                  unchanged=int(files.select(ingest.is_unchanged()).to_series().sum()),
                  rejected=int(ingest_log["status"].is_in(["quarantined", "error"]).sum()), articles=new_origins.height)
        log_stage("read", "during ingest", prior_articles=stored["articles"].height
                  if stored.get("articles") is not None else 0)
        cleaned = [future.result() for future in cleaning]
        cleaning.clear()  # the futures hold each batch's result
        articles, boilerplate = (assemble.concat(list(frames)) for frames in zip(*cleaned, strict=True))
        del cleaned  # the per-batch frames: dedup's memory peak comes next
        if new_origins.height < origins.height:  # the loaded repeats were cleaned with the rest: drop them
            articles, boilerplate = (frame.join(new_origins.select("article_id"), on="article_id", how="semi")
                                     for frame in (articles, boilerplate))
        del origins, new_origins  # ~75 MB at 1M articles, otherwise held to the end of the run
        if orphaned_copies is not None and orphaned_copies.height:  # their original is gone: they go through dedup
            articles = assemble.concat([articles, orphaned_copies.select(
                [c for c in articles.columns if c in orphaned_copies.columns])])
        log_stage("clean", articles=articles.height, boilerplate_spans=boilerplate.height)
        # Once articles were superseded the stories and the dedup index (its feature counts) are stale: both are
        # rebuilt from the remaining prior articles.
        none_superseded = prior is stored
        prior_stories = prior.get("stories") if none_superseded else None
        prior_index = assemble.prior_index(prior) if none_superseded else None
        deduped, rebuilt_index = dedup_task(articles, prior.get("articles"), prior_index, prior_stories)
        articles, stories = deduped.articles, deduped.stories
        log_stage("dedup", stories=stories.height, copies=int(articles["duplicate_of"].is_not_null().sum()))
        cache_dir = Path(warehouse_dir).resolve() / CACHE_DIR
        prune_cache(cache_dir)
        extracted = extract_task.with_options(result_storage=cache_dir).map(
            assemble.batches(articles, batch_rows, batch_bytes, "body"))
        mentions, quotes = (assemble.concat(list(frames)) for frames in zip(*extracted.result(), strict=True))
        cached = sum(future.state.name == "Cached" for future in extracted)
        n_batches = len(extracted)
        del extracted  # its futures hold each batch's result
        log_stage("extract", f"{cached} of {n_batches} batches cached" if cached else "",
                  event_mentions=mentions.height, quotes=quotes.height)
        new = {"articles": articles, "boilerplate": boilerplate, "stories": stories, "event_mentions": mentions,
               "quotes": quotes, "ingest_log": ingest_log,
               "dq_results": pl.DataFrame(schema=validate.DQ_SCHEMA),
               "quarantine": pl.DataFrame(schema=validate.QUARANTINE_SCHEMA)}
        tables = assemble.assemble_tables(prior, new)
        expected = validate.expected_article_count(prior.get("articles"), ingest_log) + (
            orphaned_copies.height if orphaned_copies is not None else 0)
        # Prior rows were validated when loaded (all are checked again once some were superseded).
        loaded = assemble.loaded_rows(prior) if none_superseded else None
        validated = validate_task(tables, run_id, expected, loaded)
        # Rendered while the tables load (Python beside polars' writers); the lock is not released before it ends.
        rendering = in_background(data_docs_task, validated.gx_results, warehouse_dir)
        before_unlock.callback(wait, [rendering], timeout=IO_TIMEOUT)
        failed = int((~validated.dq_results["success"]).sum())
        log_stage("validate", checks_passed=validated.dq_results.height - failed, checks_failed=failed,
                  rows_quarantined=validated.quarantine.height)
        stages = stage_counts(ingest_log, new, tables["events"], validated)
        index = deduped.index
        del new, deduped, articles, boilerplate, mentions, quotes  # validated.tables holds what loads
        if validated.critical_failures:
            data_docs = rendered(rendering, logger, before_unlock)
            publish_summary(summary_markdown(stages, {}, validated, time.monotonic() - started, data_docs))
            raise validate.DataQualityError(
                f"critical data-quality checks failed; the warehouse was left as it was (details: {data_docs}):\n  "
                + "\n  ".join(validated.critical_failures))
        kept, index = assemble.without_quarantined(tables, validated.tables, index)
        tables = {**kept, "dq_results": assemble.stack(tables["dq_results"], validated.dq_results),
                  "quarantine": assemble.stack(tables["quarantine"], validated.quarantine)}
        replace, append = assemble.split_appends(stored, tables)
        index_replace, index_append = assemble.index_tables(index, rebuilt_index, tables["articles"],
                                                            appending=prior_index is not None)
        warning = load_task(warehouse_dir, run_id, replace | index_replace, append | index_append)
        if warning:
            logger.warning(warning)
        data_docs = rendered(rendering, logger, before_unlock)
    counts = {name: frame.height for name, frame in sorted(tables.items())}
    drawn = rendering.done() and rendering.exception() is None
    log_stage("load", "Data Docs rendered meanwhile" if drawn else "Data Docs not rendered", tables=len(counts),
              rows=sum(counts.values()))
    publish_summary(summary_markdown(stages, counts, validated, time.monotonic() - started, data_docs))
    return counts


if __name__ == "__main__":
    news_etl(*(sys.argv[1:3] or []))
