"""Clean stage: normalise raw article text, strip boilerplate line by line, extract metadata.

How a body is found, per batch and with polars expressions only (no per-line Python):
1. normalise the text, split it into lines and merge hard-wrapped lines into blocks, keeping apart the lines that
   stand alone (sign-offs, prompts, copyright lines), so that a rule never takes a whole paragraph with them;
2. give every block features (words, sentence shape, numbers, repetition in the document and across the batch)
   and the first matching pattern rule from `tasks.boilerplate_rules` (captions, players, prompts, ...);
3. score blocks (running text positive, menu items negative, longer menu runs more negative) and keep, per
   document, the contiguous run of blocks with the best total score (maximum subarray), started after a
   repeated headline and ended at a comments heading when there is one;
4. the body is the unflagged blocks of that run; everything else is a `boilerplate` span with its rule.

Offsets in the `boilerplate` table (`char_start`, `char_end`) index the *normalised* raw text, i.e.
`normalize_text(raw_text)`: ftfy mojibake repair (only on texts that look broken), CR/CRLF -> LF,
exotic spaces -> " ", zero-width characters dropped, curly quotes -> straight, dashes -> "-".
Every non-blank line of that text is either kept in `body` or recorded in one boilerplate span; the optional
` date YYYY-MM-DD [url]` header prefix is recorded as a `metadata_header` span.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import ftfy
import polars as pl

from tasks.boilerplate_rules import (
    FULL_DATE_RE,
    HARD_TAIL_RULES,
    PAGE_FURNITURE_RULES,
    SENTENCE_END_RE,
    SHORT_SENTENCE_SCORE,
    SOFT_TAIL_RULES,
    is_ascii_expr,
    line_features,
    non_text_score_expr,
    normalized_key_expr,
    pattern_rule_expr,
    shape_features,
)
from tasks.ids import stable_id_expr
from tasks.memory import detached

DATA_DIR = Path(__file__).parent / "data"
OUTLETS: dict[str, str] = {
    row["domain"]: row["outlet"] for row in csv.DictReader((DATA_DIR / "clean_outlets.csv").open(encoding="utf-8"))
}
OUTLET_BY_NAME = {name.lower(): name for name in OUTLETS.values()} | {
    domain.lower(): name for domain, name in OUTLETS.items()
}

MOJIBAKE_RE = (
    r"[ÂÃâÅ][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    r"\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e\u2020\u2021\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
    r"|&(?:amp|quot|apos|lt|gt|nbsp|#\d+|#x[0-9a-fA-F]+);"
)
HEADER_RE = r"^(\s*date\s+\d{4}-\d{2}-\d{2}(?:[ \t]+https?://\S+)?[ \t]*)"
MONTHS = {
    m: f"{i:02d}"
    for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)
}
MONTH_RE = r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
DAY_MONTH_YEAR_RE = rf"\b(\d{{1,2}})\s+{MONTH_RE},?\s+(\d{{4}})\b"
MONTH_DAY_YEAR_RE = rf"\b{MONTH_RE}\s+(\d{{1,2}}),?\s+(\d{{4}})\b"
URL_DATE_RE = r"/((?:19|20)\d{2})/?(\d{2})/?(\d{2})(?:/|[^\d]|$)"
DATELINE_SEARCH_LINES = 15
DATELINE_MAX_WORDS = 12
GLUE_RE = r"([a-z]{2}|\d{3}|[)\]])([.!?])(\"?[A-Z][a-z]*)([\s,;:!?)\"']|$)"
MASTHEAD_RE = r"\s+[|\-]\s+([^|\-]{2,40})$"
CUE_VERBS = "contacted|reached out|learned|asked"
CUE_RE = (
    r"(?i)\b(" + "|".join(sorted((re.escape(n) for n in OUTLET_BY_NAME), key=len, reverse=True)) + r")"
    rf"\s+has\s+(?:{CUE_VERBS})"
)
HEADLINE_MAX_LINE = 6
HEADLINE_WORDS = (2, 30)
HEADLINE_MAX_NUMBERS = 2
TITLE_CASE_SHARE = 0.75
DANGLING_END_RE = (
    r"(?i)\b(?:a|an|the|of|to|in|on|for|with|at|by|from|and|or|but|its|their|his|her|that|which|who|is|are|was|"
    r"were|has|have|had|will|would|said)$"
)

WRAP_WIDTH = (45, 100)
WRAP_MIN_SHARE = 0.5
FRAGMENT_MIN_WORDS = 4
ABBREVIATION_END_RE = r"(?:\b(?:\p{Lu}\.){2,}|\b(?:Inc|Corp|Co|Ltd|Jr|Sr|Dr|Mr|Mrs|Ms|St|Gov|Sen|Rep|Gen|No|vs)\.)\s*$"
WRAP_MIN_LINES = 2
SIGN_OFF_MAX_WORDS = 3
REPEATED_MIN_DOCS = 3
REPEATED_MAX_WORDS = 20
ECHO_WINDOW = 3
ECHO_MIN_WORDS = 3
RUN_RANK_CAP = 4
ANCHOR_MIN_TEXT_SHARE = 0.1
ANCHOR_MIN_WORDS = 40
TAIL_MIN_WORDS_BEFORE = 40
STANDFIRST_MIN_WORDS = 8
EXCLUDED_SCORE = -1_000_000

ARTICLE_COLUMNS = ["url", "outlet", "title", "published_date", "body", "raw_chars", "clean_chars", "content_hash"]
BOILERPLATE_SCHEMA = {
    "article_id": pl.String,
    "rule": pl.String,
    "text": pl.String,
    "char_start": pl.Int64,
    "char_end": pl.Int64,
}


def fix_mojibake(texts: pl.Series) -> pl.Series:
    """Run ftfy only on the texts that show mojibake or HTML-entity symptoms."""
    texts = texts.fill_null("")
    broken = texts.str.contains(MOJIBAKE_RE).arg_true()
    if broken.len() == 0:
        return texts
    fixed = pl.Series([ftfy.fix_text(t) for t in texts.gather(broken).to_list()], dtype=pl.String)
    return texts.scatter(broken, fixed)


def normalize_expr(text: pl.Expr) -> pl.Expr:
    """Vectorised unicode normalisation of line breaks, spaces, quotes and dashes (no ftfy), run only on the texts
    with a character to replace: a control character or anything outside ASCII (fewer bytes than characters)."""
    to_normalize = text.str.contains(r"[\r\t\f\v]") | ~is_ascii_expr(text)
    normalized = (
        pl.when(to_normalize)
        .then(text)
        .otherwise(pl.lit(""))
        .str.replace_all("\r\n", "\n", literal=True)
        .str.replace_all(r"[\r\u2028\u2029\u0085]", "\n")
        .str.replace_all(r"[\t\f\v\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]", " ")
        .str.replace_all(r"[\u00ad\u200b-\u200d\u2060\ufeff]", "")
        .str.replace_all(r"[\u2018\u2019\u201a\u201b\u2032]", "'")
        .str.replace_all(r"[\u201c\u201d\u201e\u201f\u2033]", '"')
        .str.replace_all(r"[\u2010-\u2015\u2212]", "-")
    )
    return pl.when(to_normalize).then(normalized).otherwise(text)


def normalize_text(texts: pl.Series) -> pl.Series:
    """The text that boilerplate offsets refer to: ftfy repair then `normalize_expr`."""
    return pl.select(normalize_expr(pl.lit(fix_mojibake(texts)))).to_series()


def repair_glue_expr(text: pl.Expr) -> pl.Expr:
    """Insert the missing space in 'Ukraine.Sikorski' / 'journalists."We' without touching U.S., 3.5 or domains."""
    return text.str.replace_all(GLUE_RE, "${1}${2} ${3}${4}")


def meta_expr(name: str) -> pl.Expr:
    """A metadata column with its surrounding whitespace stripped, null when blank, so that a fallback applies."""
    value = pl.col(name).str.strip_chars()
    return pl.when(value != "").then(value)


def outlet_from_domain_expr(url: pl.Expr) -> pl.Expr:
    """Known outlet name for the URL's domain or its parent domain; null if unknown."""
    host = url.str.to_lowercase().str.extract(r"^(?:[a-z]+://)?(?:www\d?\.)?([^/:?#\s]+)", 1)
    parent = host.str.extract(r"^[^.]+\.(.+\..+)$", 1)
    return pl.coalesce(
        host.replace_strict(OUTLETS, default=None, return_dtype=pl.String),
        parent.replace_strict(OUTLETS, default=None, return_dtype=pl.String),
    )


def outlet_from_name_expr(name: pl.Expr) -> pl.Expr:
    """Canonical outlet for a known outlet name or domain written in text; null if unknown."""
    return (
        name.str.strip_chars().str.to_lowercase().replace_strict(OUTLET_BY_NAME, default=None, return_dtype=pl.String)
    )


def date_from_parts_expr(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    """pl.Date from string parts; invalid dates become null."""
    return pl.concat_str([year, month.str.zfill(2), day.str.zfill(2)], separator="-").str.to_date(
        "%Y-%m-%d", strict=False
    )


def inline_date_expr(line: pl.Expr) -> pl.Expr:
    """Date written in a line as '4 Apr, 2024', 'April 4, 2024' or '2024-04-04'; null otherwise."""
    dmy = line.str.extract_groups(DAY_MONTH_YEAR_RE)
    mdy = line.str.extract_groups(MONTH_DAY_YEAR_RE)
    iso = line.str.extract_groups(r"\b(\d{4})-(\d{2})-(\d{2})\b")

    def month(m: pl.Expr) -> pl.Expr:
        return m.str.slice(0, 3).str.to_lowercase().replace_strict(MONTHS, default=None, return_dtype=pl.String)

    return pl.coalesce(
        date_from_parts_expr(dmy.struct[2], month(dmy.struct[1]), dmy.struct[0]),
        date_from_parts_expr(mdy.struct[2], month(mdy.struct[0]), mdy.struct[1]),
        date_from_parts_expr(iso.struct[0], iso.struct[1], iso.struct[2]),
    )


def split_lines(docs: pl.DataFrame) -> pl.DataFrame:
    """One row per line of the text after the header, with its offsets into the normalised `text`."""
    lines = (
        docs.select(
            "_doc",
            "header_len",
            "text",
            pl.col("text").str.slice(pl.col("header_len")).str.split("\n").alias("line"),
        )
        .explode("line")
        .with_columns(pl.col("line").str.len_chars().alias("line_len"))
    )
    return lines.with_columns(
        (pl.col("header_len") + cum_sum_in_doc(pl.col("line_len").cast(pl.Int64) + 1) - pl.col("line_len") - 1).alias(
            "char_start"
        )
    ).with_columns((pl.col("char_start") + pl.col("line_len")).alias("char_end"))


def shift_in_doc(expr: pl.Expr, n: int) -> pl.Expr:
    """`expr.shift(n).over("_doc")` for rows grouped by document (a document's rows are contiguous), but cheaper."""
    return pl.when(pl.col("_doc").shift(n) == pl.col("_doc")).then(expr.shift(n))


def doc_start() -> pl.Expr:
    """The row is the first of its document (rows grouped by document)."""
    return (pl.col("_doc") != pl.col("_doc").shift(1)).fill_null(True)


def cum_sum_since(expr: pl.Expr, start: pl.Expr) -> pl.Expr:
    """Running sum of `expr` (no nulls) that restarts at each row where `start` holds (true on the first row): one
    running total minus its value before the last start, no window over groups."""
    total = expr.cum_sum()
    return total - pl.when(start).then(total - expr).forward_fill()


def cum_sum_in_doc(expr: pl.Expr) -> pl.Expr:
    """`expr.cum_sum().over("_doc")` for rows grouped by document, but cheaper."""
    return cum_sum_since(expr, doc_start())


def title_case_expr(text: pl.Expr) -> pl.Expr:
    """Most words of four or more letters are capitalised, as in an English headline or a menu."""
    return text.str.count_matches(r"\b\p{Lu}\w{3,}") >= TITLE_CASE_SHARE * text.str.count_matches(r"\b\w{4,}")


def join_wrapped_lines(lines: pl.DataFrame) -> pl.DataFrame:
    """Merge hard-wrapped lines (newswire style) into blocks: one row per block with text `t` and its span.

    A document counts as hard-wrapped when most of its lines that run into a non-blank, non-indented next line
    are of typewriter width and do not end a sentence; there every break into a non-blank, non-indented line
    is soft. In any document, a line of some length running into a lowercase next line is wrapped too, unless
    it ends a sentence (not just an abbreviation such as "U.S."). A line that stands alone (`standalone_lines`)
    is never joined to its neighbours. `wrapped` marks blocks of hard-wrapped documents.
    """
    next_line = shift_in_doc(pl.col("line"), -1)
    ends_sentence = pl.col("line").str.contains(SENTENCE_END_RE)
    lines = lines.with_columns(
        ((pl.col("line").str.strip_chars() != "") & next_line.str.contains(r"^\S").fill_null(False)).alias("_runs_on"),
        next_line.str.contains(r"^\p{Ll}").fill_null(False).alias("_next_lower"),
    ).with_columns(
        (
            pl.col("_next_lower")
            & (pl.col("line_len") >= WRAP_WIDTH[0] // 2)
            & (~ends_sentence | pl.col("line").str.contains(ABBREVIATION_END_RE))
        ).alias("_continues"),
        (pl.col("line_len").is_between(*WRAP_WIDTH) & ~ends_sentence).alias("_wrap_width"),
    )
    wrap_like = pl.col("_runs_on") & pl.col("_wrap_width")
    wrapped_doc = (wrap_like.sum().over("_doc") >= WRAP_MIN_SHARE * pl.col("_runs_on").sum().over("_doc")) & (
        wrap_like.sum().over("_doc") >= WRAP_MIN_LINES
    )
    lines = lines.with_columns(wrapped_doc.alias("wrapped"))
    lines = lines.with_columns(standalone_lines(lines).alias("_alone"))
    joins = pl.col("_runs_on") & (pl.col("wrapped") | pl.col("_continues"))
    lines = lines.with_columns(
        (joins & ~pl.col("_alone") & ~shift_in_doc(pl.col("_alone"), -1).fill_null(False)).alias("_soft")
    )
    block_start = ~shift_in_doc(pl.col("_soft"), 1).fill_null(False)
    lines = lines.with_columns(
        block_start.alias("_first"), cum_sum_in_doc(block_start.cast(pl.Int64)).alias("ln")
    )
    block_end = lines.filter(~pl.col("_soft"))["char_end"]
    blocks = lines.filter(pl.col("_first")).with_columns(block_end.alias("char_end"))
    span = pl.col("text").str.slice(pl.col("char_start"), pl.col("char_end") - pl.col("char_start"))
    return blocks.select(
        "_doc",
        "ln",
        pl.when(pl.col("_soft")).then(span).otherwise(pl.col("line")).alias("line"),
        "char_start",
        "char_end",
        "wrapped",
    ).with_columns(join_breaks_expr(pl.col("line")).str.strip_chars().alias("t"))


def join_breaks_expr(text: pl.Expr) -> pl.Expr:
    """`text` with each line break and the whitespace around it turned into one space. Normalised text has no
    whitespace but " " and "\n", so in a text where no break touches a space or another break that is a literal
    replace; the regex runs only on the other texts."""
    breaks_touch_space = pl.any_horizontal(text.str.contains(s, literal=True) for s in (" \n", "\n ", "\n\n"))
    return (
        pl.when(breaks_touch_space)
        .then(pl.when(breaks_touch_space).then(text).otherwise(pl.lit("")).str.replace_all(r"\s*\n\s*", " "))
        .otherwise(text.str.replace_all("\n", " ", literal=True))
    )


def standalone_lines(lines: pl.DataFrame) -> pl.Series:
    """Per line, whether it stands alone in a hard-wrapped document: a sign-off, prompt or credit such as "REUTER",
    "Advertisement" or "Click here to subscribe to our newsletter" set on its own line without a blank line around.

    Candidates are complete lines (not of typewriter width running on: short, ending a sentence or before a break)
    neither starting nor followed by a lowercase letter. One stands alone when a pattern rule matches it, or when it
    follows a complete line and is a few words, no sentence, not ending in a function word ("REUTER"). For the rules,
    a line after a running-on line is running text when it ends the sentence begun above ("Oil World newsletter
    said." after "... the Hamburg-based"). Only the candidates get features and rules.
    """
    complete = ~(pl.col("_runs_on") & pl.col("_wrap_width"))
    candidate = pl.col("wrapped") & complete & pl.col("line").str.contains(r"^[^\s\p{Ll}]") & ~pl.col("_next_lower")
    index = lines.select(candidate.arg_true()).to_series()
    candidates = lines.select(
        pl.col("line").alias("t"), shift_in_doc(complete, 1).fill_null(True).alias("after_complete")
    )[index].with_columns(pl.col("t").str.strip_chars())
    sign_off = (
        (pl.col("n_words") <= SIGN_OFF_MAX_WORDS)
        & ~pl.col("ends_sentence")
        & ~pl.col("t").str.contains(DANGLING_END_RE)
        & pl.col("after_complete")
    )
    alone = (
        shape_features(candidates)
        .with_columns(pl.col("texty") | ~pl.col("after_complete") & pl.col("t").str.contains(r"[.!?](?:\W|$)"))
        .select(pattern_rule_expr().is_not_null() | sign_off)
    )
    return pl.repeat(False, lines.height, eager=True).scatter(index, alone.to_series())


def penalise_runs(lines: pl.DataFrame) -> pl.DataFrame:
    """Multiply each negative line score by its rank in the run of non-text lines it sits in (menus separate)."""
    run_start = doc_start() | (pl.col("score") > SHORT_SENTENCE_SCORE)
    negative = pl.col("score") < 0
    rank = cum_sum_since(negative.cast(pl.Int64), run_start).clip(upper_bound=RUN_RANK_CAP)
    return lines.with_columns(pl.when(negative).then(pl.col("score") * rank).otherwise(pl.col("score")).alias("score"))


def anchor_after_headline(lines: pl.DataFrame) -> pl.DataFrame:
    """Keep the main region from starting before a repeated headline line when most of the text follows it."""
    lines = lines.with_columns(
        pl.when(pl.col("rule") == "repeated_headline").then(pl.col("ln")).min().over("_doc").alias("_anchor")
    )
    anchor = pl.col("_anchor")
    positive = pl.col("score").clip(lower_bound=0)
    text_after = pl.when(pl.col("ln") > anchor).then(positive).otherwise(0).sum().over("_doc")
    anchored = (text_after >= ANCHOR_MIN_TEXT_SHARE * positive.sum().over("_doc")) & (text_after >= ANCHOR_MIN_WORDS)
    return lines.with_columns(
        pl.when(anchored & (pl.col("ln") < anchor)).then(EXCLUDED_SCORE).otherwise(pl.col("score")).alias("score")
    ).drop("_anchor")


def mark_region(lines: pl.DataFrame) -> pl.DataFrame:
    """Add `in_region`, per document the run of lines with the highest total score (maximum subarray, vectorised:
    best end = argmax of prefix sum minus the running minimum before it), and `before_region`.
    A document where no line scores positive keeps all its lines."""
    c_incl = cum_sum_in_doc(pl.col("score"))
    c_excl = c_incl - pl.col("score")
    lines = lines.with_columns(
        c_incl.alias("_c_incl"), c_excl.alias("_c_excl"), c_excl.cum_min().over("_doc").alias("_pmin")
    )
    lines = lines.with_columns((pl.col("_c_incl") - pl.col("_pmin")).alias("_gain"))
    lines = lines.with_columns(pl.col("_gain").max().over("_doc").alias("_best"))
    lines = lines.with_columns(
        pl.when(pl.col("_gain") == pl.col("_best")).then(pl.col("ln")).min().over("_doc").alias("_end")
    )
    lines = lines.with_columns(
        pl.when(pl.col("ln") == pl.col("_end")).then(pl.col("_pmin")).max().over("_doc").alias("_m")
    )
    lines = lines.with_columns(
        pl.when((pl.col("_c_excl") == pl.col("_m")) & (pl.col("ln") <= pl.col("_end")))
        .then(pl.col("ln"))
        .max()
        .over("_doc")
        .alias("_start")
    )
    in_region = (pl.col("_best") <= 0) | pl.col("ln").is_between(pl.col("_start"), pl.col("_end"))
    return lines.with_columns(
        in_region.alias("in_region"),
        (pl.col("ln") < pl.col("_start")).alias("before_region"),
    ).drop("_c_incl", "_c_excl", "_pmin", "_gain", "_best", "_end", "_m", "_start")


def headline_candidates(lines: pl.DataFrame) -> pl.DataFrame:
    """Per document, the first unflagged line if it looks like a headline.

    That is one short line, not a sentence, not ending in a function word, with few numbers and no date, near
    the top, never the last line, and followed by a blank line or, when in Title Case, by running text (not in
    a hard-wrapped document, where such a line starts a paragraph). Returns `text_title`, and `masthead_outlet`
    when the line ends in ' - <known outlet>' (that suffix is cut from the title).
    """
    first = (
        lines.filter(pl.col("rule").is_null())
        .filter(pl.col("_doc").is_first_distinct())  # rows are in line order
        .filter(  # the cheap tests first, then the regexes on the rows left
            pl.col("n_words").is_between(*HEADLINE_WORDS)
            & ~pl.col("texty")
            & (pl.col("n_numbers") <= HEADLINE_MAX_NUMBERS)
            & (pl.col("ln") <= HEADLINE_MAX_LINE)
            & pl.col("has_next")
            & (pl.col("next_blank") | pl.col("next_texty") & ~pl.col("wrapped"))
        )
        .filter(
            ~pl.col("t").str.contains(FULL_DATE_RE)
            & ~pl.col("t").str.contains(r"[.,;:!]\"?$")
            & ~pl.col("line").str.contains("\n")
            & ~pl.col("t").str.contains(DANGLING_END_RE)
        )
        .filter(pl.col("next_blank") | title_case_expr(pl.col("t")))
    )
    masthead = pl.col("t").str.extract(MASTHEAD_RE, 1)
    has_masthead = outlet_from_name_expr(masthead).is_not_null()
    return first.select(
        "_doc",
        pl.when(has_masthead).then(pl.col("t").str.replace(MASTHEAD_RE, "")).otherwise(pl.col("t")).alias("text_title"),
        pl.when(has_masthead).then(outlet_from_name_expr(masthead)).alias("masthead_outlet"),
    )


def include_lead_fragment(lines: pl.DataFrame) -> pl.DataFrame:
    """Add to the region the unflagged line right above it when that line is the wrapped start of its first
    sentence (sentence case, no final punctuation, no blank line in between), as in wire copy."""
    next_in_region = shift_in_doc(pl.col("in_region"), -1).fill_null(False)
    candidate = (
        pl.col("rule").is_null()
        & ~pl.col("in_region")
        & next_in_region
        & ~pl.col("next_blank")
        & pl.col("has_lower")
        & ~pl.col("ends_sentence")
        & (pl.col("n_words") >= FRAGMENT_MIN_WORDS)
    )
    # the title-case regex only on the few candidates
    fragments = lines.filter(candidate).filter(~title_case_expr(pl.col("t"))).select("_doc", "ln", _fragment=True)
    return (
        lines.join(fragments, on=["_doc", "ln"], how="left", maintain_order="left")
        .with_columns((pl.col("in_region") | pl.col("_fragment").fill_null(False)).alias("in_region"))
        .drop("_fragment")
    )


def cut_at_tail_marker(lines: pl.DataFrame) -> pl.DataFrame:
    """End the main region at a comments heading, or at a tags / author-bio line with more story above than below."""
    region_words = pl.when(pl.col("in_region") & pl.col("texty")).then(pl.col("n_words")).otherwise(0)
    lines = lines.with_columns(
        cum_sum_in_doc(region_words).alias("_before"), region_words.sum().over("_doc").alias("_total")
    )
    words_before = pl.col("_before")
    words_after = pl.col("_total") - words_before
    is_cut = (
        pl.col("in_region")
        & (words_before >= TAIL_MIN_WORDS_BEFORE)
        & (
            pl.col("rule").is_in(HARD_TAIL_RULES)
            | (pl.col("rule").is_in(SOFT_TAIL_RULES) & (words_before >= words_after))
        )
    )
    cut = pl.when(is_cut).then(pl.col("ln")).min().over("_doc")
    return lines.with_columns(
        (pl.col("in_region") & ~(pl.col("ln") > cut).fill_null(False)).alias("in_region")
    ).drop("_before", "_total")


def clean_articles(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Clean raw articles: returns (`articles` with body and metadata, `boilerplate` spans removed)."""
    docs = prepare_docs(raw)
    lines = classify_lines(split_lines(docs))
    docs = docs.join(headline_candidates(lines), on="_doc", how="left").with_columns(
        pl.coalesce(meta_expr("meta_title"), pl.col("text_title")).alias("title")
    )
    lines = mark_titles(lines, docs)
    lines = cut_at_tail_marker(include_lead_fragment(mark_region(anchor_after_headline(penalise_runs(lines)))))
    lines = label_outside_region(lines)
    articles = build_articles(docs, lines).select(*(c for c in raw.columns if c != "raw_text"), *ARTICLE_COLUMNS)
    return articles, build_boilerplate(docs, lines)


def prepare_docs(raw: pl.DataFrame) -> pl.DataFrame:
    """Number the documents, normalise their text and parse the optional ` date YYYY-MM-DD [url]` header."""
    docs = raw.with_row_index("_doc").with_columns(
        pl.col("raw_text").fill_null("").str.len_chars().cast(pl.Int64).alias("raw_chars"),
        normalize_text(raw["raw_text"]).alias("text"),
    )
    docs = docs.with_columns(pl.col("text").str.extract(HEADER_RE, 1).alias("header"))
    return docs.with_columns(
        pl.col("header").str.len_chars().fill_null(0).cast(pl.Int64).alias("header_len"),
        pl.col("header").str.extract(r"(https?://\S+)", 1).alias("header_url"),
        pl.col("header")
        .str.extract(r"(\d{4}-\d{2}-\d{2})", 1)
        .str.to_date("%Y-%m-%d", strict=False)
        .alias("header_date"),
    )


def classify_lines(lines: pl.DataFrame) -> pl.DataFrame:
    """Blocks with features, the first matching pattern rule, else `repeated_line` (a copy of one of the few blocks
    just above it, as with gallery captions) or `corpus_repeated` (a short non-sentence found in several documents
    of the batch)."""
    blocks = line_features(join_wrapped_lines(lines))
    blocks = blocks.with_columns((shift_in_doc(pl.col("t"), -1) == "").fill_null(True).alias("next_blank"))
    blocks = blocks.filter(pl.col("t") != "").with_columns(
        pl.col("_doc").n_unique().over("key").alias("key_docs"),
        shift_in_doc(pl.col("texty"), -1).fill_null(False).alias("next_texty"),
        shift_in_doc(pl.col("ln"), -1).is_not_null().alias("has_next"),
    )
    corpus_repeated = (
        (pl.col("key_docs") >= REPEATED_MIN_DOCS) & ~pl.col("ends_sentence") & (pl.col("n_words") <= REPEATED_MAX_WORDS)
    )
    echoes_neighbour = pl.any_horizontal(
        pl.col("key") == shift_in_doc(pl.col("key"), k) for k in range(1, ECHO_WINDOW + 1)
    ).fill_null(False) & (pl.col("n_words") >= ECHO_MIN_WORDS)
    return blocks.with_columns(
        pl.when(pl.col("n_words") == 0)
        .then(pl.lit("separator"))
        .otherwise(
            pl.coalesce(
                pattern_rule_expr(),
                pl.when(echoes_neighbour).then(pl.lit("repeated_line")),
                pl.when(corpus_repeated).then(pl.lit("corpus_repeated")),
            )
        )
        .alias("rule")
    )


def mark_titles(lines: pl.DataFrame, docs: pl.DataFrame) -> pl.DataFrame:
    """Label headline lines (first: `headline`, later: `repeated_headline`) and set the region score of flagged lines.

    Flagged in-article lines (captions, credits, ...) score 0 so they do not split the story; page furniture keeps
    a negative score so it separates the story from menus and link lists.
    """
    lines = lines.join(
        docs.select("_doc", normalized_key_expr(pl.col("title")).alias("title_key")), on="_doc", how="left",
        maintain_order="left",  # later steps need each document's lines together and in order
    )
    is_title = (pl.col("n_words") > 0) & (pl.col("key") == pl.col("title_key")) | (
        ~pl.col("texty")
        & (pl.col("n_words") >= 4)
        & pl.col("title_key").str.contains(pl.col("key"), literal=True).fill_null(False)
    )
    lines = lines.with_columns(is_title.alias("_title"))
    is_title = pl.col("_title")
    first_title = is_title & (pl.col("ln") == pl.when(is_title).then(pl.col("ln")).min().over("_doc"))
    lines = lines.with_columns(
        pl.when(first_title)
        .then(pl.lit("headline"))
        .when(is_title)
        .then(pl.lit("repeated_headline"))
        .otherwise(pl.col("rule"))
        .alias("rule")
    )
    return lines.with_columns(
        pl.when(pl.col("rule").is_null())
        .then(pl.col("score"))
        .when(pl.col("rule").is_in(PAGE_FURNITURE_RULES))
        .then(non_text_score_expr())
        .otherwise(0)
        .alias("score")
    ).drop("_title")


def label_outside_region(lines: pl.DataFrame) -> pl.DataFrame:
    """Name the unflagged lines outside the main region (standfirst, navigation, trailing related list); lines
    repeated across the batch are kept when they sit inside the main region."""
    return lines.with_columns(
        pl.when(pl.col("in_region") & (pl.col("rule") == "corpus_repeated"))
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.col("rule").is_not_null() | pl.col("in_region"))
        .then(pl.col("rule"))
        .when(pl.col("before_region") & pl.col("has_lower") & (pl.col("n_words") >= STANDFIRST_MIN_WORDS))
        .then(pl.lit("standfirst"))
        .when(pl.col("before_region") | (pl.col("n_words") < 3))
        .then(pl.lit("navigation"))
        .otherwise(pl.lit("related_list"))
        .alias("rule")
    )


def build_articles(docs: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """Join each document's kept lines into its body and add the metadata columns."""
    bodies = (
        lines.filter(pl.col("rule").is_null())
        .group_by("_doc")
        .agg(  # a document's rows are in line order
            pl.col("t").str.join("\n").alias("body"),
            # equals normalized_key_expr(body): keys are per character class, lines end in a non-word "\n"
            pl.col("key").filter(pl.col("key") != "").str.join(" ").alias("body_key"),
        )
    )
    first_date = (
        lines.filter((pl.col("ln") < DATELINE_SEARCH_LINES) & (pl.col("n_words") <= DATELINE_MAX_WORDS))
        .with_columns(inline_date_expr(pl.col("t")).alias("inline_date"))
        .filter(pl.col("inline_date").is_not_null())
        .filter(pl.col("_doc").is_first_distinct())
        .select("_doc", "inline_date")
    )
    docs = docs.join(bodies, on="_doc", how="left").join(first_date, on="_doc", how="left")
    return add_metadata(docs).sort("_doc")


def build_boilerplate(docs: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """One row per removed span: the header prefix and every flagged line block."""
    header_spans = docs.filter(pl.col("header_len") > 0).select(
        "_doc",
        pl.lit("metadata_header").alias("rule"),
        detached(pl.col("header")).alias("text"),
        pl.lit(0, dtype=pl.Int64).alias("char_start"),
        pl.col("header_len").alias("char_end"),
        pl.lit(-1, dtype=pl.Int64).alias("ln"),
    )
    line_spans = lines.filter(pl.col("rule").is_not_null()).select(
        "_doc", "rule", detached(pl.col("line")).alias("text"), "char_start", "char_end", pl.col("ln").cast(pl.Int64)
    )
    return (
        pl.concat([header_spans, line_spans], how="vertical_relaxed")
        .join(docs.select("_doc", "article_id"), on="_doc")
        .sort("_doc", "ln")
        .select(pl.col(name).cast(dtype) for name, dtype in BOILERPLATE_SCHEMA.items())
    )


def body_key_expr() -> pl.Expr:
    """What `content_hash` hashes: the normalised body (`body_key`), or the article id when no text is left (empty
    bodies are not copies of one another)."""
    key = pl.col("body_key").fill_null("")
    return pl.when(key == "").then(pl.concat_str(pl.lit("empty body of "), pl.col("article_id"))).otherwise(key)


def add_metadata(docs: pl.DataFrame) -> pl.DataFrame:
    """Derive url, outlet, published_date, cleaned body, sizes and content hash."""
    url = pl.coalesce(pl.col("header_url"), meta_expr("meta_url"))
    url_date = url.str.extract_groups(URL_DATE_RE)
    body = repair_glue_expr(pl.col("body").fill_null(""))
    # the outlet-name regex only on the texts with a cue verb (a fast literal search)
    cue = pl.when(pl.col("text").str.contains(f"(?i){CUE_VERBS}")).then(pl.col("text")).str.extract(CUE_RE, 1)
    docs = docs.with_columns(
        url.alias("url"),
        pl.coalesce(
            outlet_from_name_expr(pl.col("meta_outlet")),  # a known outlet's canonical name ("reuters.com")
            meta_expr("meta_outlet"),
            outlet_from_domain_expr(url),
            outlet_from_name_expr(cue),
            pl.col("masthead_outlet"),
        ).alias("outlet"),
        pl.coalesce(
            pl.col("meta_published").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False),
            inline_date_expr(pl.col("meta_published")),
            pl.col("header_date"),
            date_from_parts_expr(url_date.struct[0], url_date.struct[1], url_date.struct[2]),
            pl.col("inline_date"),
        ).alias("published_date"),
        body.alias("body"),
    )
    return docs.with_columns(
        pl.col("body").str.len_chars().cast(pl.Int64).alias("clean_chars"),
        stable_id_expr(body_key_expr()).alias("content_hash"),
    )
