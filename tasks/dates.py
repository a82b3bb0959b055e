"""Event dates from a sentence's date expressions and the article's published_date (vectorised)."""

from __future__ import annotations

import polars as pl

MONTHS = [
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december",
]  # fmt: skip
MONTH_RE = (
    r"(January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan\.?|Feb\.?|Mar\.?|Apr\.?|Jun\.?|Jul\.?|Aug\.?|Sept?\.?|Oct\.?|Nov\.?|Dec\.?)"
)


def bound_re(words: str, adjacent: str = "") -> str:
    """Optional group capturing a word (any case) that bounds a period, up to 60 characters before a date, or one
    of the `adjacent` words right before it; not an end bounding the time of day of the date right after it
    ("before dawn on March 3", "until the evening of 4 May": the date is the event's)."""
    right_before = rf"|(?:{adjacent})\s+" if adjacent else ""
    time_of_day = rf"(?:{END_WORDS})\s+(?:the\s+)?(?:{TIMES_OF_DAY})\s+(?:on|of)\s+(?:the\s+)?"
    return rf"(?:(?-u:\b)(?i:{time_of_day}|((?:{words})(?-u:\b)[^.,;]{{0,60}}?{right_before})))?"


END_WORDS = "until|till|before"
PERIOD_WORDS = "since|" + END_WORDS  # "since dawn on March 3" starts a period on that day, as "since March 3" does
TIMES_OF_DAY = "dawn|daybreak|sunrise|first light|morning|noon|midday|afternoon|evening|dusk|sunset|nightfall|midnight"
# "from" bounds a period only right before its date ("from March 1 to 5", not "withdrew from Kherson on May 2")
BOUND_RE = bound_re(PERIOD_WORDS, adjacent="from")
MONTH_BOUND_RE = bound_re(PERIOD_WORDS)
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
# substrings (case-sensitive) without which a sentence holds no relative or month date (a cheap pre-filter)
DATE_WORDS = [
    *[m[:3].title() for m in MONTHS],
    *[d.title() for d in WEEKDAYS],
    *["yesterday", "Yesterday", "today", "Today", "tonight", "this morning", "next day", "following day"],
    "day later",
]
WEEKDAY_RE = r"(?-u:\b)(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)(?-u:\b)"
# what a month-and-day date needs ("July 14", "14th Jul."): a cheap test before the costly regexes
MONTH_PREFIX_RE = "(?:" + "|".join(m[:3].title() for m in MONTHS) + ")"
DAY_MONTH_HINT_RE = MONTH_PREFIX_RE + r"[a-z.]*\s+\d|\d(?i:st|nd|rd|th)?\s+" + MONTH_PREFIX_RE


def month_number(expr: pl.Expr) -> pl.Expr:
    """1..12 from a month name or abbreviation."""
    abbrev = expr.str.to_lowercase().str.slice(0, 3)
    return abbrev.replace_strict({m[:3]: i + 1 for i, m in enumerate(MONTHS)}, default=None, return_dtype=pl.Int32)


def safe_date(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    """Date from parts, null when the parts are no valid date (e.g. 31 November)."""
    part = lambda e, w: e.cast(pl.String).str.zfill(w)  # noqa: E731
    return pl.concat_str([part(year, 4), part(month, 2), part(day, 2)], separator="-").str.to_date(
        "%Y-%m-%d", strict=False
    )


def resolve_dates(sentences: pl.DataFrame) -> pl.DataFrame:
    """Add `event_date` (Date|null) and `date_precision` ('day'|'month'|null) to sentences.

    Needs columns article_id, sentence_index, sentence, published_date. In order of preference: an ISO date; a
    month and day ("July 14", "14 July", year from the text or the latest such date not after the day after
    publication); a month and year ("in March 2024" -> first of the month); "yesterday"/"today"; a weekday ("on
    Tuesday" -> the latest Tuesday on or before publication); "the next day" (the day after the previous dated
    sentence). Sentences without an expression, and those whose date is past the day after publication (a plan,
    not an event yet), take the published date; without any anchor the date stays null.
    """
    pub = pl.col("published_date")
    s = pl.col("sentence")
    iso = s.str.extract(r"(?-u:\b)(\d{4}-\d{2}-\d{2})(?-u:\b)").str.to_date("%Y-%m-%d", strict=False)
    # a date after "since/until/before" bounds a period and is not the event's date
    md = s.str.extract_groups(BOUND_RE + MONTH_RE + r"\s+(\d{1,2})(?i:st|nd|rd|th)?(?-u:\b)(?:,?\s+(\d{4}))?")
    dm = s.str.extract_groups(BOUND_RE + r"(?-u:\b)(\d{1,2})(?i:st|nd|rd|th)?\s+" + MONTH_RE + r"(?:,?\s+(\d{4}))?")
    my = s.str.extract_groups(
        MONTH_BOUND_RE + r"(?-u:\b)(?:[Ii]n|[Bb]y|of)\s+" + MONTH_RE + r"(?:,?\s+(\d{4}))?(?-u:\b)"
    )
    day_month = s.str.contains(DAY_MONTH_HINT_RE)
    month_day = sentences.filter(day_month).with_columns(
        _m=pl.coalesce(
            pl.when(md.struct[0].is_null()).then(month_number(md.struct[1])),
            pl.when(dm.struct[0].is_null()).then(month_number(dm.struct[2])),
        ),
        _d=pl.coalesce(
            pl.when(md.struct[0].is_null()).then(md.struct[2]), pl.when(dm.struct[0].is_null()).then(dm.struct[1])
        ).cast(pl.Int32, strict=False),
        _y=pl.coalesce(
            pl.when(md.struct[0].is_null()).then(md.struct[3]), pl.when(dm.struct[0].is_null()).then(dm.struct[3])
        ).cast(pl.Int32, strict=False),
    )
    frame = pl.concat([month_day, sentences.filter(~day_month)], how="diagonal").with_columns(
        _iso=iso,
        _mm=pl.when(my.struct[0].is_null()).then(month_number(my.struct[1])),
        _my=pl.when(my.struct[0].is_null()).then(my.struct[2]).cast(pl.Int32, strict=False),
        _wd=s.str.extract(WEEKDAY_RE)
        .str.to_lowercase()
        .replace_strict({d: i + 1 for i, d in enumerate(WEEKDAYS)}, default=None, return_dtype=pl.Int32),
        _rel=s.str.extract(
            r"(?i)(?-u:\b)(yesterday|today|tonight|this morning|(?:the )?(?:next|following) day|a day later)(?-u:\b)"
        ).str.to_lowercase(),
    )
    pub_year = pub.dt.year().cast(pl.Int32)
    md_date = safe_date(pl.coalesce("_y", pub_year), pl.col("_m"), pl.col("_d"))
    md_date = (
        pl.when(pl.col("_y").is_null() & (md_date > pub + pl.duration(days=1)))
        .then(safe_date(pub_year - 1, pl.col("_m"), pl.col("_d")))
        .otherwise(md_date)
    )
    my_date = safe_date(pl.coalesce("_my", pub_year), pl.col("_mm"), pl.lit(1))
    my_date = (
        pl.when(pl.col("_my").is_null() & (my_date > pub))
        .then(safe_date(pub_year - 1, pl.col("_mm"), pl.lit(1)))
        .otherwise(my_date)
    )
    back = ((pub.dt.weekday().cast(pl.Int32) - pl.col("_wd")) % 7).cast(pl.Int64)
    weekday_date = pub - pl.duration(days=back)
    rel = pl.col("_rel")
    explicit = (
        pl.when(pl.col("_iso").is_not_null())
        .then(pl.col("_iso"))
        .when(pl.col("_m").is_not_null() & pl.col("_d").is_between(1, 31))
        .then(md_date)
        .when(pl.col("_mm").is_not_null())
        .then(my_date)
        .when(rel == "yesterday")
        .then(pub - pl.duration(days=1))
        .when(rel.is_in(["today", "tonight", "this morning"]))
        .then(pub)
        .when(pl.col("_wd").is_not_null())
        .then(weekday_date)
    )
    precision = pl.when(pl.col("_mm").is_not_null() & pl.col("_m").is_null() & pl.col("_iso").is_null()).then(
        pl.lit("month")
    )
    frame = frame.with_columns(_explicit=explicit).sort("article_id", "sentence_index")
    anchor = pl.col("_explicit").forward_fill().shift(1).over("article_id")
    next_day = rel.str.contains("next|following|later").fill_null(False)
    event_date = (
        pl.when(pl.col("_explicit").is_not_null())
        .then(pl.col("_explicit"))
        .when(next_day)
        .then(pl.coalesce(anchor, pub) + pl.duration(days=1))
        .otherwise(pub)
    )
    planned = (event_date > pub + pl.duration(days=1)).fill_null(False)
    event_date = pl.when(planned).then(pub).otherwise(event_date)
    precision = pl.when(~planned).then(precision)
    return frame.with_columns(
        event_date=event_date,
        date_precision=pl.when(event_date.is_not_null()).then(pl.coalesce(precision, pl.lit("day"))),
    ).drop("_iso", "_m", "_d", "_y", "_mm", "_my", "_wd", "_rel", "_explicit")
