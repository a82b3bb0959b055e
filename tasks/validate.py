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
RESIDUAL_BOILERPLATE = r"(?im)(?:\bicon ?(?:bookmark|chevron|camera)|\b\d{1,2}:\d{2}\s*\n\s*\d{1,2}:\d{2}\b|^podcasts$)"
EARLIEST_DATE = datetime(1900, 1, 1)
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
        return expectation("ExpectColumnValuesToBeBetween", warning, column=column,
                           min_value={"$PARAMETER": "earliest_date"}, max_value={"$PARAMETER": "today"})

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


def gx_context(context_dir: str | Path, sync: bool = False):
    """The committed GX file context; with `sync`, (re)write its suites and definitions from `suite_definitions`.

    A run never rewrites the committed suites: if they differ from the code it stops and says how to sync.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    context = gx.get_context(mode="file", project_root_dir=str(context_dir))
    source = context.data_sources.all().get("newsetl") or context.data_sources.add_pandas("newsetl")
    stored_suites = {suite.name: suite for suite in context.suites.all()}
    stored_definitions = {d.name for d in context.validation_definitions.all()}
    for table, expectations in suite_definitions().items():
        suite = gx.ExpectationSuite(name=table, expectations=expectations)
        current = table in stored_suites and suite_signature(stored_suites[table]) == suite_signature(suite)
        if current and table in stored_definitions:
            continue
        if not sync:
            raise RuntimeError(f"expectation suite '{table}' in {context_dir} is out of date with "
                               "tasks/validate.py: run `make suites` and commit expectations/")
        if not current:
            context.suites.add_or_update(suite)
        asset = next((a for a in source.assets if a.name == table), None) or source.add_dataframe_asset(table)
        batch = next((b for b in asset.batch_definitions if b.name == "whole"), None) or \
            asset.add_batch_definition_whole_dataframe("whole")
        if table not in stored_definitions:
            context.validation_definitions.add(
                gx.ValidationDefinition(name=table, data=batch, suite=context.suites.get(table)))
    return context


def suite_signature(suite) -> list[dict]:
    """A suite's expectations without their generated ids, for change detection."""
    return [{k: v for k, v in e.items() if k not in ("id", "rendered_content")}
            for e in suite.to_json_dict()["expectations"]]


def run_parameters(tables: dict[str, pl.DataFrame], actor_codes: list[str], expected_articles: int) -> dict:
    """Cross-table facts the suites check against."""
    return {
        "story_ids": tables["stories"]["story_id"].to_list(),
        "article_ids": tables["articles"]["article_id"].to_list(),
        "event_ids": tables["events"]["event_id"].to_list(),
        "actor_codes": actor_codes,
        "expected_articles": expected_articles,
        "earliest_date": EARLIEST_DATE,
        "today": datetime.combine(date.today(), datetime.min.time()),
    }


def to_pandas_for_gx(frame: pl.DataFrame):
    """Pandas view of a table for GX (list columns become text)."""
    return frame.with_columns(
        [pl.col(c).list.join(", ") for c, t in frame.schema.items() if isinstance(t, pl.List)]
    ).to_pandas()


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
                failing_rows.append((table, index, (config.type, f"{config.type} failed on {column}")))
    quarantine, kept = quarantine_rows(tables, failing_rows, run_id)
    return Validated(kept, quarantine, pl.DataFrame(dq_rows, schema=DQ_SCHEMA), critical_failures)


def quarantine_rows(tables: dict[str, pl.DataFrame], failing: list[tuple[str, int, tuple[str, str]]],
                    run_id: str) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Move failing rows (and rows that depend on them) out of their tables into quarantine records."""
    reasons: dict[tuple[str, int], list[tuple[str, str]]] = {}
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
            records += quarantine_records(orphans, child, run_id, lambda row, parent=table, key=key: [
                ("parent_quarantined", f"its {parent} row ({key} {row[key]}) was quarantined")])
            kept[child] = kept[child].filter(~pl.col(key).is_in(moved[KEYS[table]].implode()))
    return pl.DataFrame(records, schema=QUARANTINE_SCHEMA), kept


def quarantine_records(rows: pl.DataFrame, table: str, run_id: str, reasons_of) -> list[dict]:
    """Quarantine records: which checks failed, why, and the whole row as JSON."""
    out = []
    for row in rows.iter_rows(named=True):
        reasons = reasons_of(row)
        out.append({"run_id": run_id, "table_name": table, "row_key": str(row.get(KEYS[table])),
                     "expectation": "; ".join(kind for kind, _ in reasons),
                     "reason": "; ".join(text for _, text in reasons),
                     "row_json": json.dumps({k: v for k, v in row.items() if k != "_row"}, default=str)})
    return out


if __name__ == "__main__":
    from newsetl.settings import load_settings

    gx_context(load_settings().expectations_dir, sync=True)
    print(f"expectation suites synced into {load_settings().expectations_dir}")
