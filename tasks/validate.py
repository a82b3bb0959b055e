"""Validate stage: Great Expectations suites per table, severity gates, and a quarantine for failing rows.

Suites are declared here and synced into the GX file context under `expectations/` (committed JSON). Each
expectation carries `meta.severity`: a failed `critical` one fails the run before anything is loaded; rows that
fail a `warning` one move to the `quarantine` table (with dependents), and the run goes on.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl

PLOVER_TYPES = ("AGREE", "CONSULT", "SUPPORT", "CONCEDE", "COOPERATE", "AID", "RETREAT", "REQUEST", "ACCUSE",
                "REJECT", "THREATEN", "PROTEST", "SANCTION", "MOBILIZE", "COERCE", "ASSAULT")
INGEST_STATUSES = ("ok", "quarantined", "error")
RESIDUAL_BOILERPLATE = r"(?i)(\bicon ?(bookmark|chevron|camera)|\b\d{1,2}:\d{2}\s*\n\s*\d{1,2}:\d{2}\b|^podcasts$)"
EARLIEST_DATE = "1900-01-01"
KEYS = {"articles": "article_id", "stories": "story_id", "events": "event_id", "event_mentions": "event_id",
        "quotes": "quote_id", "boilerplate": "article_id", "ingest_log": "source_file"}
DEPENDENTS = {"articles": [("event_mentions", "article_id"), ("quotes", "article_id"), ("boilerplate", "article_id")],
              "events": [("event_mentions", "event_id")]}
QUARANTINE_SCHEMA = {"run_id": pl.String, "table_name": pl.String, "row_key": pl.String,
                     "expectation": pl.String, "reason": pl.String, "row_json": pl.String}
DQ_SCHEMA = {"run_id": pl.String, "table_name": pl.String, "expectation": pl.String, "column": pl.String,
             "severity": pl.String, "success": pl.Boolean, "unexpected_count": pl.Int64,
             "checked_at": pl.Datetime("us", "UTC")}

log = logging.getLogger(__name__)


class DataQualityError(RuntimeError):
    """A critical expectation failed: the run must not load."""


@dataclass
class Validated:
    """Tables after quarantine, the quarantined rows, and one dq_results row per expectation."""

    tables: dict[str, pl.DataFrame]
    quarantine: pl.DataFrame
    dq_results: pl.DataFrame
    critical_failures: list[str]


def expectation(kind: str, severity: str, **kwargs):
    """A GX expectation of class `kind` tagged with its severity."""
    import great_expectations as gx

    return getattr(gx.expectations, kind)(meta={"severity": severity}, **kwargs)


def suite_definitions() -> dict[str, list]:
    """Expectations per table; `$PARAMETER`s are filled per run with cross-table facts."""
    critical, warning = "critical", "warning"

    def keys(column: str) -> list:
        return [expectation("ExpectColumnValuesToNotBeNull", critical, column=column),
                expectation("ExpectColumnValuesToBeUnique", critical, column=column)]

    def in_param(column: str, param: str, severity: str = critical) -> object:
        return expectation("ExpectColumnValuesToBeInSet", severity, column=column, value_set={"$PARAMETER": param})

    def plausible_date(column: str) -> object:
        return expectation("ExpectColumnValuesToBeBetween", warning, column=column, min_value=EARLIEST_DATE,
                           max_value={"$PARAMETER": "today"})

    return {
        "articles": [
            *keys("article_id"),
            expectation("ExpectColumnValuesToNotBeNull", critical, column="story_id"),
            expectation("ExpectColumnValuesToNotBeNull", critical, column="content_hash"),
            in_param("story_id", "story_ids"),
            expectation("ExpectColumnPairValuesAToBeGreaterThanB", warning, column_A="raw_chars",
                        column_B="clean_chars", or_equal=True),
            expectation("ExpectColumnValuesToNotMatchRegex", warning, column="body", regex=RESIDUAL_BOILERPLATE),
            plausible_date("published_date"),
            expectation("ExpectTableRowCountToEqual", critical, value={"$PARAMETER": "expected_articles"}),
        ],
        "stories": [
            *keys("story_id"),
            expectation("ExpectColumnValuesToBeBetween", critical, column="n_articles", min_value=1),
            in_param("canonical_article_id", "article_ids"),
        ],
        "events": [
            *keys("event_id"),
            expectation("ExpectColumnValuesToBeInSet", critical, column="event_type", value_set=list(PLOVER_TYPES)),
            in_param("story_id", "story_ids"),
            in_param("source_code", "actor_codes", warning),
            in_param("target_code", "actor_codes", warning),
            expectation("ExpectColumnValuesToBeBetween", warning, column="confidence", min_value=0, max_value=1),
            expectation("ExpectColumnValuesToBeBetween", critical, column="n_articles", min_value=1),
            plausible_date("event_date"),
        ],
        "event_mentions": [
            expectation("ExpectColumnValuesToNotBeNull", critical, column="event_id"),
            in_param("event_id", "event_ids"),
            in_param("article_id", "article_ids"),
            expectation("ExpectColumnPairValuesAToBeGreaterThanB", warning, column_A="article_date",
                        column_B="event_date", or_equal=True, ignore_row_if="either_value_is_missing"),
        ],
        "quotes": [*keys("quote_id"), in_param("article_id", "article_ids"),
                   expectation("ExpectColumnValuesToNotBeNull", warning, column="quote")],
        "boilerplate": [in_param("article_id", "article_ids"),
                        expectation("ExpectColumnPairValuesAToBeGreaterThanB", critical, column_A="char_end",
                                    column_B="char_start", or_equal=True)],
        "ingest_log": [expectation("ExpectColumnValuesToNotBeNull", critical, column="source_file"),
                       expectation("ExpectColumnValuesToBeInSet", critical, column="status",
                                   value_set=list(INGEST_STATUSES))],
    }


def gx_context(context_dir: str | Path):
    """The committed GX file context, with progress bars off and suites in sync with `suite_definitions`."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    context = gx.get_context(mode="file", project_root_dir=str(context_dir))
    source = context.data_sources.add_or_update_pandas("newsetl")
    for table, expectations in suite_definitions().items():
        suite = gx.ExpectationSuite(name=table, expectations=expectations)
        try:
            stored = context.suites.get(table)
            if stored.to_json_dict()["expectations"] == _without_ids(suite.to_json_dict()["expectations"], stored):
                continue
        except Exception:  # noqa: BLE001 - GX raises several types for a missing suite
            pass
        context.suites.add_or_update(suite)
        asset = next((a for a in source.assets if a.name == table), None) or source.add_dataframe_asset(table)
        batch = next((b for b in asset.batch_definitions if b.name == "whole"), None) or \
            asset.add_batch_definition_whole_dataframe("whole")
        context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=table, data=batch, suite=context.suites.get(table)))
    return context


def _without_ids(new: list[dict], stored) -> list[dict]:
    """New expectation dicts with the stored ids, so an unchanged suite compares equal."""
    stored_ids = [e.get("id") for e in stored.to_json_dict()["expectations"]]
    return [{**e, "id": i} for e, i in zip(new, stored_ids, strict=False)] if len(stored_ids) == len(new) else new


def run_parameters(tables: dict[str, pl.DataFrame], actor_codes: list[str], expected_articles: int) -> dict:
    """Cross-table facts the suites check against."""
    return {
        "story_ids": tables["stories"]["story_id"].to_list(),
        "article_ids": tables["articles"]["article_id"].to_list(),
        "event_ids": tables["events"]["event_id"].to_list(),
        "actor_codes": actor_codes,
        "expected_articles": expected_articles,
        "today": date.today().isoformat(),
    }


def to_pandas_for_gx(frame: pl.DataFrame):
    """Pandas view of a table for GX: dates become ISO strings, lists become text."""
    converted = frame.with_columns(
        [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t in (pl.Date, pl.Datetime)]
        + [pl.col(c).list.join(", ") for c, t in frame.schema.items() if isinstance(t, pl.List)]
    )
    return converted.to_pandas()


def validate_tables(tables: dict[str, pl.DataFrame], run_id: str, context_dir: str | Path,
                    actor_codes: list[str], expected_articles: int) -> Validated:
    """Run every suite; collect dq_results, quarantine rows failing warnings, report failed criticals."""
    context = gx_context(context_dir)
    params = run_parameters(tables, actor_codes, expected_articles)
    checked_at = datetime.now(timezone.utc).replace(microsecond=0)
    dq_rows, failing_rows, critical_failures = [], [], []
    mentions_dates = tables["articles"].select("article_id", article_date=pl.col("published_date"))
    frames = {**tables, "event_mentions": tables["event_mentions"].join(mentions_dates, on="article_id", how="left")}
    for table in suite_definitions():
        frame = frames[table]
        result = context.validation_definitions.get(table).run(
            batch_parameters={"dataframe": to_pandas_for_gx(frame)}, expectation_parameters=params,
            result_format={"result_format": "COMPLETE"})
        for check in result.results:
            config = check.expectation_config
            column = config.kwargs.get("column") or \
                ",".join(filter(None, [config.kwargs.get("column_A"), config.kwargs.get("column_B")]))
            severity = config.meta.get("severity", "critical")
            unexpected = check.result.get("unexpected_count")
            dq_rows.append({"run_id": run_id, "table_name": table, "expectation": config.type, "column": column,
                            "severity": severity, "success": bool(check.success),
                            "unexpected_count": unexpected if unexpected is not None else int(not check.success),
                            "checked_at": checked_at})
            if check.success:
                continue
            if severity == "critical":
                critical_failures.append(f"{table}.{column or '*'}: {config.type} failed "
                                         f"({unexpected if unexpected is not None else 'table-level'} unexpected)")
            for index in check.result.get("unexpected_index_list") or []:
                failing_rows.append((table, index, f"{config.type} on {column}"))
    quarantine, kept = quarantine_rows(tables, failing_rows, run_id)
    return Validated(kept, quarantine, pl.DataFrame(dq_rows, schema=DQ_SCHEMA), critical_failures)


def quarantine_rows(tables: dict[str, pl.DataFrame], failing: list[tuple[str, int, str]],
                    run_id: str) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Move failing rows (and rows that depend on them) out of their tables into quarantine records."""
    reasons: dict[tuple[str, int], list[str]] = {}
    for table, index, reason in failing:
        reasons.setdefault((table, index), []).append(reason)
    kept, records = dict(tables), []
    for table in tables:
        bad = sorted(i for t, i in reasons if t == table)
        if not bad:
            continue
        frame = kept[table].with_row_index("_row")
        moved = frame.filter(pl.col("_row").is_in(bad))
        records += quarantine_records(moved, table, run_id, lambda row: reasons[(table, row["_row"])])
        kept[table] = frame.filter(~pl.col("_row").is_in(bad)).drop("_row")
        for child, key in DEPENDENTS.get(table, []):
            orphans = kept[child].filter(pl.col(key).is_in(moved[KEYS[table]].implode()))
            records += quarantine_records(orphans, child, run_id, lambda _row: [f"parent {table} row quarantined"])
            kept[child] = kept[child].filter(~pl.col(key).is_in(moved[KEYS[table]].implode()))
    return pl.DataFrame(records, schema=QUARANTINE_SCHEMA), kept


def quarantine_records(rows: pl.DataFrame, table: str, run_id: str, reasons_of) -> list[dict]:
    """Quarantine records keeping each whole row as JSON."""
    out = []
    for row in rows.iter_rows(named=True):
        out.append({"run_id": run_id, "table_name": table, "row_key": str(row.get(KEYS[table])),
                    "expectation": "; ".join(reasons_of(row)),
                    "reason": f"failed {len(reasons_of(row))} row-level check(s)",
                    "row_json": json.dumps({k: v for k, v in row.items() if k != "_row"}, default=str)})
    return out
