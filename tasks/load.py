"""Load stage and the warehouse's only IO: snapshot Parquet tables, swap them in atomically, DuckDB views.

Layout of a warehouse folder:

    news.duckdb                 one view per table, reading current/<table>/*.parquet
    current -> snapshots/<id>   symlink, swapped atomically when a run commits
    snapshots/<id>/<table>/part-<run>.parquet   (tables named `_...` are pipeline state: no view)
    .writer.lock                held by the one run allowed to write

A table is a folder of Parquet parts. Appending hard-links the previous snapshot's parts and adds one, so an
incremental run writes only what is new; readers always see one whole snapshot. Once a table ends in MERGE_PARTS
parts smaller than a row group, they are written again with the new rows as one part: the parts a run or a query
opens stay few (with one more part per run, reading the prior tables took 0.2 s after 50 runs, 1.2 s after 400).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

CATALOG = "news.duckdb"
CURRENT = "current"
SNAPSHOTS = "snapshots"
LOCK_FILE = ".writer.lock"
KEEP_SNAPSHOTS = 3
# Rows per Parquet row group. polars' default (512² rows) buffers so much while it writes that the load stage set
# the 1M run's peak: writing 1M articles took +309 MB and 3.1 s with it, +95 MB and 2.4 s with 64k rows, for a
# file 15% larger (233 MB against 202; 16k rows: +23 MB, 23% larger).
ROW_GROUP_ROWS = 65_536
READ_THREADS = 4  # tables read at once (on 2 cores a 100k warehouse's tables: 0.19 s one by one, 0.11 s so)
# Tables smaller than this are written WRITE_THREADS at once, larger ones one at a time (each buffers ~100 MB as
# it writes at 1M articles).
WRITE_THREADS = 4
SMALL_WRITE_BYTES = 64 * 2**20
MERGE_PARTS = 8  # trailing parts smaller than ROW_GROUP_ROWS that an append merges into its new part


class WarehouseBusy(RuntimeError):
    """Another run holds the warehouse's writer lock."""


@contextlib.contextmanager
def writer_lock(warehouse_dir: str | Path, wait_seconds: float = 0.0,
                on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the warehouse's single-writer lock, waiting up to `wait_seconds`, else raise WarehouseBusy.

    `on_wait` is called once, with a message naming the holder, if the lock is busy and the run will wait.
    """
    root = Path(warehouse_dir)
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK_FILE).open("a+") as handle:
        deadline = time.monotonic() + wait_seconds
        announced = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(
                        f"warehouse {root} is being written by {holder}; try again when that run ends"
                        " (or set NEWSETL_LOCK_WAIT_SECONDS to wait)"
                    ) from None
                if on_wait and not announced:
                    on_wait(f"warehouse {root} is being written by {holder}; waiting up to {wait_seconds:g} s")
                    announced = True
                time.sleep(0.5)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


def current_snapshot(warehouse_dir: str | Path) -> Path | None:
    """The committed snapshot folder, or None for an empty warehouse."""
    link = Path(warehouse_dir) / CURRENT
    return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None


def table_names(warehouse_dir: str | Path) -> list[str]:
    """Tables of the committed snapshot (without the pipeline's internal state, whose names start with '_')."""
    snap = current_snapshot(warehouse_dir)
    return sorted(p.name for p in snap.iterdir() if p.is_dir() and not p.name.startswith("_")) if snap else []


def read_table(warehouse_dir: str | Path, name: str) -> pl.DataFrame | None:
    """A committed table as a DataFrame, or None when the warehouse does not hold it."""
    snap = current_snapshot(warehouse_dir)
    if snap is None or not (snap / name).is_dir():
        return None
    parts = sorted((snap / name).glob("*.parquet"))
    return pl.concat([pl.read_parquet(p) for p in parts], how="diagonal_relaxed")


def read_tables(warehouse_dir: str | Path, names: tuple[str, ...]) -> dict[str, pl.DataFrame | None]:
    """Several committed tables (None for those the warehouse does not hold), read in parallel threads: polars reads
    without holding Python's lock, and one table's file rarely keeps both cores busy."""
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        return dict(zip(names, pool.map(lambda name: read_table(warehouse_dir, name), names), strict=True))


def write_snapshot(warehouse_dir: str | Path, run_id: str, replace: dict[str, pl.DataFrame],
                   append: dict[str, pl.DataFrame] | None = None) -> Path:
    """Commit a new snapshot: `replace` tables are rewritten, `append` tables gain one part, the rest carry over.

    Everything is written to a staging folder first; the `current` symlink is then swapped in one rename, so a
    crash at any point leaves the previous snapshot whole.
    """
    root = Path(warehouse_dir).resolve()
    snapshots = root / SNAPSHOTS
    snapshots.mkdir(parents=True, exist_ok=True)
    for leftover in snapshots.glob("*.staging"):
        shutil.rmtree(leftover, ignore_errors=True)
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{run_id[:8]}"
    staging = snapshots / f"{name}.staging"
    staging.mkdir()
    previous = current_snapshot(root)
    append = append or {}
    carried = {p.name for p in previous.iterdir() if p.is_dir()} if previous else set()
    targets, writes = [], []
    for table in sorted(carried | set(replace) | set(append)):
        target = staging / table
        target.mkdir()
        targets.append(target)
        kept = []
        if table not in replace and previous and (previous / table).is_dir():
            kept = sorted((previous / table).glob("*.parquet"))
        frame = replace.get(table, append.get(table))
        if table in append and frame.height:
            merged = small_tail(kept)
            if len(merged) >= MERGE_PARTS:
                frame = pl.concat([*map(pl.read_parquet, merged), frame], how="diagonal_relaxed")
                kept = kept[: len(kept) - len(merged)]
        for part in kept:
            os.link(part, target / part.name)
        if frame is not None and (table in replace or frame.height or not kept):
            writes.append((frame, target / f"part-{name}.parquet"))
    with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:  # polars writes and fsync release Python's lock
        small = [pool.submit(write_parquet_durably, frame, path) for frame, path in writes
                 if frame.estimated_size() < SMALL_WRITE_BYTES]
        for frame, path in writes:
            if frame.estimated_size() >= SMALL_WRITE_BYTES:
                write_parquet_durably(frame, path)
        for future in small:
            future.result()
        list(pool.map(fsync_dir, [*targets, staging]))
    final = snapshots / name
    staging.rename(final)
    fsync_dir(snapshots)
    swap_current(root, final)
    prune_snapshots(snapshots, keep=final)
    return final


def small_tail(parts: list[Path]) -> list[Path]:
    """The last of a table's `parts` (in order) that each hold fewer rows than a row group."""
    tail = len(parts)
    while tail and pl.scan_parquet(parts[tail - 1]).select(pl.len()).collect().item() < ROW_GROUP_ROWS:
        tail -= 1
    return parts[tail:]


def write_parquet_durably(frame: pl.DataFrame, path: Path) -> None:
    """Write a Parquet file and flush it to disk before the snapshot can be committed."""
    frame.write_parquet(path, compression="zstd", statistics=True, row_group_size=ROW_GROUP_ROWS)
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Make a folder's renames durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def swap_current(root: Path, snapshot: Path) -> None:
    """Point `current` at `snapshot` atomically (a relative link, so the warehouse can be moved)."""
    tmp_link = root / f".{CURRENT}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    tmp_link.symlink_to(snapshot.relative_to(root))
    os.replace(tmp_link, root / CURRENT)
    fsync_dir(root)


def prune_snapshots(snapshots: Path, keep: Path) -> None:
    """Delete all but the newest few snapshots (readers of the current one are never affected)."""
    done = sorted(p for p in snapshots.iterdir() if p.is_dir() and not p.name.endswith(".staging"))
    for old in done[:-KEEP_SNAPSHOTS]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def view_sql(warehouse_dir: str | Path, table: str) -> str:
    """The view over one table: every Parquet part of the current snapshot, by absolute path."""
    pattern = (Path(warehouse_dir).resolve() / CURRENT / table / "*.parquet").as_posix().replace("'", "''")
    return f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{pattern}', union_by_name = true)"


def refresh_catalog(warehouse_dir: str | Path) -> str | None:
    """(Re)create the views in news.duckdb; returns a warning instead of failing if the file is locked."""
    tables = table_names(warehouse_dir)
    try:
        with duckdb.connect(str(Path(warehouse_dir) / CATALOG)) as con:
            existing = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
            for stale in existing - set(tables):
                con.execute(f"DROP VIEW {stale}")
            for table in tables:
                con.execute(view_sql(warehouse_dir, table))
    except duckdb.IOException as err:
        return f"{CATALOG} is open in another process; its views were not refreshed ({err})"
    return None


def connect(warehouse_dir: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per table: never locks the warehouse's catalog."""
    if current_snapshot(warehouse_dir) is None:
        raise FileNotFoundError(f"no warehouse at {Path(warehouse_dir).resolve()}: run `newsetl run` first")
    con = duckdb.connect()
    for table in table_names(warehouse_dir):
        con.execute(view_sql(warehouse_dir, table))
    return con
