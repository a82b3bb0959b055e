"""Progress for `newsetl run`: renders the flow's stage log records (see flows.news_etl.StageLog).

On a terminal a live table shows every stage (done, running, pending) with its counts and time; otherwise one
line is printed per finished stage. Warnings, and errors such as task retries, are printed as they come.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from flows.news_etl import STAGE_RECORD, STAGES

LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


def describe(counts: dict[str, int], note: str = "") -> str:
    """'5 files, 2 new files [cached]' from a stage record's counts."""
    text = ", ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in counts.items())
    return f"{text} [{note}]" if note else text


class RunProgress(logging.Handler):
    """A logging handler that turns stage records into a progress display and collects them for the summary."""

    def __init__(self, console: Console) -> None:
        super().__init__(level=logging.INFO)
        self.console = console
        self.started = self.mark = time.monotonic()
        self.stages: dict[str, dict] = {}
        self.failed = False
        self.live = Live(self, console=console, refresh_per_second=8) if console.is_terminal else None

    def emit(self, record: logging.LogRecord) -> None:
        """Record a finished stage, or print a warning or error."""
        stage = getattr(record, STAGE_RECORD, None)
        if stage is None:
            # The flow's own failure is not echoed: it reaches the caller as an exception.
            flow_failure = record.levelno >= logging.ERROR and record.name == "prefect.flow_runs"
            if record.levelno >= logging.WARNING and not flow_failure:
                first_line = record.getMessage().splitlines()[0]
                self.console.print(Text.assemble((f"{record.levelname.lower()}: ", "yellow"), first_line),
                                   soft_wrap=True)
            return
        now = time.monotonic()
        if stage["stage"] == "start":  # Prefect start-up and any wait for the writer lock
            stage = {**stage, "seconds": now - self.started}
        self.stages[stage["stage"]] = stage
        self.mark = now
        if self.live is None:
            self.console.print(f"✓ {stage['stage']:<9} {describe(stage['counts'], stage['note'])}  "
                               f"({stage['seconds']:.1f} s)", soft_wrap=True, markup=False, highlight=False)

    def running(self) -> str | None:
        """The first stage not finished yet."""
        return next((s for s in STAGES if s not in self.stages), None)

    def __rich__(self) -> Table:
        table = Table.grid(padding=(0, 2))
        current = self.running()
        for name in STAGES:
            if name in self.stages:
                stage = self.stages[name]
                table.add_row(Text("✓", "green"), name, Text(describe(stage["counts"], stage["note"])),
                              f"{stage['seconds']:.1f} s")
            elif name == current:
                mark = Text("✗", "red") if self.failed else Spinner("dots")
                table.add_row(mark, Text(name, "bold"), "", f"{time.monotonic() - self.mark:.1f} s")
            else:
                table.add_row(Text("·", "dim"), Text(name, "dim"), "", "")
        return table

    @contextlib.contextmanager
    def attached(self) -> Iterator[RunProgress]:
        """Listen to the flow's loggers (and show the live table) for the duration of the block."""
        for name in LOGGERS:
            logging.getLogger(name).addHandler(self)
        if self.live:
            self.live.start()
        try:
            yield self
        except BaseException:
            self.failed = True
            if self.live is None and self.running():
                self.console.print(f"✗ {self.running()}", highlight=False)
            raise
        finally:
            if self.live:
                self.live.stop()
            for name in LOGGERS:
                logging.getLogger(name).removeHandler(self)

    def summary(self, warehouse: str | Path, counts: dict[str, int]) -> Panel:
        """The one-screen end-of-run summary: what this run added and checked, and the warehouse's row counts."""
        ingest = self.stages.get("ingest", {}).get("counts", {})
        checks = self.stages.get("validate", {}).get("counts", {})
        overview = Table.grid(padding=(0, 2))
        overview.add_row("warehouse", Text(str(Path(warehouse).resolve())))
        overview.add_row("input", f"{ingest.get('articles', 0):,} new articles from {ingest.get('new_files', 0):,} "
                                  f"of {ingest.get('files', 0):,} files ({ingest.get('unchanged', 0):,} unchanged, "
                                  f"{ingest.get('rejected', 0):,} rejected)")
        overview.add_row("quality", f"{checks.get('checks_passed', 0):,} checks passed, "
                                    f"{checks.get('checks_failed', 0):,} failed, "
                                    f"{checks.get('rows_quarantined', 0):,} rows quarantined")
        rows = Table("table", "rows", box=None, padding=(0, 2))
        for name, n in counts.items():
            rows.add_row(name, f"{n:,}")
        mode = self.stages.get("start", {}).get("note", "")
        return Panel(Group(overview, Text(""), rows), expand=False,
                     title=f"news_etl {mode} run finished in {time.monotonic() - self.started:.1f} s")
