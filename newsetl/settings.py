"""Configuration: defaults overridable by NEWSETL_* environment variables, read in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The shared development corpora beside the project (read-only; used by bench/ and corpus tests).
SHARED_CORPORA = Path(os.environ.get("NEWSETL_SHARED_CORPORA", PROJECT_ROOT.parent / "shared" / "corpora"))


@dataclass(frozen=True)
class Settings:
    """Where things live, how long a run waits for the writer lock, and how per-batch work is spread."""

    source_dirs: tuple[str, ...] = ("seeds",)
    warehouse_dir: str = "warehouse"
    expectations_dir: Path = field(default_factory=lambda: PROJECT_ROOT / "expectations")
    lock_wait_seconds: float = 0.0
    batch_size: int = 50_000  # at most this many articles per clean/extract task...
    batch_mb: float = 16.0  # ...and at most this many MB of their text, so a task's memory is bounded
    dask_address: str | None = None  # run per-batch tasks on this Dask scheduler ("local": a temporary cluster)
    # batches cleaned or extracted at once without Dask: one more than the cores, so both stay busy while a batch
    # is in a single-threaded step (measured on 2 cores: clean 8-15% and extract about 5% faster than 2 at once)
    local_workers: int = field(default_factory=lambda: (os.cpu_count() or 1) + 1)


def load_settings() -> Settings:
    """Settings from the environment (NEWSETL_SOURCE_DIRS is a colon-separated list)."""
    env = os.environ
    defaults = Settings()
    return Settings(
        source_dirs=tuple(filter(None, env.get("NEWSETL_SOURCE_DIRS", "").split(":"))) or defaults.source_dirs,
        warehouse_dir=env.get("NEWSETL_WAREHOUSE_DIR", defaults.warehouse_dir),
        expectations_dir=Path(env.get("NEWSETL_EXPECTATIONS_DIR", defaults.expectations_dir)),
        lock_wait_seconds=float(env.get("NEWSETL_LOCK_WAIT_SECONDS", defaults.lock_wait_seconds)),
        batch_size=int(env.get("NEWSETL_BATCH_SIZE", defaults.batch_size)),
        batch_mb=float(env.get("NEWSETL_BATCH_MB", defaults.batch_mb)),
        dask_address=env.get("NEWSETL_DASK_ADDRESS") or defaults.dask_address,
        local_workers=int(env.get("NEWSETL_LOCAL_WORKERS", defaults.local_workers)),
    )
