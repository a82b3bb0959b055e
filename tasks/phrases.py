"""Multi-word phrase matching over token tables with polars joins (longest match wins, no overlaps)."""

from __future__ import annotations

import polars as pl

from tasks.sentences import TOKEN_RE

POS_SCALE = 100_000  # tokens per sentence bound, used to order (sid, ti) as one integer


def phrase_keys(phrases: pl.Expr) -> pl.Expr:
    """Tokenise phrases the way sentences are tokenised and join the tokens with single spaces."""
    return phrases.str.extract_all(TOKEN_RE).list.join(" ")


def add_phrase_keys(table: pl.DataFrame, column: str = "phrase") -> pl.DataFrame:
    """Add `key` (token-joined phrase), `n` (its token count) and `head` (first token) to a phrase table."""
    return (
        table.with_columns(key=phrase_keys(pl.col(column)))
        .with_columns(n=pl.col("key").str.count_matches(" ") + 1, head=pl.col("key").str.extract(r"^(\S+)"))
        .filter(pl.col("key") != "")
    )


def match_phrases(tokens: pl.DataFrame, table: pl.DataFrame, column: str) -> pl.DataFrame:
    """Matches of `table.key` over the token column `column`: sid, start, end (exclusive) plus table columns.

    Overlapping matches are resolved leftmost-longest; `table` must have been through `add_phrase_keys`.
    """
    extra = [c for c in table.columns if c not in ("key", "n", "head")]
    sizes = sorted(table["n"].unique().to_list())
    if not sizes:
        return pl.DataFrame(schema={"sid": pl.Int64, "start": pl.Int64, "end": pl.Int64})
    # keep only tokens that can start a phrase, then fetch the tokens after them by row number
    heads = tokens.with_row_index("row").filter(pl.col(column).is_in(table["head"].unique().implode()))
    found = []
    for n in sizes:
        phrases = table.filter(pl.col("n") == n)
        starts = heads.filter(pl.col(column).is_in(phrases["head"].unique().implode()))
        last = len(tokens) - 1
        rows = [(starts["row"].cast(pl.Int64) + k).clip(0, last) for k in range(n)]
        same_sentence = tokens["sid"].gather(rows[-1]) == starts["sid"]
        words = [tokens[column].gather(r) for r in rows]
        key = pl.select(pl.concat_str(words, separator=" ")).to_series()
        grams = pl.DataFrame({"sid": starts["sid"], "start": starts["ti"], "key": key})
        hits = grams.filter(same_sentence).join(phrases, on="key", how="inner")
        found.append(hits.select("sid", "start", (pl.col("start") + n).alias("end"), *extra))
    return longest_non_overlapping(pl.concat(found))


def longest_non_overlapping(matches: pl.DataFrame) -> pl.DataFrame:
    """Keep, left to right, the longest match at each start that does not overlap a kept one."""
    ordered = matches.sort("sid", "start", pl.col("end"), descending=[False, False, True]).unique(
        ["sid", "start"], keep="first", maintain_order=True
    )
    reach = (pl.col("sid") * POS_SCALE + pl.col("end")).cum_max().shift(1).fill_null(-1)
    return ordered.filter(pl.col("sid") * POS_SCALE + pl.col("start") >= reach)


def token_rows(tokens: pl.DataFrame, sids: pl.Series, positions: pl.Series) -> pl.Series:
    """Row numbers in `tokens` (sorted by sid, ti; ti from 0) of the tokens at (sid, position)."""
    return tokens["sid"].search_sorted(sids, side="left").cast(pl.Int64) + positions.cast(pl.Int64)


def with_token_values(
    frame: pl.DataFrame, tokens: pl.DataFrame, position: str | pl.Expr, **columns: str
) -> pl.DataFrame:
    """Add token columns (new_name=token_column) taken at `position` in each row's sentence `sid`.

    Direct indexing, no join: `tokens` must be sorted by (sid, ti) with ti counting from 0, as `tokenize`
    returns it. Positions outside the sentence give null.
    """
    positions = frame.select(pl.col(position) if isinstance(position, str) else position).to_series()
    if len(tokens) == 0 or len(frame) == 0:
        return frame.with_columns(**{name: pl.lit(None, tokens.schema[col]) for name, col in columns.items()})
    raw = token_rows(tokens, frame["sid"], positions)
    rows = raw.clip(0, len(tokens) - 1)
    inside = (raw == rows) & (positions >= 0) & (tokens["sid"].gather(rows) == frame["sid"])
    return frame.with_columns(**{name: pl.when(inside).then(tokens[col].gather(rows)) for name, col in columns.items()})
