"""Validate stage: Great Expectations suites per table, severity gates, and a quarantine for failing rows.

Suites are declared here and synced into the GX file context under `expectations/` (committed JSON). Each
expectation carries `meta.severity`: a failed `critical` one fails the run before anything is loaded; rows that
fail a `warning` one move to the `quarantine` table (with dependents), and the run goes on. `meta.reason` is the
human-readable reason recorded for a failing row. Each run's results are also rendered as GX Data Docs under the
warehouse (`<warehouse>/data_docs/index.html`).

GX sees only the rows to check (an incremental run: the rows it adds or changes) and only the columns its suites
read. Checks that need the whole table (unique keys, references) or whole article texts (regexes) are computed in
polars into columns that GX checks; rows loaded by earlier runs that break a whole-table rule are checked again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Collection, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path

import polars as pl

PLOVER_TYPES = (
    "AGREE",
    "CONSULT",
    "SUPPORT",
    "CONCEDE",
    "COOPERATE",
    "AID",
    "RETREAT",
    "REQUEST",
    "ACCUSE",
    "REJECT",
    "THREATEN",
    "PROTEST",
    "SANCTION",
    "MOBILIZE",
    "COERCE",
    "ASSAULT",
)
INGEST_STATUSES = ("ok", "quarantined", "error", "removed")
RESIDUAL_BOILERPLATE = r"(?im)(?:\bicon ?(?:bookmark|chevron|camera)|\b\d{1,2}:\d{2}\s*\n\s*\d{1,2}:\d{2}\b|^podcasts$)"
EARLIEST_DATE = datetime(1900, 1, 1)
NANOSECOND_DATES = (date(1678, 1, 1), date(2262, 1, 1))  # dates a nanosecond timestamp holds
BETWEEN = "expect_column_values_to_be_between"
NO_TEXT_LEFT = "no article text left after cleaning"
ROW = "_row"  # a row's position in its whole table: GX's failing rows are traced back by it
# Derived tables rebuilt each run: a row changed iff a new row of the child table carries its key (child, key).
CHANGED_WITH = {"stories": ("articles", "story_id"), "events": ("event_mentions", "event_id")}
KEYS = {
    "articles": "article_id",
    "stories": "story_id",
    "events": "event_id",
    "event_mentions": "event_id",
    "quotes": "quote_id",
    "boilerplate": "article_id",
    "ingest_log": "source_file",
}
# Rows that go with a quarantined row: (table, column holding its key), in order. An article's copies come first, so
# that their own rows go too.
DEPENDENTS = {
    "articles": [("articles", "duplicate_of"), ("event_mentions", "article_id"), ("quotes", "article_id"),
                 ("boilerplate", "article_id")],
    "events": [("event_mentions", "event_id")],
}
# A parent row left with none of its children after quarantine is quarantined too: (parent, child, key).
EMPTIED_PARENTS = [("events", "event_mentions", "event_id"), ("stories", "articles", "story_id")]
# Referential integrity per table: (column, parent table, parent key). Membership is computed in polars into a
# boolean column `<column>_in_<parent>` that GX checks, so suites and Data Docs do not carry every parent id.
REFERENCES = {
    "articles": [("story_id", "stories", "story_id"), ("duplicate_of", "articles", "article_id")],
    "stories": [("canonical_article_id", "articles", "article_id")],
    "events": [("story_id", "stories", "story_id")],
    "event_mentions": [("event_id", "events", "event_id"), ("article_id", "articles", "article_id")],
    "quotes": [("article_id", "articles", "article_id"), ("story_id", "stories", "story_id")],
    "boilerplate": [("article_id", "articles", "article_id")],
}
DATA_DOCS_DIR = "data_docs"
DOCS_RESULTS_DIR = "dq_validations"
DOCS_SUMMARY = "dq_validations_index.json"  # each stored result's entry on the Data Docs index (tasks.gx_site)
# The Data Docs site holds the validations of the newest DOCS_RUNS runs; older runs' stored results and pages move to
# DOCS_ARCHIVE (same layout), since GX lists and indexes every result in the site on each build: with all of them
# kept, a run's Data Docs took 0.15 s after 5 runs and 1.2 s after 200. dq_results keeps every run's results.
DOCS_RUNS = 30
DOCS_ARCHIVE = "dq_archive"
TEMPLATE_CACHE = Path(".cache") / "data_docs_templates"  # compiled Jinja templates of the Data Docs pages
DOCS_SITE = "warehouse"
VENDOR_DIR = Path("gx") / "plugins" / "custom_data_docs" / "vendor"
# The CDN files GX's page templates load -> the vendored copy (None: not needed by these pages, dropped), so the
# Data Docs render offline.
CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"
TABLE_CDN = "https://unpkg.com/bootstrap-table@1.19.1/dist"
FILTER_CDN = "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control"
FILTER = "bootstrap-table-filter-control"
CDN_ASSETS = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery.min.js",
    f"{CDNJS}/popper.js/1.12.9/umd/popper.min.js": "popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap.min.css",
    f"{TABLE_CDN}/bootstrap-table.min.js": "bootstrap-table.min.js",
    f"{TABLE_CDN}/bootstrap-table.min.css": "bootstrap-table.min.css",
    f"{TABLE_CDN}/extensions/filter-control/{FILTER}.min.js": f"{FILTER}.min.js",
    f"{FILTER_CDN}/{FILTER}.css": f"{FILTER}.min.css",
    f"{FILTER_CDN}/{FILTER}.min.css": f"{FILTER}.min.css",
    f"{CDNJS}/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": "bootstrap-datepicker.min.js",
    f"{CDNJS}/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": "bootstrap-datepicker.min.css",
    f"{CDNJS}/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/fontawesome-solid.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": None,
    "https://cdn.jsdelivr.net/npm/vega-lite@5": None,
    "https://cdn.jsdelivr.net/npm/vega-embed@6": None,
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": None,
}
CDN_TAG_RE = re.compile(r'<(script|link)\b[^>]*?(?:src|href)="(https://[^"]+)"[^>]*>(?:\s*</script>)?')
GX_LOGO_RE = re.compile(r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/[\w.-]+(?:\?d=[\w.]+)?")
QUARANTINE_SCHEMA = {
    "run_id": pl.String,
    "table_name": pl.String,
    "row_key": pl.String,
    "expectation": pl.String,
    "reason": pl.String,
    "row_json": pl.String,
}
DQ_SCHEMA = {
    "run_id": pl.String,
    "table_name": pl.String,
    "expectation": pl.String,
    "column": pl.String,
    "severity": pl.String,
    "success": pl.Boolean,
    "unexpected_count": pl.Int64,
    "checked_at": pl.Datetime("us", "UTC"),
}
FAILING_SCHEMA = {ROW: pl.UInt32, "table_name": pl.String, "expectation": pl.String, "reason": pl.String}

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
    gx_results: dict = field(default_factory=dict)


def expectation(kind: str, severity: str, reason: str | None = None, **kwargs):
    """A GX expectation of class `kind` tagged with its severity and, optionally, the reason a row fails it."""
    import great_expectations as gx

    meta = {"severity": severity} | ({"reason": reason} if reason else {})
    return getattr(gx.expectations, kind)(meta=meta, **kwargs)


def suite_definitions() -> dict[str, list]:
    """Expectations per table; `$PARAMETER`s are filled per run with cross-table facts."""
    critical, warning = "critical", "warning"

    def keys(column: str) -> list:
        return [
            expectation("ExpectColumnValuesToNotBeNull", critical, column=column),
            expectation("ExpectColumnValuesToBeUnique", critical, column=column),
        ]

    def in_param(column: str, param: str, severity: str, reason: str) -> object:
        return expectation(
            "ExpectColumnValuesToBeInSet", severity, reason, column=column, value_set={"$PARAMETER": param}
        )

    def references(table: str) -> list:
        return [
            expectation(
                "ExpectColumnValuesToBeInSet",
                critical,
                column=reference_column(column, parent),
                value_set=[True],
                description=f"every {column} is found in {parent}.{key}",
            )
            for column, parent, key in REFERENCES[table]
        ]

    def plausible_date(column: str) -> object:
        return expectation(
            "ExpectColumnValuesToBeBetween",
            warning,
            f"{column} is before {EARLIEST_DATE:%Y} or in the future",
            column=column,
            min_value={"$PARAMETER": "earliest_date"},
            max_value={"$PARAMETER": "today"},
        )

    return {
        "articles": [
            *keys("article_id"),
            expectation("ExpectColumnValuesToNotBeNull", critical, column="story_id"),
            expectation("ExpectColumnValuesToNotBeNull", critical, column="content_hash"),
            *references("articles"),
            expectation(
                "ExpectColumnPairValuesAToBeGreaterThanB",
                warning,
                "cleaning made the body longer",
                column_A="raw_chars",
                column_B="clean_chars_net",
                or_equal=True,
                description="raw_chars >= clean_chars, or where the body grew, >= its non-space characters "
                "(cleaning may add spaces where it repairs glued sentences)",
            ),
            expectation(
                "ExpectColumnValuesToBeInSet",
                warning,
                NO_TEXT_LEFT,
                column="body_has_text",
                value_set=[True],
                description="the body is not null and not blank",
            ),
            expectation(
                "ExpectColumnValuesToBeInSet",
                warning,
                "residual boilerplate in body (icon-font run or player timestamps)",
                column="body_without_boilerplate",
                value_set=[True],
                description=f"the body does not match the regex {RESIDUAL_BOILERPLATE}",
            ),
            plausible_date("published_date"),
            expectation(
                "ExpectTableRowCountToEqual",
                critical,
                value={"$PARAMETER": "expected_articles"},
                description="the warehouse holds every article the ingest log says was read "
                "(counted over the checked rows: prior articles not checked again are counted out)",
            ),
        ],
        "stories": [
            *keys("story_id"),
            expectation("ExpectColumnValuesToBeBetween", critical, column="n_articles", min_value=1),
            *references("stories"),
        ],
        "events": [
            *keys("event_id"),
            expectation("ExpectColumnValuesToBeInSet", critical, column="event_type", value_set=list(PLOVER_TYPES)),
            *references("events"),
            in_param("source_code", "actor_codes", warning, "source_code is not in the actor gazetteer"),
            in_param("target_code", "actor_codes", warning, "target_code is not in the actor gazetteer"),
            expectation(
                "ExpectColumnValuesToBeBetween",
                warning,
                "confidence outside [0, 1]",
                column="confidence",
                min_value=0,
                max_value=1,
            ),
            expectation("ExpectColumnValuesToBeBetween", critical, column="n_articles", min_value=1),
            plausible_date("event_date"),
        ],
        "event_mentions": [
            expectation("ExpectColumnValuesToNotBeNull", critical, column="event_id"),
            *references("event_mentions"),
            expectation(
                "ExpectColumnPairValuesAToBeGreaterThanB",
                warning,
                "event dated after its article",
                column_A="article_next_day",
                column_B="event_date",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                description="event_date is at most a day after its article's published_date (a dateline's "
                "local date can run a day ahead of the publication date)",
            ),
        ],
        "quotes": [
            *keys("quote_id"),
            *references("quotes"),
            in_param("speaker_code", "actor_codes", warning, "speaker_code is not in the actor gazetteer"),
            expectation("ExpectColumnValuesToNotBeNull", warning, "empty quote", column="quote"),
        ],
        "boilerplate": [
            *references("boilerplate"),
            expectation("ExpectColumnValuesToBeBetween", critical, column="char_start", min_value=0),
            expectation(
                "ExpectColumnPairValuesAToBeGreaterThanB",
                critical,
                column_A="char_end",
                column_B="char_start",
                or_equal=True,
            ),
        ],
        "ingest_log": [
            expectation("ExpectColumnValuesToNotBeNull", critical, column="source_file"),
            expectation("ExpectColumnValuesToBeInSet", critical, column="status", value_set=list(INGEST_STATUSES)),
            expectation("ExpectColumnValuesToBeBetween", critical, column="n_articles", min_value=0),
            expectation(
                "ExpectColumnValuesToNotBeNull",
                critical,
                column="reason",
                row_condition='status != "ok"',
                condition_parser="pandas",
            ),
            expectation(
                "ExpectColumnValuesToBeInSet",
                critical,
                column="n_articles",
                value_set=[0],
                row_condition='status != "ok"',
                condition_parser="pandas",
            ),
            expectation(
                "ExpectCompoundColumnsToBeUnique", critical, column_list=["run_id", "source_file", "source_line"]
            ),
        ],
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
            raise RuntimeError(
                f"expectation suite '{table}' in {context_dir} is out of date with "
                "tasks/validate.py: run `make suites` and commit expectations/"
            )
        if not current:
            context.suites.add_or_update(suite)
        asset = next((a for a in source.assets if a.name == table), None) or source.add_dataframe_asset(table)
        batch = next(
            (b for b in asset.batch_definitions if b.name == "whole"), None
        ) or asset.add_batch_definition_whole_dataframe("whole")
        if table not in stored_definitions:
            context.validation_definitions.add(
                gx.ValidationDefinition(name=table, data=batch, suite=context.suites.get(table))
            )
    return context


@lru_cache(maxsize=4)
def validation_definitions(context_dir: Path) -> dict:
    """Per table, its validation definition (committed suite + batch definition) in the GX file context: read and
    checked against the code once per process."""
    context = gx_context(context_dir)
    return {table: context.validation_definitions.get(table) for table in suite_definitions()}


# Per expectation object, its GX configuration while `reused_configurations` is active (None: not active).
CONFIGURATIONS: ContextVar[dict | None] = ContextVar("gx_configurations", default=None)


@lru_cache(maxsize=1)
def cache_expectation_configurations() -> None:
    """Let GX's `Expectation.configuration` build once per expectation object while `CONFIGURATIONS` holds a cache.

    GX 1.24 builds it anew (a pydantic `dict()` and a new object) on every read, and validating one expectation
    reads it about ten times: 40% of validation time at a few thousand rows.
    """
    from great_expectations.expectations.expectation import Expectation

    build = Expectation.configuration.fget

    def configuration(self):
        cache = CONFIGURATIONS.get()
        if cache is None:
            return build(self)
        if id(self) not in cache:
            cache[id(self)] = (self, build(self))  # holding `self` keeps its id from being reused meanwhile
        return cache[id(self)][1]

    Expectation.configuration = property(configuration)


@contextlib.contextmanager
def reused_configurations() -> Iterator[None]:
    """Within this block each GX expectation builds its configuration once (validation does not change them)."""
    cache_expectation_configurations()
    token = CONFIGURATIONS.set({})
    try:
        yield
    finally:
        CONFIGURATIONS.reset(token)


def run_suite(definition, batch, parameters: dict, gx_run):
    """Validate a pandas `batch` against a validation definition's suite, as `ValidationDefinition.run` does but
    without writing the result into the GX project. Every expectation runs with BASIC results (counts and observed
    values); those that failed run again with COMPLETE ones, which list every failing row's index."""
    from great_expectations.constants import DATAFRAME_REPLACEMENT_STR
    from great_expectations.validator.v1_validator import Validator

    validator = Validator(
        batch_definition=definition.batch_definition,
        batch_parameters={"dataframe": batch},
        result_format={"result_format": "BASIC"},
    )
    with reused_configurations():
        result = validator.validate_expectation_suite(definition.suite, parameters)
    validator.result_format = {"result_format": "COMPLETE"}
    expectations = {e.id: e for e in definition.suite.expectations}
    for i, check in enumerate(result.results):
        if not check.success:
            with reused_configurations():
                result.results[i] = validator.validate_expectation(expectations[check.expectation_config.id],
                                                                   parameters)
    result.meta.update(
        validation_id=definition.id,
        checkpoint_id=None,
        run_id=gx_run,
        validation_time=gx_run.run_time,
        batch_parameters={"dataframe": DATAFRAME_REPLACEMENT_STR},
    )
    return result


def suite_signature(suite) -> list[dict]:
    """A suite's expectations without their generated ids, for change detection."""
    return [
        {k: v for k, v in e.items() if k not in ("id", "rendered_content")}
        for e in suite.to_json_dict()["expectations"]
    ]


def reference_column(column: str, parent: str) -> str:
    """The derived column telling whether `column` holds a key of `parent` (null where `column` is null)."""
    return f"{column}_in_{parent}"


def reference_flag(frame: pl.DataFrame, column: str, keys: pl.Series) -> pl.Expr:
    """Whether `column` of `frame` holds one of `keys` (null where it is null). Keys more numerous than the frame's
    rows are first cut to those the column holds, so a few rows are not checked against a million keys by hashing
    every key."""
    if keys.len() > frame.height:
        keys = keys.filter(keys.is_in(frame[column].drop_nulls().unique().implode()))
    return pl.when(pl.col(column).is_null()).then(None).otherwise(pl.col(column).is_in(keys.implode()))


def with_reference_flags(table: str, tables: dict[str, pl.DataFrame], frame: pl.DataFrame,
                         skip_parents: Collection[str] = ()) -> pl.DataFrame:
    """`frame` plus one `<column>_in_<parent>` flag per reference its suite checks, but those into `skip_parents`
    and those `frame` already has."""
    return frame.with_columns(reference_flag(frame, column, tables[parent][key]).alias(reference_column(column, parent))
                              for column, parent, key in REFERENCES.get(table, [])
                              if parent not in skip_parents and reference_column(column, parent) not in frame.columns)


def with_derived_columns(table: str, tables: dict[str, pl.DataFrame], frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` plus the computed columns its suite checks: article text checks (regexes run here, so the bodies
    never go to pandas; whitespace is counted only in the few bodies cleaning made longer) and, for a mention, the
    day after its article's date."""
    if table == "articles":
        grown = frame.filter(pl.col("clean_chars") > pl.col("raw_chars")).select(
            ROW, clean_chars_net=pl.col("body").str.len_chars() - pl.col("body").str.count_matches(r"\s")
        )
        return frame.with_columns(
            clean_chars_net=pl.col("clean_chars"),
            body_has_text=pl.col("body").str.contains(r"\S").fill_null(False),
            body_without_boilerplate=~pl.col("body").str.contains(RESIDUAL_BOILERPLATE),
        ).update(grown, on=ROW)
    if table == "event_mentions":
        dates = (
            tables["articles"]
            .filter(pl.col("article_id").is_in(frame["article_id"].drop_nulls().unique().implode()))
            .select("article_id", article_next_day=pl.col("published_date").dt.offset_by("1d"))
            .unique("article_id")
        )
        return frame.join(dates, on="article_id", how="left", maintain_order="left")
    return frame


def rows_to_check(table: str, tables: dict[str, pl.DataFrame], frame: pl.DataFrame, expectations: list,
                  loaded: dict[str, int]) -> pl.Series:
    """Which rows of `frame` (`table` with `ROW`, and flags of its references into tables not in `loaded`) GX checks
    when earlier runs loaded some (`loaded`: table -> leading rows they loaded, and so validated): the rows after
    those, derived rows whose children changed (`CHANGED_WITH`), and any row breaking a whole-table rule.

    A row validated before can break one only through this run: a key it shares with a new row (looked for among
    the new rows' keys), or a reference to a rebuilt table that lost the key. A table in `loaded` keeps its loaded
    rows, so references into it stay whole and are not looked up."""
    if table in CHANGED_WITH:
        child, key = CHANGED_WITH[table]
        changed = pl.col(key).is_in(tables[child][key].slice(loaded.get(child, 0)).implode())
    else:
        changed = pl.col(ROW) >= loaded.get(table, 0)
    broken = [~pl.col(reference_column(c, parent)).fill_null(True)  # flagged over every row by `gx_batch`
              for c, parent, _ in REFERENCES.get(table, []) if parent not in loaded]
    for e in expectations:
        kwargs = e.configuration.kwargs
        if e.expectation_type == "expect_column_values_to_be_unique":
            broken.append(pl.col(ROW).is_in(shared_keys(frame, [kwargs["column"]], loaded.get(table)).implode()))
        elif e.expectation_type == "expect_compound_columns_to_be_unique":
            broken.append(pl.col(ROW).is_in(shared_keys(frame, kwargs["column_list"], loaded.get(table)).implode()))
    return frame.select(pl.any_horizontal(changed, *broken)).to_series()


def shared_keys(frame: pl.DataFrame, columns: list[str], first_new: int | None) -> pl.Series:
    """`ROW` of the rows of `frame` whose key (`columns`) another row also has. With `first_new` (rows before it
    were unique among themselves) only the keys of the rows from it on are looked for."""
    if first_new is not None:
        new_keys = frame.filter(pl.col(ROW) >= first_new).select(columns).unique()
        frame = frame.join(new_keys, on=columns, how="semi", nulls_equal=True)
    return frame.filter(pl.struct(columns).is_duplicated())[ROW]


def suite_columns(expectations: list) -> list[str]:
    """The columns a suite's expectations may read: the checked ones and every word of a row condition (the caller
    keeps those that name a column)."""
    columns: dict[str, None] = {}
    for e in expectations:
        kwargs = e.configuration.kwargs
        named = checked_columns(kwargs).split(",") + re.findall(r"\w+", str(kwargs.get("row_condition") or ""))
        columns.update(dict.fromkeys(c for c in named if c))
    return list(columns)


def gx_batch(table: str, tables: dict[str, pl.DataFrame], expectations: list, loaded: dict[str, int] | None):
    """The pandas frame GX checks for `table`: the rows to check, only the columns the suite reads, indexed by
    each row's position in the whole table."""
    frame = tables[table].with_row_index(ROW)
    if loaded:  # references into tables this run rebuilt are flagged over every row (a loaded one can break one)
        frame = with_reference_flags(table, tables, frame, skip_parents=loaded)
        frame = frame.filter(rows_to_check(table, tables, frame, expectations, loaded))
    frame = with_derived_columns(table, tables, with_reference_flags(table, tables, frame))
    columns = [c for c in suite_columns(expectations) if c in frame.columns]
    bounded = [e.configuration.kwargs["column"] for e in expectations if e.expectation_type == BETWEEN]
    batch = with_nanosecond_dates(frame.select(columns), bounded).to_pandas()
    batch.index = frame[ROW].to_numpy()
    return batch


def with_nanosecond_dates(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """`frame` with those of `columns` that are dates as nanosecond datetimes where all their values fit that unit's
    range: GX checks such pandas columns against bounds vectorised, and dates of another unit one value at a time
    in Python (a column holding a date out of that range is left so, and checked the slow way)."""
    low, high = NANOSECOND_DATES
    fits = [
        c
        for c in columns
        if frame.schema.get(c) == pl.Date
        and (frame[c].null_count() == frame.height or low <= frame[c].min() <= frame[c].max() < high)
    ]
    return frame.with_columns(pl.col(fits).cast(pl.Datetime("ns")))


def run_parameters(actor_codes: list[str], expected_articles: int) -> dict:
    """Facts from outside the tables that the suites check against."""
    return {
        "actor_codes": actor_codes,
        "expected_articles": expected_articles,
        "earliest_date": EARLIEST_DATE,
        "today": datetime.combine(date.today(), datetime.min.time()),
    }


def expected_article_count(prior_articles: pl.DataFrame | None, ingest_log: pl.DataFrame) -> int:
    """Articles the warehouse should hold after this run: the prior ones plus those the ingest log says were read."""
    return (prior_articles.height if prior_articles is not None else 0) + int(ingest_log["n_articles"].sum())


def checked_columns(kwargs: dict) -> str:
    """The column(s) an expectation checks, comma-separated ('' for table-level ones)."""
    if kwargs.get("column"):
        return kwargs["column"]
    return ",".join(kwargs.get("column_list") or filter(None, [kwargs.get("column_A"), kwargs.get("column_B")]))


def validate_tables(
    tables: dict[str, pl.DataFrame],
    run_id: str,
    context_dir: str | Path,
    actor_codes: list[str],
    expected_articles: int,
    loaded: dict[str, int] | None = None,
) -> Validated:
    """Run every suite; collect dq_results, quarantine rows failing warnings, report failed criticals.

    `loaded` maps a table to how many of its leading rows earlier runs loaded (and so validated): those are not
    checked again unless they break a whole-table rule (see `rows_to_check`). None or empty checks every row.
    """
    from great_expectations.core.run_identifier import RunIdentifier

    checked_at = datetime.now(UTC).replace(microsecond=0)
    gx_run = RunIdentifier(run_name=run_id, run_time=checked_at)
    dq_rows, failing, critical_failures, gx_results = [], [], [], {}
    for table, definition in validation_definitions(Path(context_dir).resolve()).items():
        batch = gx_batch(table, tables, definition.suite.expectations, loaded)
        not_checked = tables[table].height - len(batch)
        parameters = run_parameters(actor_codes, expected_articles - not_checked)
        result = run_suite(definition, batch, parameters, gx_run)
        del batch
        gx_results[table] = result
        for check in result.results:
            config = check.expectation_config
            column = checked_columns(config.kwargs)
            severity = config.meta.get("severity", "critical")
            unexpected = check.result.get("unexpected_count")
            dq_rows.append(
                {
                    "run_id": run_id,
                    "table_name": table,
                    "expectation": config.type,
                    "column": column,
                    "severity": severity,
                    "success": bool(check.success),
                    "unexpected_count": unexpected if unexpected is not None else int(not check.success),
                    "checked_at": checked_at,
                }
            )
            if check.success:
                continue
            if severity == "critical":
                critical_failures.append(
                    f"{table}.{column or '*'}: {config.type} failed "
                    f"({unexpected if unexpected is not None else 'table-level'} unexpected)"
                )
                continue
            failing.append(
                pl.DataFrame(
                    {ROW: check.result.get("unexpected_index_list") or []}, schema={ROW: pl.UInt32}
                ).with_columns(
                    table_name=pl.lit(table),
                    expectation=pl.lit(config.type),
                    reason=pl.lit(config.meta.get("reason") or f"{config.type} failed on {column}"),
                )
            )
    failing_rows = pl.concat(failing) if failing else pl.DataFrame(schema=FAILING_SCHEMA)
    quarantine, kept = quarantine_rows(tables, failing_rows, run_id)
    return Validated(kept, quarantine, pl.DataFrame(dq_rows, schema=DQ_SCHEMA), critical_failures, gx_results)


def quarantine_rows(
    tables: dict[str, pl.DataFrame], failing: pl.DataFrame, run_id: str
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Move failing rows (`failing`: table_name, row position in `tables`, expectation, reason) and rows that
    depend on them (see DEPENDENTS, EMPTIED_PARENTS) out of their tables into quarantine records."""
    reasons = failing.group_by("table_name", ROW, maintain_order=True).agg(
        pl.col("expectation").str.join("; "), pl.col("reason").str.join("; ")
    )
    kept = {name: frame.with_row_index(ROW) for name, frame in tables.items()}  # positions as GX reported them
    records = []
    for table in tables:
        bad = reasons.filter(pl.col("table_name") == table).drop("table_name")
        if bad.is_empty():
            continue
        moved = kept[table].join(bad, on=ROW, how="inner").sort(ROW)
        records.append(quarantine_records(moved, table, run_id))
        kept[table] = kept[table].filter(~pl.col(ROW).is_in(bad[ROW].implode()))
        gone = moved[KEYS[table]]
        for child, key in DEPENDENTS.get(table, []):
            is_orphan = pl.col(key).is_in(gone.implode()).fill_null(False)  # an original's duplicate_of is null
            reason = (f"its original ({key}) was quarantined" if child == table
                      else f"its {table} row (same {key}) was quarantined")
            orphans = kept[child].filter(is_orphan)
            records.append(quarantine_records(
                orphans.with_columns(expectation=pl.lit("parent_quarantined"), reason=pl.lit(reason)), child, run_id))
            kept[child] = kept[child].filter(~is_orphan)
            if child == table:
                gone = pl.concat([gone, orphans[KEYS[table]]])
    for parent, child, key in EMPTIED_PARENTS:
        if kept[child].height == tables[child].height:
            continue
        emptied = kept[parent].filter(
            pl.col(key).is_in(tables[child][key].implode()) & ~pl.col(key).is_in(kept[child][key].implode())
        )
        records.append(
            quarantine_records(
                emptied.with_columns(
                    expectation=pl.lit("children_quarantined"),
                    reason=pl.lit(f"all its {child} rows were quarantined"),
                ),
                parent,
                run_id,
            )
        )
        kept[parent] = kept[parent].filter(~pl.col(key).is_in(emptied[key].implode()))
    return pl.concat([pl.DataFrame(schema=QUARANTINE_SCHEMA), *records]), {
        name: frame.drop(ROW) for name, frame in kept.items()}


def quarantine_records(rows: pl.DataFrame, table: str, run_id: str) -> pl.DataFrame:
    """Quarantine records for `rows` (a table's rows plus `expectation` and `reason` columns): which checks failed,
    why, and the whole row as JSON."""
    columns = [c for c in rows.columns if c not in ("expectation", "reason", ROW)]
    return rows.select(
        run_id=pl.lit(run_id, pl.String),
        table_name=pl.lit(table, pl.String),
        row_key=pl.col(KEYS[table]).cast(pl.String).fill_null("None"),
        expectation="expectation",
        reason="reason",
        row_json=pl.struct(columns).struct.json_encode(),
    )


def data_docs_index(warehouse_dir: str | Path) -> Path:
    """Where a warehouse's Data Docs site starts."""
    return Path(warehouse_dir).resolve() / DATA_DOCS_DIR / "index.html"


def build_data_docs(gx_results: dict, warehouse_dir: str | Path, context_dir: str | Path) -> Path:
    """Render this run's validation results as GX Data Docs under the warehouse; returns the index page.

    The site is configured at run time in an ephemeral context (nothing machine-specific is written to the
    committed `great_expectations.yml`); its validation results store lives beside it, so the index lists the runs
    of this warehouse and no other: the newest DOCS_RUNS (older ones are archived first, see `archive_old_runs`).
    A run renders only its own validation pages, the suite pages whose
    committed suite changed since they were rendered, and the index (from a summary of the stored results, see
    `tasks.gx_site`); Jinja templates are compiled once per warehouse.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    root = Path(warehouse_dir).resolve()
    site_dir = root / DATA_DOCS_DIR
    defaults = InMemoryStoreBackendDefaults()
    stores = {
        **defaults.stores,
        defaults.validation_results_store_name: {
            "class_name": "ValidationResultsStore",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(root / DOCS_RESULTS_DIR),
            },
        },
    }
    view = {"module_name": "tasks.gx_site", "class_name": "PageView", "template_cache": str(root / TEMPLATE_CACHE)}
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
        "site_index_builder": {
            "module_name": "tasks.gx_site",
            "class_name": "SummaryIndexBuilder",
            "summary_file": str(root / DOCS_SUMMARY),
            "view": {**view, "class_name": "IndexPageView"},
        },
        "site_section_builders": {"expectations": {"view": view}, "validations": {"view": view}, "profiling": "None"},
    }
    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=defaults, stores=stores, data_docs_sites={DOCS_SITE: site}
        ),
    )
    archive_old_runs(root, DOCS_RUNS - 1)
    suites = Path(context_dir) / "gx" / "expectations"
    keys, pages = [], [site_dir / "index.html"]
    for table, expectations in suite_definitions().items():
        context.suites.add(gx.ExpectationSuite(name=table, expectations=expectations))
        suite_page = site_dir / "expectations" / f"{table}.html"
        if not suite_page.is_file() or suite_page.stat().st_mtime < (suites / f"{table}.json").stat().st_mtime:
            keys.append(ExpectationSuiteIdentifier(table))
            pages.append(suite_page)
    for table, result in gx_results.items():
        key = ValidationResultIdentifier(ExpectationSuiteIdentifier(table), result.meta["run_id"], table)
        context.validation_results_store.set(key, result)
        keys.append(key)
        pages.append(site_dir.joinpath("validations", *key.to_tuple()).with_suffix(".html"))
    context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=keys)
    use_vendored_assets(site_dir, Path(context_dir) / VENDOR_DIR, pages)
    return data_docs_index(root)


def archive_old_runs(root: Path, keep: int) -> None:
    """Move the stored validation results and rendered validation pages of all but the newest `keep` runs under the
    warehouse `root` to DOCS_ARCHIVE, where the archived pages still find the site's styles and suite pages. A
    folder already archived (restored into the site since) is merged into its archived copy."""
    results, pages = root / DOCS_RESULTS_DIR, root / DATA_DOCS_DIR / "validations"
    # <suite>/<run name>/<run time>/<table>.json; run times sort in time order
    runs = sorted({(p.name, p.parent.name) for p in results.glob("*/*/*") if p.is_dir()}, reverse=True)
    if len(runs) <= keep:
        return
    archive = root / DOCS_ARCHIVE
    for shared in ("static", "expectations"):
        link = archive / DATA_DOCS_DIR / shared
        if not (link.exists() or link.is_symlink()):
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(Path("..", "..", DATA_DOCS_DIR, shared))
    # pages first: a run whose results are still in the site is archived again next time
    suites = [suite for base in (pages, results) if base.is_dir() for suite in base.iterdir() if suite.is_dir()]
    for run_time, run_name in runs[keep:]:
        for suite in suites:
            folder = suite / run_name / run_time
            if not folder.is_dir():
                continue
            target = archive / folder.relative_to(root)
            if target.exists():
                shutil.copytree(folder, target, dirs_exist_ok=True)
                shutil.rmtree(folder)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(folder, target)
            with contextlib.suppress(OSError):  # other runs' folders under the same run name stay
                folder.parent.rmdir()


def use_vendored_assets(site: Path, vendor: Path, pages: list[Path]) -> None:
    """Point the site's `pages` at vendored copies of the CDN scripts, styles and logo, so they render offline."""
    static = site / "static"
    shutil.copytree(vendor, static / "vendor", dirs_exist_ok=True)
    for page in pages:
        html = page.read_text(encoding="utf-8")
        prefix = Path(os.path.relpath(static, page.parent)).as_posix()

        def local(match: re.Match, prefix: str = prefix) -> str:
            kind, url = match.groups()
            if url not in CDN_ASSETS:
                return match.group(0)
            if CDN_ASSETS[url] is None:
                return ""
            path = f"{prefix}/vendor/{CDN_ASSETS[url]}"
            return f'<script src="{path}"></script>' if kind == "script" else f'<link rel="stylesheet" href="{path}">'

        localised = GX_LOGO_RE.sub(f"{prefix}/images/logo-long.png", CDN_TAG_RE.sub(local, html))
        if localised != html:
            page.write_text(localised, encoding="utf-8")


if __name__ == "__main__":
    from newsetl.settings import load_settings

    gx_context(load_settings().expectations_dir, sync=True)
    print(f"expectation suites synced into {load_settings().expectations_dir}")
