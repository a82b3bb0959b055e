"""Configuration: defaults overridable by NEWSETL_* environment variables, read in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Settings:
    """Where things live and how long a run waits for the warehouse's writer lock."""

    source_dirs: tuple[str, ...] = ("seeds",)
    warehouse_dir: str = "warehouse"
    expectations_dir: Path = field(default_factory=lambda: PROJECT_ROOT / "expectations")
    lock_wait_seconds: float = 0.0


def load_settings() -> Settings:
    """Settings from the environment (NEWSETL_SOURCE_DIRS is a colon-separated list)."""
    env = os.environ
    defaults = Settings()
    return Settings(
        source_dirs=tuple(filter(None, env.get("NEWSETL_SOURCE_DIRS", "").split(":"))) or defaults.source_dirs,
        warehouse_dir=env.get("NEWSETL_WAREHOUSE_DIR", defaults.warehouse_dir),
        expectations_dir=Path(env.get("NEWSETL_EXPECTATIONS_DIR", defaults.expectations_dir)),
        lock_wait_seconds=float(env.get("NEWSETL_LOCK_WAIT_SECONDS", defaults.lock_wait_seconds)),
    )
