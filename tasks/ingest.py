"""Ingest stage: find every input file, read its articles, and log each file (and each rejected line)."""

from __future__ import annotations

import codecs
import gc
import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import orjson
import polars as pl

from tasks.ids import stable_id, stable_id_expr

ARTICLE_SUFFIXES = {".txt": "txt", ".html": "html", ".htm": "html", ".jsonl": "jsonl"}
TEXT_FIELDS = ("text", "body", "html")
META_FIELDS = ("title", "url", "outlet", "published")
JSONL_FIELDS = ("id", *META_FIELDS, *TEXT_FIELDS)
NON_BLANK = r"[^\s\x1c-\x1f]"  # a character that Python's str.strip() keeps (it also strips \x1c-\x1f)
MAX_ARTICLE_BYTES = 10_000_000  # per text or HTML file, and per JSONL line
BINARY_SNIFF_BYTES = 8192
CP1252_FALLBACK = "newsetl-cp1252"  # codec error handler: bytes that are not UTF-8 are read as cp1252
META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)
CHARSET_SNIFF_BYTES = 4096
HTML_DOCUMENT = re.compile(r"<(?:html|head|body)\b", re.IGNORECASE)
FLUSH_ROWS = 10_000  # articles gathered as Python strings before they become a polars frame
BULK_JSONL_LINES = 1000  # a JSONL file of fewer lines is read line by line (see `read_jsonl`)
UNCHANGED_BY_TIME = "unchanged since an earlier run (same size and time); not read"
UNCHANGED_BY_HASH = "unchanged since an earlier run; not re-read"
UNCHANGED = (UNCHANGED_BY_TIME, UNCHANGED_BY_HASH)
READ_STATUSES = ("ok", "quarantined")  # a file read through (after an error its earlier content still holds)
REMOVED = "no longer in the source folder; the articles an earlier run loaded from it are withdrawn"
UNLISTED = "folder could not be listed"
REREAD = "read again: it holds exact repeats of articles from a file changed or removed since"
CHANGED_WHILE_READ = "changed while this run read its folder (files repeating it were judged by its content before)"
ORIGIN = ["article_id", "source_file", "source_line"]  # an article's id and where it was read
# the reason of an article already read, in this or an earlier run: the first one's file and ":line" (if any)
REPEAT_REASON = "exact repeat of {}{} (same id and text)"

RAW_SCHEMA = {
    "article_id": pl.String,
    "source_file": pl.String,
    "source_id": pl.String,
    "source_line": pl.Int64,
    "format": pl.String,
    "raw_text": pl.String,
    "meta_title": pl.String,
    "meta_url": pl.String,
    "meta_outlet": pl.String,
    "meta_published": pl.String,
    "ingested_at": pl.Datetime("us", "UTC"),
}
LOG_SCHEMA = {
    "source_file": pl.String,
    "source_line": pl.Int64,
    "status": pl.String,
    "reason": pl.String,
    "repeat_of": pl.String,  # an exact repeat's first copy's file
    "n_articles": pl.Int64,
    "format": pl.String,
    "file_bytes": pl.Int64,
    "file_mtime_ns": pl.Int64,
    "file_hash": pl.String,
    "run_id": pl.String,
    "logged_at": pl.Datetime("us", "UTC"),
}


# The warehouse manifest: per file loaded, its content hash, the run that read it, its size and modification time,
# and the files it holds exact repeats from (see `assemble.manifest`).
MANIFEST_SCHEMA = {"source_file": pl.String, "file_hash": pl.String, "run_id": pl.String, "file_bytes": pl.Int64,
                   "file_mtime_ns": pl.Int64, "repeat_of": pl.List(pl.String)}


class RejectedInput(Exception):
    """A file or line that cannot become an article; the message is the logged reason (and for an exact repeat,
    `repeat_of` the file of its first copy)."""

    def __init__(self, reason: str, repeat_of: str | None = None) -> None:
        super().__init__(reason)
        self.repeat_of = repeat_of


@dataclass
class IngestResult:
    """Rows gathered while reading: articles and log entries."""

    columns: dict[str, list] = field(default_factory=lambda: {name: [] for name in RAW_SCHEMA})
    pieces: list[pl.DataFrame] = field(default_factory=list)
    log: list[dict] = field(default_factory=list)
    seen: dict[str, tuple[str, int | None]] = field(default_factory=dict)

    def claim(self, article_id: str, source_file: str, line: int | None) -> RejectedInput | None:
        """Note an article as read; its rejection if an identical one (same id and text) was read before."""
        if article_id in self.seen:
            first_file, first_line = self.seen[article_id]
            return RejectedInput(REPEAT_REASON.format(first_file, f":{first_line}" if first_line else ""), first_file)
        self.seen[article_id] = (source_file, line)
        return None

    def add(self, row: dict) -> None:
        """Keep an article unless an identical one was already read."""
        if repeat := self.claim(row["article_id"], row["source_file"], row["source_line"]):
            raise repeat
        for name, value in row.items():
            self.columns[name].append(value)

    def add_frame(self, source_file: str, rows: pl.DataFrame) -> list[tuple[int, RejectedInput]]:
        """Keep the articles of one file (in line order) except exact repeats; (line, rejection) of each repeat."""
        ids = rows["article_id"]
        repeated = ~ids.is_first_distinct() | ids.is_in(list(self.seen.keys() & set(ids.to_list())))
        kept = rows.filter(~repeated)
        self.seen.update({article_id: (source_file, line) for article_id, line in kept.select(
            "article_id", "source_line").iter_rows()})
        repeats = [(line, self.claim(article_id, source_file, line))
                   for article_id, line in rows.filter(repeated).select("article_id", "source_line").iter_rows()]
        self.flush()
        self.pieces.append(kept)
        return repeats

    def flush(self, min_rows: int = 1) -> None:
        """Move the articles read so far (if at least `min_rows`) into a frame, so Python holds few strings."""
        if len(self.columns["article_id"]) >= min_rows:
            self.pieces.append(pl.DataFrame(self.columns, schema=RAW_SCHEMA))
            self.columns = {name: [] for name in RAW_SCHEMA}

    def take_pieces(self) -> list[pl.DataFrame]:
        """The frames flushed so far, handed over (no longer held here)."""
        pieces, self.pieces = self.pieces, []
        return pieces

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(raw_articles, ingest_log)."""
        self.flush()
        raw = pl.concat(self.pieces, rechunk=False) if self.pieces else pl.DataFrame(schema=RAW_SCHEMA)
        return raw, pl.DataFrame(self.log, schema=LOG_SCHEMA)


def discover_files(source_dirs: list[str | Path]) -> list[Path]:
    """Every entry under the source folders that is not a folder, recursively and in a stable order, hidden names
    excluded. Linked folders are followed (each real folder once); broken links and other entries that are not
    files are listed too, so that the log reports them."""
    found: list[Path] = []
    for source in source_dirs:
        root = Path(source)
        if not root.is_dir():
            if not os.path.lexists(root):
                raise FileNotFoundError(f"source folder {root} does not exist")
            found.append(root)
            continue
        walked: set[str] = set()

        def unlisted(err: OSError) -> None:
            """A folder that cannot be listed is listed itself, so that the log reports it."""
            found.append(Path(err.filename))

        for folder, dirs, files in os.walk(root, followlinks=True, onerror=unlisted):
            real = os.path.realpath(folder)
            dirs[:] = [] if real in walked else sorted(d for d in dirs if not d.startswith("."))
            if real not in walked:
                walked.add(real)
                found.extend(Path(folder, name) for name in files if not name.startswith("."))
    return sorted(set(found))


def cp1252_bytes(err: UnicodeError) -> tuple[str, int]:
    """Error handler for decoding: the bytes UTF-8 could not decode, read as cp1252 (U+FFFD for the five bytes
    cp1252 leaves undefined). Legacy text decodes whole; in UTF-8 text, one stray byte does not garble the rest."""
    if not isinstance(err, UnicodeDecodeError):
        raise err
    return err.object[err.start : err.end].decode("cp1252", errors="replace"), err.end


codecs.register_error(CP1252_FALLBACK, cp1252_bytes)


def decode_text(data: bytes, sniff_binary: bool = True, declared: str | None = None) -> tuple[str, str | None]:
    """Decode bytes as UTF-8 (a byte-order mark dropped). Text that is not UTF-8 is decoded with the `declared`
    encoding if it has one that fits, else its bytes that are not UTF-8 are read as cp1252; the reason says so.
    With `sniff_binary`, NUL bytes near the start reject the file as binary."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace"), "decoded as UTF-16 (it starts with its byte-order mark)"
    if sniff_binary and b"\x00" in data[:BINARY_SNIFF_BYTES]:
        raise RejectedInput("binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as err:
        where = f"invalid UTF-8 at byte {err.start + len(codecs.BOM_UTF8) * data.startswith(codecs.BOM_UTF8)}"
    if declared:
        try:
            return data.decode(declared), f"{where}; decoded as {declared}, as the file declares"
        except UnicodeDecodeError:
            where = f"{where} and not {declared} as declared"
    return data.decode("utf-8-sig", errors=CP1252_FALLBACK), f"{where}; bytes that are not UTF-8 decoded as cp1252"


def declared_charset(data: bytes) -> str | None:
    """The encoding an HTML page declares in a <meta> tag near its start, if Python knows it."""
    found = META_CHARSET.search(data[:CHARSET_SNIFF_BYTES])
    try:
        return codecs.lookup(found.group(1).decode("ascii")).name if found else None
    except LookupError:
        return None


def printable_path(path: Path) -> str:
    """A path as text; bytes of a file name that are not UTF-8 are shown as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def article_row(source_file: str, source_id: str, source_line: int | None, fmt: str, text: str,
                meta: dict, ingested_at: datetime) -> dict:
    """One raw article row; HTML is turned into text with trafilatura first."""
    if fmt == "html":
        text, meta = html_to_text(text, meta)
    if not text.strip():
        raise RejectedInput("no text: the article is empty" + (" after HTML extraction" if fmt == "html" else ""))
    return {
        "article_id": stable_id(source_id, text),
        "source_file": source_file,
        "source_id": source_id,
        "source_line": source_line,
        "format": fmt,
        "raw_text": text,
        "meta_title": meta.get("title"),
        "meta_url": meta.get("url"),
        "meta_outlet": meta.get("outlet"),
        "meta_published": meta.get("published"),
        "ingested_at": ingested_at,
    }


def html_to_text(html: str, meta: dict) -> tuple[str, dict]:
    """Main text and metadata of an HTML page via trafilatura; given metadata wins over the page's own."""
    import trafilatura

    if not HTML_DOCUMENT.search(html[:CHARSET_SNIFF_BYTES]):  # a fragment, which trafilatura may drop
        html = f"<html><body>{html}</body></html>"
    # Dates come from the page's metadata only: its extensive search takes copyright years and dates in the text.
    doc = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False, favor_recall=True,
                                      date_extraction_params={"extensive_search": False})
    if doc is None or not (doc.text or "").strip():
        return "", meta
    found = {"title": doc.title, "url": doc.url, "outlet": doc.sitename, "published": doc.date}
    return doc.text, {k: meta.get(k) or found[k] for k in found}


def jsonl_meta(record: dict) -> dict:
    """Optional metadata fields of a JSONL record as strings."""
    return {k: (str(record[k]) if record.get(k) not in (None, "") else None) for k in META_FIELDS}


def parse_json_line(line: str):
    """One JSON value: orjson for speed; the standard parser (more lenient, clearer errors) when orjson refuses.
    An object's strings lose unpaired surrogates, which JSON escapes can hold but text cannot."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    try:
        value = json.loads(line)
    except json.JSONDecodeError as err:
        raise RejectedInput(f"invalid JSON: {err.msg} (column {err.colno})") from None
    except (ValueError, RecursionError) as err:  # an integer past Python's digit limit, nesting past its stack
        raise RejectedInput(f"unreadable JSON: {err}") from None
    return {k: without_lone_surrogates(v) for k, v in value.items()} if isinstance(value, dict) else value


def without_lone_surrogates(value):
    """A string with each unpaired UTF-16 surrogate replaced by U+FFFD; any other value as it is."""
    if not isinstance(value, str):
        return value
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def too_large(line: str) -> bool:
    """Whether a JSONL line holds more than MAX_ARTICLE_BYTES of UTF-8."""
    return len(line) > MAX_ARTICLE_BYTES // 4 and len(line.encode("utf-8", "surrogatepass")) > MAX_ARTICLE_BYTES


def jsonl_article(source_file: str, line_no: int, line: str, ingested_at: datetime) -> dict:
    """The raw article row of one JSONL line, or RejectedInput with the reason."""
    record = parse_json_line(line)
    if not isinstance(record, dict):
        raise RejectedInput(f"JSON value is a {type(record).__name__}, not an object")
    field_name = next((f for f in TEXT_FIELDS if isinstance(record.get(f), str) and record[f].strip()), None)
    if field_name is None:
        raise RejectedInput("no text: none of the fields text, body, html holds a non-empty string")
    source_id = str(record["id"]) if record.get("id") not in (None, "") else f"{Path(source_file).name}:{line_no}"
    fmt = "html" if field_name == "html" else "jsonl"
    return article_row(source_file, source_id, line_no, fmt, record[field_name], jsonl_meta(record), ingested_at)


def json_objects(lines: list[str]) -> tuple[list[int], list[dict]]:
    """Line numbers and records of the lines that orjson reads as JSON objects."""
    numbers, records = [], []
    for line_no, line in enumerate(lines, start=1):
        if too_large(line):
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if type(record) is dict:
            numbers.append(line_no)
            records.append(record)
    return numbers, records


def string_fields(numbers: list[int], records: list[dict]) -> pl.DataFrame:
    """`source_line` and the JSONL fields of the records whose fields are all strings or absent (the rest dropped)."""
    schema = {"source_line": pl.Int64} | dict.fromkeys(JSONL_FIELDS, pl.String)
    try:
        return pl.DataFrame({"source_line": numbers} | {k: [r.get(k) for r in records] for k in JSONL_FIELDS},
                            schema=schema, strict=True)
    except TypeError:
        plain = [all(isinstance(r.get(k), str | None) for k in JSONL_FIELDS) for r in records]
        return string_fields([n for n, ok in zip(numbers, plain, strict=True) if ok],
                             [r for r, ok in zip(records, plain, strict=True) if ok])


def plain_jsonl_articles(source_file: str, lines: list[str], ingested_at: datetime) -> pl.DataFrame:
    """Raw article rows, in bulk, of the lines that are JSON objects with string fields and a `text` or `body`.

    Same rows as `jsonl_article` gives them; other lines (HTML, no text, bad JSON, other types) are left out.
    """
    has_text = {k: pl.col(k).str.contains(NON_BLANK) for k in TEXT_FIELDS}
    found = string_fields(*json_objects(lines)).with_columns(
        raw_text=pl.when(has_text["text"]).then("text").when(has_text["body"]).then("body"),
        source_id=pl.when(pl.col("id") != "").then("id")
        .otherwise(pl.format("{}:{}", pl.lit(Path(source_file).name), "source_line")),
        **{f"meta_{k}": pl.when(pl.col(k) != "").then(k) for k in META_FIELDS},
    ).filter(pl.col("raw_text").is_not_null())
    return found.with_columns(
        article_id=stable_id_expr("source_id", "raw_text"),
        source_file=pl.lit(source_file),
        format=pl.lit("jsonl"),
        ingested_at=pl.lit(ingested_at, dtype=RAW_SCHEMA["ingested_at"]),
    ).select(list(RAW_SCHEMA))


def jsonl_lines(text: str) -> list[str]:
    """The lines of a JSONL file, split at \\n only: a JSON string may hold other line separators (U+2028, U+2029,
    U+0085) raw, where `str.splitlines` would cut the line in two, and a \\r (of \\r\\n or alone) is whitespace
    to JSON."""
    return text.split("\n")


def line_articles(source_file: str, lines: list[str], skip: set[int], ingested_at: datetime
                  ) -> tuple[list[dict], list[tuple[int, RejectedInput]]]:
    """Raw article rows of the JSONL lines not in `skip` (line numbers), one by one, and (line, rejection) of each
    line that cannot be one."""
    rows, rejected = [], []
    for line_no, line in enumerate(lines, start=1):
        if line_no in skip or not line.strip():
            continue
        try:
            if too_large(line):
                raise RejectedInput(f"line too large: more than {MAX_ARTICLE_BYTES:,} bytes")
            rows.append(jsonl_article(source_file, line_no, line, ingested_at))
        except RejectedInput as err:
            rejected.append((line_no, err))
    return rows, rejected


def read_jsonl(source_file: str, text: str, ingested_at: datetime, result: IngestResult, log_base: dict) -> int:
    """Articles of a JSONL file, one per line; bad lines are logged one by one and the rest still load.

    In a file of `BULK_JSONL_LINES` lines or more, plain lines are read in bulk (`plain_jsonl_articles`) and every
    other line goes through `jsonl_article`; a shorter file is read line by line, as the bulk path's fixed cost
    (about 2 ms a file) would exceed what it saves (16k Reuters articles in files of 16 lines: 2.5 s in bulk,
    0.18 s line by line; of 1,024 lines: 0.13 and 0.14 s).
    """
    lines = jsonl_lines(text)
    if len(lines) < BULK_JSONL_LINES:
        rows, rejected = line_articles(source_file, lines, set(), ingested_at)
        n = 0
        for row in rows:
            try:
                result.add(row)
                n += 1
            except RejectedInput as err:  # a repeat
                rejected.append((row["source_line"], err))
    else:
        plain = plain_jsonl_articles(source_file, lines, ingested_at)
        rows, rejected = line_articles(source_file, lines, set(plain["source_line"].to_list()), ingested_at)
        articles = pl.concat([plain, pl.DataFrame(rows, schema=RAW_SCHEMA)]).sort("source_line") if rows else plain
        repeats = result.add_frame(source_file, articles)
        rejected += repeats
        n = articles.height - len(repeats)
    for line_no, err in sorted(rejected, key=lambda rejection: rejection[0]):
        result.log.append({**log_base, "source_line": line_no, "status": "quarantined", "reason": str(err),
                           "repeat_of": err.repeat_of, "n_articles": 0})
    return n


@dataclass(frozen=True)
class Loaded:
    """Files earlier runs loaded (the warehouse manifest), per path: its content hash, and its size and modification
    time when the manifest holds them."""

    hashes: dict[str, str] = field(default_factory=dict)
    stats: dict[str, tuple[int, int]] = field(default_factory=dict)
    repeats: dict[str, set[str]] = field(default_factory=dict)  # files holding exact repeats -> first copies' files

    @classmethod
    def from_manifest(cls, manifest: pl.DataFrame | None) -> Loaded:
        manifest = full_manifest(manifest)
        stats = manifest.filter(pl.col("file_mtime_ns").is_not_null()).select(
            "source_file", "file_bytes", "file_mtime_ns").iter_rows()
        repeats = manifest.filter(pl.col("repeat_of").list.len() > 0).select("source_file", "repeat_of").iter_rows()
        return cls(dict(manifest.select("source_file", "file_hash").iter_rows()),
                   {path: (size, mtime) for path, size, mtime in stats},
                   {path: set(first_files) for path, first_files in repeats})

    def unchanged_by_time(self, source_file: str, status: os.stat_result) -> bool:
        """Whether a file has the size and modification time it was loaded with from that path."""
        return self.stats.get(source_file) == (status.st_size, status.st_mtime_ns)


def full_manifest(manifest: pl.DataFrame | None) -> pl.DataFrame:
    """The warehouse manifest (none: an empty one) with every column of `MANIFEST_SCHEMA`: one written before sizes
    and times, or repeats, were kept gets them empty."""
    if manifest is None:
        return pl.DataFrame(schema=MANIFEST_SCHEMA)
    return manifest.with_columns(pl.lit(None, dtype).alias(column) for column, dtype in MANIFEST_SCHEMA.items()
                                 if column not in manifest.columns)


def read_file(path: Path, ingested_at: datetime, run_id: str, result: IngestResult, loaded: Loaded,
              judged_hash: str | None = None) -> None:
    """Read one file into `result`: its articles and exactly one file-level log row. A file whose size and
    modification time match those loaded from its path is not read at all; one whose content hash matches is not
    parsed. (The same content at another path is read: its articles are copies for dedup to find, or exact repeats
    when they have the same ids.) A file found with another content than `judged_hash` (the one this run decided
    by whether to read its repeats again) is an error: its earlier content holds until the next run."""
    source_file = printable_path(path)
    fmt = ARTICLE_SUFFIXES.get(path.suffix.lower())
    log = {"source_file": source_file, "source_line": None, "format": fmt, "file_bytes": None,
           "file_mtime_ns": None, "file_hash": None, "run_id": run_id, "logged_at": ingested_at}
    try:
        status = path.stat()
        log["file_bytes"], log["file_mtime_ns"] = status.st_size, status.st_mtime_ns
        if not stat.S_ISREG(status.st_mode):
            reason = UNLISTED if stat.S_ISDIR(status.st_mode) else "not a regular file"
            result.log.append({**log, "status": "error", "reason": reason, "n_articles": 0})
            return
        if loaded.unchanged_by_time(source_file, status):
            result.log.append({**log, "file_hash": loaded.hashes[source_file], "status": "ok", "n_articles": 0,
                               "reason": UNCHANGED_BY_TIME})
            return
        data = path.read_bytes()
    except FileNotFoundError:
        reason = (f"broken symbolic link (to {os.readlink(path)})" if path.is_symlink()
                  else "file disappeared before it could be read")
        result.log.append({**log, "status": "error", "reason": reason, "n_articles": 0})
        return
    except OSError as err:
        result.log.append({**log, "status": "error", "reason": f"cannot read file: {err.strerror}", "n_articles": 0})
        return
    log["file_bytes"], log["file_hash"] = len(data), hashlib.sha256(data).hexdigest()
    if judged_hash is not None and log["file_hash"] != judged_hash:
        result.log.append({**log, "status": "error", "reason": CHANGED_WHILE_READ, "n_articles": 0})
        return
    if loaded.hashes.get(source_file) == log["file_hash"]:  # the same path with the same content
        result.log.append({**log, "status": "ok", "reason": UNCHANGED_BY_HASH, "n_articles": 0})
        return
    try:
        if fmt is None:
            raise RejectedInput(
                f"unsupported file type '{path.suffix or '(none)'}'; expected .txt, .html, .htm or .jsonl")
        if not data or data.isspace():
            raise RejectedInput("empty file")
        if fmt != "jsonl" and len(data) > MAX_ARTICLE_BYTES:
            raise RejectedInput(f"article too large: {len(data):,} bytes > limit {MAX_ARTICLE_BYTES:,}")
        # a JSONL line with a NUL costs only itself; an HTML page may declare its encoding
        text, note = decode_text(data, fmt != "jsonl", declared_charset(data) if fmt == "html" else None)
        if fmt == "jsonl":
            n = read_jsonl(source_file, text, ingested_at, result, log)
        else:
            result.add(article_row(source_file, Path(source_file).name, None, fmt, text, {}, ingested_at))
            n = 1
    except RejectedInput as err:
        result.log.append({**log, "status": "quarantined", "reason": str(err), "repeat_of": err.repeat_of,
                           "n_articles": 0})
        return
    except Exception as err:  # noqa: BLE001  any other failure is this file's, logged; the run goes on
        result.log.append({**log, "status": "error", "reason": f"could not be read: {type(err).__name__}: {err}",
                           "n_articles": 0})
        return
    result.log.append({**log, "status": "ok", "reason": note, "n_articles": n})


def read_sources(source_dirs: list[str | Path], run_id: str, manifest: pl.DataFrame | None = None
                 ) -> Generator[pl.DataFrame, None, pl.DataFrame]:
    """Read every file under the source folders in discovery order, yielding the raw articles as they are read (a
    frame at a time, at least one, possibly empty, so later stages can start meanwhile) and returning the ingest log.

    Files the `manifest` lists as loaded by an earlier run are logged but not re-read: without even reading
    them when size and modification time match those of the same path, else when its content hash does. A file
    that held exact repeats of articles from another file is read again whatever its size, time and hash if that
    file was changed or removed (its first copies are withdrawn, so its repeats are articles again): which ones is
    decided before reading (`replaced_first_files`), so an article goes to the first file holding it, as in a full
    refresh.
    """
    loaded = Loaded.from_manifest(manifest)
    ingested_at = datetime.now(UTC).replace(microsecond=0)
    result = IngestResult()
    files = discover_files(source_dirs)
    removed = removed_files(loaded, source_dirs, files)
    replaced, judged = replaced_first_files(files, loaded, removed)
    with cyclic_gc_paused():
        for path in files:
            source_file = printable_path(path)
            again = not loaded.repeats.get(source_file, set()).isdisjoint(replaced)
            read_file(path, ingested_at, run_id, result, Loaded() if again else loaded, judged.get(source_file))
            row = result.log[-1]
            if again and row["status"] in ("ok", "error"):  # an error: the manifest forgets its content (`manifest`)
                row["reason"] = f"{REREAD}; {row['reason']}" if row["reason"] else REREAD
            yield from flushed(result, FLUSH_ROWS)
    raw, log = result.frames()
    yield raw  # the rest, possibly none
    removed_rows = [{"source_file": source_file, "source_line": None, "status": "removed", "reason": REMOVED,
                     "n_articles": 0, "format": ARTICLE_SUFFIXES.get(Path(source_file).suffix.lower()),
                     "file_bytes": None, "file_mtime_ns": None, "file_hash": loaded.hashes[source_file],
                     "run_id": run_id, "logged_at": ingested_at}
                    for source_file in sorted(removed)]
    return pl.concat([log, pl.DataFrame(removed_rows, schema=LOG_SCHEMA)])


def replaced_first_files(files: list[Path], loaded: Loaded, removed: list[str]) -> tuple[set[str], dict[str, str]]:
    """The files earlier runs took first copies from (those `loaded.repeats` name) that are `removed` or now hold
    other content (a file that cannot be read is not replaced: an error may pass), and the content hash each one
    found was judged by (its new one if it changed, else the loaded one), which reading it must then find. A
    changed one is read twice, here to hash it and later to parse it."""
    firsts = set().union(*loaded.repeats.values())
    replaced, judged = firsts.intersection(removed), {}
    for path in files:
        source_file = printable_path(path)
        if source_file not in firsts:
            continue
        known = loaded.hashes.get(source_file)
        try:
            status = path.stat()
            if stat.S_ISREG(status.st_mode) and not loaded.unchanged_by_time(source_file, status):
                content = hashlib.sha256(path.read_bytes()).hexdigest()
                if content != known:
                    replaced.add(source_file)
                    judged[source_file] = content
                    continue
        except OSError:
            pass
        if known is not None:
            judged[source_file] = known
    return replaced, judged


def flushed(result: IngestResult, min_rows: int) -> Iterator[pl.DataFrame]:
    """The articles `result` gathered, once there are at least `min_rows`."""
    result.flush(min_rows=min_rows)
    yield from result.take_pieces()


def drain(stream: Generator[pl.DataFrame, None, pl.DataFrame], consume: Callable[[pl.DataFrame], object]
          ) -> pl.DataFrame:
    """Pass each frame a stream such as `read_sources` yields to `consume`; returns what the stream returns. If
    `consume` fails, the stream is closed at once (so `read_sources` turns the cycle collector back on)."""
    with closing(stream):
        while True:
            try:
                frame = next(stream)
            except StopIteration as end:
                return end.value
            consume(frame)


def ingest_sources(source_dirs: list[str | Path], run_id: str,
                   manifest: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All of `read_sources` at once: (raw_articles, ingest_log)."""
    pieces: list[pl.DataFrame] = []
    log = drain(read_sources(source_dirs, run_id, manifest), pieces.append)
    return pl.concat(pieces, rechunk=False), log


def removed_files(loaded: Loaded, source_dirs: list[str | Path], files: list[Path]) -> list[str]:
    """Files earlier runs loaded from under these source folders that were not found now: only under folders that
    exist and were listed (an unmounted share, or a folder that could not be listed, removes nothing)."""
    found = {printable_path(path): path for path in files}
    roots = [PurePosixPath(printable_path(Path(source))) for source in source_dirs if Path(source).is_dir()]

    def unlisted(path: str) -> bool:  # a folder found above it: listed itself, so it could not be listed
        return any(str(folder) in found and found[str(folder)].is_dir() for folder in PurePosixPath(path).parents)

    return [path for path in loaded.hashes if path not in found
            and any(PurePosixPath(path).is_relative_to(root) for root in roots) and not unlisted(path)]


def is_unchanged() -> pl.Expr:
    """Whether an ingest-log row is a file skipped as unchanged since an earlier run."""
    return pl.col("reason").is_in(UNCHANGED).fill_null(False)


def without_loaded_repeats(articles: pl.DataFrame, log: pl.DataFrame, loaded_articles: pl.DataFrame | None
                           ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`articles` (any frame with the `ORIGIN` columns) without those an earlier run loaded from another file that
    stays (same id, so the same source id and text), and `log` saying so as for a repeat within the run: a JSONL
    line gets a quarantined row and its file's count drops; a one-article file is quarantined itself."""
    if loaded_articles is None or articles.is_empty():
        return articles, log
    first = loaded_articles.select("article_id", first_file="source_file", first_line="source_line")
    repeats = articles.select(ORIGIN).join(first, on="article_id")
    if repeats.is_empty():
        return articles, log
    repeats = repeats.with_columns(reason=pl.format(
        REPEAT_REASON, "first_file",
        pl.when(pl.col("first_line").is_not_null()).then(pl.format(":{}", "first_line")).otherwise(pl.lit(""))))
    files = log.filter(pl.col("source_line").is_null())
    per_file = repeats.group_by("source_file").agg(n_repeats=pl.len(), whole=pl.col("source_line").is_null().all(),
                                                   whole_reason=pl.col("reason").first(),
                                                   whole_first=pl.col("first_file").first())
    files = files.join(per_file, on="source_file", how="left", maintain_order="left").with_columns(
        n_articles=pl.col("n_articles") - pl.col("n_repeats").fill_null(0),
        status=pl.when(pl.col("whole")).then(pl.lit("quarantined")).otherwise("status"),
        reason=pl.when(pl.col("whole")).then("whole_reason").otherwise("reason"),
        repeat_of=pl.when(pl.col("whole")).then("whole_first").otherwise("repeat_of"),
    ).select(log.columns)
    lines = repeats.filter(pl.col("source_line").is_not_null()).join(
        files.drop("source_line", "status", "reason", "repeat_of", "n_articles"), on="source_file"
    ).with_columns(status=pl.lit("quarantined"), repeat_of="first_file",
                   n_articles=pl.lit(0, pl.Int64)).select(log.columns)
    merged = pl.concat([files, log.filter(pl.col("source_line").is_not_null()), lines])
    return articles.join(repeats, on="article_id", how="anti"), merged.sort(
        "source_file", "source_line", nulls_last=False, maintain_order=True)


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cycle collector off while files are parsed: the millions of parsed records and strings hold no
    cycles, yet each of its passes would walk them all (reference counting still frees them)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
