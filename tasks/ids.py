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
    return joined.map_batches(
        lambda s: pl.Series([stable_id(v) for v in s.to_list()], dtype=pl.String),
        return_dtype=pl.String,
    )
