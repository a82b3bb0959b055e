"""Vectorised sentence splitting and tokenising of article bodies (polars only, no per-row Python)."""

from __future__ import annotations

import polars as pl

# Every character of a body falls in exactly one chunk: text up to a terminator run ([.!?] plus closing quotes
# when followed by whitespace, or a newline) with its trailing whitespace, or a final unterminated tail.
CHUNK_RE = r"[^.!?\n]*(?:[.!?]+(?:[\"'”’»)\]]+(?:[ \t\r\n]+|$)|[ \t\r\n]*)|\n[ \t\r\n]*)|[^.!?\n]+"
TOKEN_RE = r"\p{L}(?:\.\p{L})+\.?|[\p{L}\p{N}]+|[^\s\p{L}\p{N}]"

TITLE_ABBREVIATIONS = [
    "mr", "mrs", "ms", "dr", "gen", "lt", "col", "maj", "capt", "cpt", "sgt", "gov", "sen", "rep", "st", "jr", "sr",
    "prof", "rev", "adm", "brig", "cmdr", "pres", "no", "vs", "etc", "inc", "corp", "co", "ltd", "dept", "fig",
    "approx", "mt", "ft", "hon",
]  # fmt: skip
MONTH_ABBREVIATIONS = ["jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"]
SENTENCE_STARTERS = [
    "The", "A", "An", "It", "He", "She", "They", "We", "I", "But", "In", "On", "This", "That", "There", "And",
    "However", "Its", "His", "Her", "Their",
]  # fmt: skip


def split_sentences(articles: pl.DataFrame) -> pl.DataFrame:
    """One row per sentence: article_id, sentence_index, sentence, char_start, char_end (offsets into body), sid.

    `sid` numbers the sentences of the whole batch; token and mention tables refer to sentences by it.
    """
    bodies = articles.select("article_id", pl.col("body").fill_null("")).with_row_index("arow")
    body = pl.col("body")
    non_empty_lines = body.str.count_matches(r"\n[^\n]") + body.str.contains(r"^[^\n]").cast(pl.UInt32)
    chunks = (
        bodies.select(
            "article_id",
            "arow",
            pl.col("body").str.extract_all(CHUNK_RE).alias("chunk"),
            # hard-wrapped text (newswire: short lines, at least half ending mid-sentence) continues sentences
            # across single newlines
            wrapped=~body.str.contains(r"[^\n]{100}")
            & (2 * body.str.count_matches(r"[\p{L}\d,;-][ \t]*\n") >= non_empty_lines),
        )
        .with_columns(
            start=pl.col("chunk").list.eval(pl.element().str.len_chars().cum_sum() - pl.element().str.len_chars())
        )
        .explode("chunk", "start")
        .drop_nulls("chunk")
        .with_columns(
            text=pl.col("chunk").str.strip_chars_end(),
            trail=pl.col("chunk").str.extract(r"(\s*)$"),
        )
    )
    same_article = pl.col("article_id") == pl.col("article_id").shift(1)
    prev = lambda c: pl.when(same_article).then(pl.col(c).shift(1))  # noqa: E731
    last_word = pl.col("text").str.extract(r"([\p{L}]+)[.!?]*[\"'”’»)\]]*$").str.to_lowercase()
    acronym_end = pl.col("text").str.contains(r"(?:^|[^\p{L}])\p{L}\.\p{L}\.$|(?:^|\s)\p{Lu}\.$")
    chunks = chunks.with_columns(
        last_word=last_word,
        acronym_end=acronym_end,
        ends_para=pl.col("trail").str.contains(r"\n[ \t]*\n|\n[ \t]+"),
        ends_newline=pl.col("trail").str.contains(r"\n"),
        ends_stop=pl.col("text").str.contains(r"[.!?][\"'”’»)\]]*$"),
        first=pl.col("text").str.extract(r"^\s*(\S)"),
        first_word=pl.col("text").str.extract(r"^\s*[\"“']?(\p{L}+)"),
    )
    starts_lower = prev("trail").is_not_null() & pl.col("first").str.contains(r"^[\p{Ll},;:)]")
    decimal = (prev("trail") == "") & pl.col("first").str.contains(r"^\d")
    title_abbrev = prev("last_word").is_in(TITLE_ABBREVIATIONS) & ~prev("ends_para")
    month_abbrev = prev("last_word").is_in(MONTH_ABBREVIATIONS) & pl.col("first").str.contains(r"^\d")
    acronym = prev("acronym_end") & ~pl.col("first_word").is_in(SENTENCE_STARTERS) & ~prev("ends_para")
    soft_newline = pl.col("wrapped") & prev("ends_newline") & ~prev("ends_para") & ~prev("ends_stop")
    continues = (
        (prev("text").str.strip_chars() == "")
        | starts_lower
        | decimal
        | title_abbrev
        | month_abbrev
        | acronym
        | soft_newline
    ).fill_null(False)
    # a sentence runs from the first chunk that starts it to the next such chunk (or the end of the body)
    next_in_article = pl.col("article_id").shift(-1) == pl.col("article_id")
    sentences = (
        chunks.filter(~continues | prev("text").is_null())
        .select("article_id", "arow", "start")
        .with_columns(body=pl.lit(bodies["body"]).gather(pl.col("arow")))  # late: exploding bodies is costly
        .with_columns(stop=pl.when(next_in_article).then(pl.col("start").shift(-1)).otherwise(body.str.len_chars()))
        .with_columns(raw=body.str.slice(pl.col("start"), pl.col("stop") - pl.col("start")))
        .with_columns(
            sentence=pl.col("raw").str.strip_chars(),
            lead=pl.col("raw").str.len_chars() - pl.col("raw").str.strip_chars_start().str.len_chars(),
        )
        .with_columns(char_start=(pl.col("start") + pl.col("lead")).cast(pl.Int64))
        .with_columns(char_end=pl.col("char_start") + pl.col("sentence").str.len_chars())
        .filter(pl.col("sentence").str.contains(r"\p{L}"))
        .with_columns(sentence_index=pl.int_range(pl.len(), dtype=pl.Int64).over("article_id"))
        .select("article_id", "sentence_index", "sentence", "char_start", "char_end")
        .with_columns(sid=pl.int_range(pl.len(), dtype=pl.Int64))
    )
    return sentences


def tokenize(sentences: pl.DataFrame) -> pl.DataFrame:
    """One row per token: sid, ti (token index), tok, low (lower case), cap (initial capital)."""
    return (
        sentences.select("sid", pl.col("sentence").str.extract_all(TOKEN_RE).alias("tok"))
        .sort("sid")
        .with_columns(ti=pl.int_ranges(0, pl.col("tok").list.len(), dtype=pl.Int64))
        .explode("tok", "ti")
        .drop_nulls("tok")
        .with_columns(low=pl.col("tok").str.to_lowercase(), cap=pl.col("tok").str.contains(r"^\p{Lu}"))
    )
