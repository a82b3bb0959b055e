"""The news_etl flow: ingest -> clean -> dedup -> extract -> validate -> load.

Prefect lives here only: each task is a thin wrapper around a pure stage function from `tasks/`.
Run locally with `python flows/news_etl.py [SOURCE_DIR] [WAREHOUSE_DIR]` or `newsetl run`.
"""

from __future__ import annotations

import sys
import time
import uuid

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from newsetl.settings import load_settings
from tasks import assemble, clean, dedup, extract, ingest, load, validate
from tasks.actors import known_actor_codes

PRIOR_TABLES = ("articles", "boilerplate", "event_mentions", "quotes", "ingest_log", "dq_results", "quarantine",
                "manifest")


@task(name="read-warehouse", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def read_prior(warehouse_dir: str, full_refresh: bool) -> dict[str, pl.DataFrame | None]:
    """The warehouse's current tables (none on a full refresh)."""
    if full_refresh:
        return {}
    return {name: load.read_table(warehouse_dir, name) for name in PRIOR_TABLES}


@task(name="ingest", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def ingest_task(source_dirs: list[str], run_id: str, skip_hashes: frozenset[str]):
    """Read new or changed input files."""
    return ingest.ingest_sources(source_dirs, run_id, skip_hashes)


@task(name="clean", cache_policy=NO_CACHE)
def clean_task(raw: pl.DataFrame):
    """Strip boilerplate and pull metadata."""
    return clean.clean_articles(raw)


@task(name="dedup", cache_policy=NO_CACHE)
def dedup_task(articles: pl.DataFrame, prior_articles: pl.DataFrame | None):
    """Mark copies and group articles into stories."""
    return dedup.assign_stories(articles, prior_articles)


@task(name="extract", cache_policy=NO_CACHE)
def extract_task(articles: pl.DataFrame):
    """Events, their mentions, and quotes."""
    return extract.extract_events(articles)


@task(name="validate", cache_policy=NO_CACHE)
def validate_task(tables: dict[str, pl.DataFrame], run_id: str, expected_articles: int) -> validate.Validated:
    """Great Expectations gates and quarantine."""
    return validate.validate_tables(tables, run_id, load_settings().expectations_dir, known_actor_codes(),
                                    expected_articles)


@task(name="load", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def load_task(warehouse_dir: str, run_id: str, tables: dict[str, pl.DataFrame]) -> str | None:
    """Commit a snapshot and refresh the DuckDB views; returns a warning if the catalog was locked."""
    load.write_snapshot(warehouse_dir, run_id, replace=tables)
    return load.refresh_catalog(warehouse_dir)


def summary_markdown(counts: dict[str, int], validated: validate.Validated, seconds: float) -> str:
    """The run's one-screen report for the Prefect UI."""
    failed = validated.dq_results.filter(~pl.col("success"))
    lines = ["# news_etl run", "", f"Finished in {seconds:.1f} s.", "", "| table | rows |", "|---|---|"]
    lines += [f"| {name} | {n} |" for name, n in counts.items()]
    lines += ["", f"Expectations: {validated.dq_results.height - failed.height} passed, {failed.height} failed; "
              f"{validated.quarantine.height} rows quarantined."]
    lines += [f"- {r['table_name']}.{r['column']}: {r['expectation']} ({r['severity']}, "
              f"{r['unexpected_count']} unexpected)" for r in failed.iter_rows(named=True)]
    return "\n".join(lines)


@flow(name="news-etl", log_prints=True)
def news_etl(source_dir: str | list[str] = "seeds", warehouse_dir: str = "warehouse",
             full_refresh: bool = False) -> dict[str, int]:
    """Turn the articles under `source_dir` into the warehouse at `warehouse_dir`; returns row counts per table.

    Incremental by default: files already loaded (same content hash) are not re-read. `full_refresh` rebuilds
    everything from the source folders.
    """
    started = time.monotonic()
    logger = get_run_logger()
    source_dirs = [source_dir] if isinstance(source_dir, str) else list(source_dir)
    run_id = flow_run.id or uuid.uuid4().hex
    with load.writer_lock(warehouse_dir, load_settings().lock_wait_seconds):
        prior = read_prior(warehouse_dir, full_refresh)
        skip = frozenset(prior["manifest"]["file_hash"]) if prior.get("manifest") is not None else frozenset()
        raw, ingest_log = ingest_task(source_dirs, run_id, skip)
        logger.info("ingest: %d files, %d new articles", ingest_log["source_file"].n_unique(), raw.height)
        articles, boilerplate = clean_task(raw)
        logger.info("clean: %d boilerplate spans removed", boilerplate.height)
        prior = assemble.prune_superseded(prior, ingest_log)
        articles, stories = dedup_task(articles, prior.get("articles"))
        logger.info("dedup: %d stories, %d copies", stories.height, articles["duplicate_of"].is_not_null().sum())
        mentions, quotes = extract_task(articles)
        logger.info("extract: %d event mentions, %d quotes", mentions.height, quotes.height)
        new = {"articles": articles, "boilerplate": boilerplate, "stories": stories, "event_mentions": mentions,
               "quotes": quotes, "ingest_log": ingest_log,
               "dq_results": pl.DataFrame(schema=validate.DQ_SCHEMA),
               "quarantine": pl.DataFrame(schema=validate.QUARANTINE_SCHEMA)}
        tables = assemble.assemble_tables(prior, new)
        expected = (prior["articles"].height if prior.get("articles") is not None else 0) + articles.height
        validated = validate_task(tables, run_id, expected)
        if validated.critical_failures:
            raise validate.DataQualityError(
                "critical data-quality checks failed; the warehouse was left as it was:\n  "
                + "\n  ".join(validated.critical_failures))
        tables = {**validated.tables,
                  "dq_results": assemble.stack(tables["dq_results"], validated.dq_results),
                  "quarantine": assemble.stack(tables["quarantine"], validated.quarantine)}
        warning = load_task(warehouse_dir, run_id, tables)
        if warning:
            logger.warning(warning)
    counts = {name: frame.height for name, frame in sorted(tables.items())}
    logger.info("load: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    create_markdown_artifact(summary_markdown(counts, validated, time.monotonic() - started),
                             key="news-etl-summary", description="news_etl run summary")
    return counts


if __name__ == "__main__":
    news_etl(*(sys.argv[1:3] or []))
