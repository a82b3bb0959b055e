"""Multi-word phrase matching over token tables with polars joins (longest match wins, no overlaps)."""

from __future__ import annotations

from dataclasses import dataclass

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


ONE_PASS_LOOKUPS = 400_000  # up to this many token lookups, phrases of all lengths are keyed in one pass


@dataclass(frozen=True)
class PhraseIndex:
    """A phrase table prepared for `match_phrases`: built once per dictionary."""

    head_lengths: pl.DataFrame  # head, n: each first token with the lengths of the phrases it starts
    phrases: pl.DataFrame  # key and the table's columns, all lengths
    by_length: dict[int, pl.DataFrame]  # the same split by phrase length n
    empty: pl.DataFrame  # no matches, with the columns of `match_phrases`


def phrase_index(table: pl.DataFrame) -> PhraseIndex:
    """Index of a phrase table that has been through `add_phrase_keys` (its keys must be unique)."""
    extra = [c for c in table.columns if c not in ("key", "n", "head")]
    phrases = table.select("key", *extra)
    by_length = {n: phrases.filter(table["n"] == n) for n in sorted(table["n"].unique().to_list())}
    empty = pl.DataFrame(schema={"sid": pl.Int64, "start": pl.Int64, "end": pl.Int64, **table.select(extra).schema})
    return PhraseIndex(table.select("head", "n").unique().sort("head", "n"), phrases, by_length, empty)


def match_phrases(tokens: pl.DataFrame, index: PhraseIndex, column: str) -> pl.DataFrame:
    """Matches of the indexed phrases over the token column `column`: sid, start, end (exclusive) plus the
    table's columns. Overlapping matches are resolved leftmost-longest.

    Small inputs key all phrase lengths in one pass (few polars calls); large ones key each length on its own
    starts only (fewer token lookups).
    """
    # tokens that can start a phrase, once per length of the phrases they start
    starts = tokens.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), "sid", "ti", column).join(
        index.head_lengths, left_on=column, right_on="head"
    )
    longest = max(index.by_length, default=0)
    if len(starts) * longest <= ONE_PASS_LOOKUPS:
        found = [phrase_hits(tokens, starts, column, longest, index.phrases)]
    else:
        parts = starts.partition_by("n", as_dict=True)
        found = [phrase_hits(tokens, part, column, n, index.by_length[n]) for (n,), part in parts.items()]
    return longest_non_overlapping(pl.concat([index.empty, *found]))


def phrase_hits(
    tokens: pl.DataFrame, starts: pl.DataFrame, column: str, longest: int, phrases: pl.DataFrame
) -> pl.DataFrame:
    """`phrases` (key, columns) found at `starts` (row, sid, ti and n, the phrase length to try, at most
    `longest`): the n tokens from each start, fetched by row number, joined with spaces as the key."""
    last = len(tokens) - 1
    word = pl.lit(tokens[column])
    n = pl.col("n").cast(pl.Int64)
    at = lambda k: (pl.col("row") + k).clip(0, last)  # noqa: E731
    words = [pl.when(n > k).then(word.gather(at(k))) for k in range(longest)]
    grams = starts.select(
        "sid",
        start="ti",
        end=pl.col("ti") + n,
        key=pl.concat_str(words, separator=" ", ignore_nulls=True),
        same_sentence=pl.lit(tokens["sid"]).gather(at(n - 1)) == pl.col("sid"),
    )
    hits = grams.filter("same_sentence").join(phrases, on="key", how="inner")
    return hits.select("sid", "start", "end", *phrases.columns[1:])


def longest_non_overlapping(matches: pl.DataFrame) -> pl.DataFrame:
    """Keep, left to right, the longest match at each start that does not overlap a kept one."""
    ordered = matches.sort("sid", "start", pl.col("end"), descending=[False, False, True])
    longest = (pl.col("start") != pl.col("start").shift(1)) | (pl.col("sid") != pl.col("sid").shift(1))
    ordered = ordered.filter(longest.fill_null(True))  # the first (longest) match at each start
    reach = (pl.col("sid") * POS_SCALE + pl.col("end")).cum_max().shift(1).fill_null(-1)
    return ordered.filter(pl.col("sid") * POS_SCALE + pl.col("start") >= reach)


def sentence_rows(tokens: pl.DataFrame, sids: pl.Series) -> pl.Series:
    """Row numbers in `tokens` (sorted by sid, ti; ti from 0) of the first token of each sentence `sids`; add a
    position to get the row of the token there."""
    return tokens["sid"].search_sorted(sids, side="left").cast(pl.Int64)


def with_token_values(
    frame: pl.DataFrame, tokens: pl.DataFrame, position: str | pl.Expr, **columns: str
) -> pl.DataFrame:
    """Add token columns (new_name=token_column) taken at `position` in each row's sentence `sid`.

    Direct indexing, no join: `tokens` must be sorted by (sid, ti) with ti counting from 0, as `tokenize`
    returns it. Positions outside the sentence give null.
    """
    return with_tokens_at(frame, tokens, **{name: (position, col) for name, col in columns.items()})


def with_tokens_at(frame: pl.DataFrame, tokens: pl.DataFrame, **columns: tuple[str | pl.Expr, str]) -> pl.DataFrame:
    """`with_token_values` for several positions in one pass: new_name=(position, token_column)."""
    if len(tokens) == 0 or len(frame) == 0:
        return frame.with_columns(**{name: pl.lit(None, tokens.schema[col]) for name, (_, col) in columns.items()})
    first = pl.lit(sentence_rows(tokens, frame["sid"]))
    sids = pl.lit(tokens["sid"])
    values = {}
    for name, (position, col) in columns.items():
        offset = (pl.col(position) if isinstance(position, str) else position).cast(pl.Int64)
        raw = first + offset
        row = raw.clip(0, len(tokens) - 1)
        inside = (raw == row) & (offset >= 0) & (sids.gather(row) == pl.col("sid"))
        values[name] = pl.when(inside).then(pl.lit(tokens[col]).gather(row))
    return frame.with_columns(**values)
