"""Keeping small tables of cut strings from pinning the text they were cut from."""

from __future__ import annotations

import polars as pl


def detached(text: pl.Expr) -> pl.Expr:
    """`text` copied into buffers of its own. A string cut from a longer one (split, slice, strip) is a view into
    the source's buffer, so a few kept lines or sentences would otherwise hold the whole batch's text in memory."""
    return pl.concat_str(text, pl.lit(""))
