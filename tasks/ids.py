"""Stable content-hash ids shared by every stage."""

import hashlib

import polars as pl

ID_SEP = "\x1f"


def stable_id(*parts: object) -> str:
    """16-hex id from the parts' text (None counts as empty)."""
    text = ID_SEP.join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def stable_id_expr(*columns: str | pl.Expr) -> pl.Expr:
    """Vectorised `stable_id` over columns: same values give the same id."""
    exprs = [pl.col(c) if isinstance(c, str) else c for c in columns]
    joined = pl.concat_str([e.cast(pl.String).fill_null("") for e in exprs], separator=ID_SEP)
    sha256 = hashlib.sha256
    return joined.map_batches(  # the joined text is never null, so this is `stable_id` without its per-call work
        lambda s: pl.Series([sha256(v.encode()).hexdigest()[:16] for v in s.to_list()], dtype=pl.String),
        return_dtype=pl.String,
    )
