"""The `newsetl` command line: run the flow, query the warehouse, list tables, show the latest DQ report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from newsetl.settings import load_settings

app = typer.Typer(help="newsetl: raw news articles in, a warehouse of political events out.",
                  no_args_is_help=True, add_completion=False)
console = Console()

WarehouseOption = Annotated[str, typer.Option("--warehouse", "-w", help="Warehouse folder.")]


def default_warehouse() -> str:
    """The configured warehouse folder."""
    return load_settings().warehouse_dir


@app.command()
def run(
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="Input folder (repeatable).")] = None,
    warehouse: WarehouseOption = "",
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Rebuild instead of loading only new files.")]
    = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print Prefect's own log lines.")] = False,
) -> None:
    """Run the news_etl flow on the source folders into the warehouse, showing progress per stage.

    Exits 2 if a source folder does not exist (nothing is started) or another run is writing the warehouse (set
    NEWSETL_LOCK_WAIT_SECONDS to wait for it instead) and 1 if critical data-quality checks fail (the warehouse is
    then left as it was).
    """
    settings = load_settings()
    sources = source or list(settings.source_dirs)
    target = warehouse or settings.warehouse_dir
    missing = [str(Path(s).resolve()) for s in sources if not os.path.lexists(s)]
    if missing:
        folders = "source folders" if len(missing) > 1 else "source folder"
        console.print(f"[red]{folders} missing:[/red] {', '.join(missing)}", soft_wrap=True)
        raise typer.Exit(2)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not verbose:  # the progress display replaces Prefect's console log
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    from flows.news_etl import news_etl
    from newsetl.progress import RunProgress
    from tasks.load import WarehouseBusy
    from tasks.validate import DataQualityError

    progress = RunProgress(console)
    try:
        with progress.attached():
            counts = news_etl(source_dir=sources, warehouse_dir=target, full_refresh=full_refresh)
    except WarehouseBusy as err:
        console.print(f"[red]warehouse busy:[/red] {err}", soft_wrap=True)
        raise typer.Exit(2) from None
    except DataQualityError as err:
        console.print(f"[red]run stopped:[/red] {err}", soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(progress.summary(target, counts))


@app.command()
def query(sql: Annotated[str, typer.Argument(help="SQL over the warehouse views.")],
          warehouse: WarehouseOption = "") -> None:
    """Run SQL against the warehouse and print the result."""
    import duckdb

    from tasks.load import connect

    with connect(loaded_warehouse(warehouse)) as con:
        try:
            result = con.execute(sql)
        except duckdb.Error as err:
            console.print(f"[red]query failed:[/red] {err}")
            raise typer.Exit(1) from None
        columns = [d[0] for d in result.description or []]
        rows = result.fetchall()
    print_table(columns, [["" if v is None else str(v) for v in row] for row in rows])


@app.command()
def tables(warehouse: WarehouseOption = "") -> None:
    """List the warehouse tables with their row counts."""
    from tasks.load import connect, table_names

    root = loaded_warehouse(warehouse)
    with connect(root) as con:
        rows = [[t, f"{con.execute(f'SELECT count(*) FROM {t}').fetchone()[0]:,}"] for t in table_names(root)]
    print_table(["table", "rows"], rows, title=f"{Path(root).resolve()}")


@app.command()
def report(warehouse: WarehouseOption = "") -> None:
    """Summarise the latest loaded run: ingest outcomes, expectations, quarantined rows, and the Data Docs page."""
    import polars as pl

    from tasks.load import read_table
    from tasks.validate import data_docs_index

    root = warehouse or default_warehouse()
    dq = read_table(root, "dq_results")
    if dq is None or dq.is_empty():
        exit_no_run(root)
    run_id = dq.sort("checked_at")["run_id"][-1]
    of_run = pl.col("run_id") == run_id
    dq = dq.filter(of_run)
    log = read_table(root, "ingest_log").filter(of_run)
    quarantine = read_table(root, "quarantine").filter(of_run)
    console.print(f"Run [bold]{run_id}[/bold] checked at {dq['checked_at'].max():%Y-%m-%d %H:%M:%S} UTC")
    files = log.filter(pl.col("source_line").is_null())
    print_table(["status", "files", "articles", "lines rejected"], [
        [status, str(group.filter(pl.col("source_line").is_null()).height),
         str(group["n_articles"].sum()), str(group["source_line"].is_not_null().sum())]
        for (status,), group in sorted(log.group_by("status"))], title=f"Ingest: {files.height} files")
    problems = log.filter(pl.col("status") != "ok").sort("source_file", "source_line", nulls_last=False)
    if problems.height:
        print_table(["file", "line", "status", "reason"], [
            [r["source_file"], "" if r["source_line"] is None else str(r["source_line"]), r["status"], r["reason"]]
            for r in problems.iter_rows(named=True)], title="Inputs not loaded")
    failed = dq.filter(~pl.col("success"))
    console.print(f"Expectations: {dq.height - failed.height} passed, {failed.height} failed")
    if failed.height:
        print_table(["table", "column", "expectation", "severity", "unexpected"], [
            [r["table_name"], r["column"], r["expectation"], r["severity"], str(r["unexpected_count"])]
            for r in failed.iter_rows(named=True)], title="Failed expectations")
    console.print(f"Quarantined rows: {quarantine.height}")
    if quarantine.height:
        by_reason = quarantine.group_by("table_name", "reason").len().sort("table_name", "reason")
        print_table(["table", "reason", "rows"], [
            [r["table_name"], r["reason"], str(r["len"])] for r in by_reason.iter_rows(named=True)], title="Quarantine")
    docs = data_docs_index(root)
    console.print(f"Data Docs: {docs}" + ("" if docs.is_file() else " (not built yet)"), soft_wrap=True)


def loaded_warehouse(warehouse: str) -> str:
    """The warehouse folder (`warehouse` or the configured one), if a run has loaded it; else exit_no_run."""
    from tasks.load import current_snapshot

    root = warehouse or default_warehouse()
    if current_snapshot(root) is None:
        exit_no_run(root)
    return root


def exit_no_run(root: str) -> NoReturn:
    """Say in one line that no run has loaded the warehouse `root` yet and what to do; exit 1."""
    console.print(f"[red]no run recorded in {Path(root).resolve()}:[/red] run `newsetl run` first", soft_wrap=True)
    raise typer.Exit(1)


def print_table(columns: list[str], rows: list[list[str]], title: str | None = None) -> None:
    """Print rows as a rich table."""
    table = Table(*columns, title=title, show_lines=False)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def main() -> None:
    """Console-script entry point."""
    app()
