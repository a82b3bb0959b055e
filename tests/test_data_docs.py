"""The Data Docs site renders in a real headless browser (Debian's chromium), offline and without script errors."""

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from newsetl.settings import load_settings
from tasks.validate import build_data_docs
from tests.test_validate import run, tables

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (`make install` installs it when run as root)"
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",
    "--window-size=1280,1600",
]


def chromium(page: Path, tmp_path: Path, *action: str) -> subprocess.CompletedProcess:
    """Open a page in headless chromium with a fresh profile; fails on a crash or any uncaught script error."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    done = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console_errors = [line for line in done.stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line]
    assert console_errors == []
    return done


class Assets(HTMLParser):
    """Scripts, stylesheets and images a page loads."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img") and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.urls.append(attrs["href"])


def loaded_assets(dom: str) -> list[str]:
    parser = Assets()
    parser.feed(dom)
    return parser.urls


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Data Docs for one validation run in which an article is left with no text (a failed warning)."""
    t = tables()
    t["articles"] = t["articles"].with_columns(
        body=pl.when(pl.col("article_id") == "a2").then(pl.lit("")).otherwise(pl.col("body"))
    )
    return build_data_docs(run(t).gx_results, tmp_path_factory.mktemp("wh"), load_settings().expectations_dir)


def test_index_lists_the_run_and_loads_only_local_assets(site, tmp_path):
    dom = chromium(site, tmp_path, "--dump-dom").stdout
    assert "Showing 1 to 7 of 7 rows" in dom  # the JS table was built from the run's results
    for table in ("articles", "stories", "events", "event_mentions", "quotes", "boilerplate", "ingest_log"):
        assert f"validations/{table}/run1/" in dom
    assets = loaded_assets(dom)
    assert assets and not [u for u in assets if re.match(r"(https?:)?//", u)]
    assert [u for u in assets if not (site.parent / u.split("?")[0]).is_file()] == []
    shot = tmp_path / "index.png"
    chromium(site, tmp_path, f"--screenshot={shot}")
    assert shot.stat().st_size > 50_000  # a styled page with its table: an unstyled one is ~20 kB


def test_validation_page_shows_the_failed_expectation(site, tmp_path):
    page = next((site.parent / "validations" / "articles").rglob("*.html"))
    dom = chromium(page, tmp_path, "--dump-dom").stdout
    assert "Failed" in dom and "Unsuccessful Expectations" in dom
    assert "the body is not null and not blank" in dom and "1 unexpected values found" in dom
    assert [u for u in loaded_assets(dom) if not (page.parent / u).resolve().is_file()] == []
    shot = tmp_path / "articles.png"
    chromium(page, tmp_path, f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
