"""Line features, region scores and pattern rules used by the clean stage to recognise boilerplate lines.

Each rule is a polars expression over the columns made by `line_features`; the first matching rule names
the boilerplate. Rules describe generic page furniture (credits, players, prompts, link lists), in a few
languages where cheap, never one site's markup.

Region score of a line: running text (8+ words ending a sentence, or 20+ words) scores its word count; a short
sentence or a line with numbers scores a little; anything else (menus, labels) scores negative.
"""

from __future__ import annotations

import polars as pl

MONTH_NAME_RE = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
FULL_DATE_RE = (
    rf"(?i)\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH_NAME_RE},?\s+\d{{4}}|"
    rf"{MONTH_NAME_RE}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|"
    r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4})\b"
)
TIMESTAMP_ONLY_RE = (
    rf"(?i)^[\W_]*(?:(?:first|updated|published|posted|modified|last|on|at|am|pm|a\.m|p\.m|of|{MONTH_NAME_RE}|"
    r"(?:mon|tues|wednes|thurs|fri|satur|sun)day|mon|tue|wed|thu|fri|sat|sun|"
    r"[ecmpa][sd]?t|gmt|utc|bst|cet|cest|hst|hkt|ist|msk|jst|aest|\d+(?:st|nd|rd|th|am|pm|h)?)\b[\W_]*)+$"
)
SENTENCE_END_RE = r"[.!?。！？][\"')\]»」]*$"
CJK_RE = r"[\p{Han}\p{Hiragana}\p{Katakana}]"
# a run of non-word characters (underscore included) other than a lone space: what `key` turns into one space
# (replacing a lone space by a space changes nothing, and skipping those runs saves a match per word)
KEY_SEPARATOR_RE = r"[\W_]*(?:[^\w ]|_| {2})[\W_]*"
AGENCIES = r"(?:EPA|AFP|AP|Reuters|Getty Images|Getty|Shutterstock|Bloomberg|Xinhua|TASS|Sputnik|Anadolu|PA|UPI|MEGA)"

TEXTY_MIN_WORDS = 8
TEXTY_LONG_WORDS = 20
SHORT_SENTENCE_SCORE = 2
NON_TEXT_PENALTY = 3
NON_TEXT_WORD_PENALTY_CAP = 10
TEXTY_SCORE_CAP = 80
NUMERIC_LINE_MIN_NUMBERS = 1
NUMERIC_LINE_SCORE = 1
SHORT_LINE_WORDS = 12
COMMENT_LINE_MAX_WORDS = 30
BYLINE_WITH_DATE_MAX_WORDS = 25
ICON_FONT_MIN_SHARE = 0.25


def normalized_key_expr(text: pl.Expr) -> pl.Expr:
    """Lowercase, punctuation-insensitive, whitespace-collapsed form used for comparisons and hashing."""
    return text.str.to_lowercase().str.replace_all(KEY_SEPARATOR_RE, " ").str.strip_chars()


def is_ascii_expr(text: pl.Expr) -> pl.Expr:
    """The text is pure ASCII (as many bytes as characters)."""
    return text.str.len_bytes() == text.str.len_chars()


def word_count_expr(text: pl.Expr) -> pl.Expr:
    """Runs of word characters plus half the CJK characters (searched for only in texts outside ASCII)."""
    cjk = pl.when(~is_ascii_expr(text)).then(text).str.count_matches(CJK_RE).fill_null(0)
    return text.str.count_matches(r"\w+") + cjk // 2


def key_word_count_expr() -> pl.Expr:
    """`word_count_expr` of `t`, read from its `key` where that is exact (ASCII text without "_", where the key's
    words are the text's): one more than its spaces, a cheap literal count instead of a regex match per word."""
    plain = is_ascii_expr(pl.col("t")) & ~pl.col("t").str.contains("_", literal=True)
    key_words = pl.col("key").str.count_matches(" ", literal=True) + (pl.col("key") != "").cast(pl.UInt32)
    return pl.when(plain).then(key_words).otherwise(word_count_expr(pl.when(~plain).then(pl.col("t"))))


def shape_features(lines: pl.DataFrame, n_words: pl.Expr | None = None) -> pl.DataFrame:
    """From block text `t`, add what the pattern rules read: word count (`n_words` if given, else
    `word_count_expr`), sentence shape, running text (`texty`)."""
    t = pl.col("t")
    lines = lines.with_columns(
        (word_count_expr(t) if n_words is None else n_words).alias("n_words"),
        t.str.contains(SENTENCE_END_RE).alias("ends_sentence"),
    )
    texty = ~pl.col("t").str.contains(r"(?:\.\.\.|…)$") & (
        ((pl.col("n_words") >= TEXTY_MIN_WORDS) & pl.col("ends_sentence")) | (pl.col("n_words") >= TEXTY_LONG_WORDS)
    )
    return lines.with_columns(texty.alias("texty"))


def line_features(lines: pl.DataFrame) -> pl.DataFrame:
    """From block text `t`, add the shape features, comparison `key`, numbers and `score`."""
    t = pl.col("t")
    lines = lines.with_columns(
        normalized_key_expr(t).alias("key")
    )
    lines = shape_features(lines, key_word_count_expr()).with_columns(
        t.str.contains(r"\p{Ll}").alias("has_lower"),
        t.str.count_matches(r"\d+(?:[.,]\d+)*").alias("n_numbers"),
    )
    score = (
        pl.when(pl.col("n_words") == 0)
        .then(0)
        .when(pl.col("texty"))
        .then(pl.col("n_words").clip(upper_bound=TEXTY_SCORE_CAP))
        .when(pl.col("ends_sentence") & pl.col("has_lower") & (pl.col("n_words") >= 2))
        .then(SHORT_SENTENCE_SCORE)
        .when(pl.col("n_numbers") >= NUMERIC_LINE_MIN_NUMBERS)
        .then(NUMERIC_LINE_SCORE)
        .otherwise(non_text_score_expr())
    )
    return lines.with_columns(score.cast(pl.Int64).alias("score"))


def non_text_score_expr() -> pl.Expr:
    """Negative score of a line that is not running text: longer menu items weigh more, up to a cap."""
    return -NON_TEXT_PENALTY - pl.col("n_words").clip(upper_bound=NON_TEXT_WORD_PENALTY_CAP)


def _text_where(condition: pl.Expr) -> pl.Expr:
    """The block text on the rows where `condition` holds, "" elsewhere: a regex over it skips the other rows."""
    return pl.when(condition).then(pl.col("t")).otherwise(pl.lit(""))


def _matches(pattern: str, where: pl.Expr | None = None) -> pl.Expr:
    """The block text matches the regex; with `where`, tested only on the rows where that holds (false elsewhere)."""
    if where is None:
        return pl.col("t").str.contains(pattern)
    return where & _text_where(where).str.contains(pattern)


SHORT = pl.col("n_words") <= SHORT_LINE_WORDS
TIMESTAMP_ONLY = _matches(TIMESTAMP_ONLY_RE, SHORT & ~pl.col("ends_sentence"))

LINE_RULES: list[tuple[str, pl.Expr]] = [
    (
        "icon_font",  # icon names glued together ("icon bookmarkicon camera"), not a story about silicon
        pl.col("t").str.count_matches(r"(?i)icon") >= (ICON_FONT_MIN_SHARE * pl.col("n_words")).clip(lower_bound=5),
    ),
    (
        "media_timestamp",
        _matches(r"(?i)^(?:podcasts?|listen|play|pause|mute)$")
        | _matches(r"^\d{1,2}(?::\d{0,2}){1,2}(?:\s*/\s*\d{1,2}(?::\d{0,2}){1,2})?$")
        | _matches(r"^(?:\d{1,2}:\d{2}\s*){2,}$"),
    ),
    (
        "gallery",
        _matches(r"(?i)^(?:(?:image|photo|slide|picture)s?\s+)?\d+\s*(?:of|/)\s*/?\s*\d*$")
        | _matches(
            r"(?i)^(?:caption|hide caption|toggle caption|close|expand|enlarge this image|back to gallery|view gallery|"
            r"next|previous|prev|fullscreen|full screen)$"
        ),
    ),
    (
        "timestamp",
        TIMESTAMP_ONLY & (_text_where(TIMESTAMP_ONLY).str.count_matches(FULL_DATE_RE) == 1),
    ),
    ("url_line", _matches(r"^(?:https?://|www\.)\S+$")),
    (
        "photo_credit",
        _matches(r"(?i)^\(?(?:photos?|images?|pictures?|credits?|source|video|illustration)\s*(?:by|:|credit)", SHORT)
        | _matches(rf"^(?:By:\s*)?{AGENCIES}(?:\s*/\s*[\w .]+)?$", SHORT),
    ),
    (
        "caption",
        _matches(r"\bBy:\s*[^.!?]{1,60}$")
        | _matches(r"^\d+ of \d+\s+\S")
        | _matches(rf"[.!?\"]\s+(?:[A-Z][\w.&-]*\s+){{0,3}}{AGENCIES}(?:\s*/\s*[\w .]+)?$")
        | _matches(r"(?i)\bcredits?\s*(?:\.\.\.|:)\s*\S")
        | _matches(r"(?i)\((?:[^()]{0,40}[\s/])?(?:photo|image|picture|getty images|file)s?\b[^()]*\)$"),
    ),
    (
        "contact_for_comment",
        _matches(
            r"(?i)\b(?:has|have|had)\s+(?:contacted|reached out to|asked)\b.{0,120}"
            r"\bfor\s+(?:a\s+)?(?:comment|response|reaction)",
            pl.col("n_words") <= COMMENT_LINE_MAX_WORDS,
        ),
    ),
    (
        "share_prompt",
        _matches(
            r"(?i)^(?:share(?: this(?: article| story)?| on \w+)?|tweet|e-?mail|print|whatsapp|facebook|twitter|"
            r"linkedin|pinterest|reddit|telegram|copy(?: the)? link|follow(?: us)?\b.*|subscribe\b.*|"
            r"sign (?:up|in)\b.*|log ?in|"
            r"register|read more|click here\b.*|save(?: article)?|bookmark|jump to comments|"
            r"show comments|leave a comment|listen to this article.*|download (?:the )?app.*)$",
            SHORT,
        )
        | _matches(
            r"(?i)^(?:(?:share|whatsapp|facebook|twitter|google\+?|pinterest|pint|linkedin|e-?mail|print|reddit|tumblr|telegram|"
            r"messenger|tweet|flipboard|pocket|sms|copy link|share (?:this|on|via)\b.*)\W*){2,}$"
        ),
    ),
    (
        "cookie_newsletter",
        _matches(
            r"(?i)\b(?:we|this (?:web)?site|our (?:web)?site) uses? cookies\b|\b(?:accept(?: all)?|use of) cookies\b|"
            r"\bcookies? (?:policy|settings|consent|preferences)\b|\ball rights reserved\b|\byour inbox\b|"
            r"\b(?:sign up|subscribe) (?:for|to) (?:our|the|my) .{0,40}newsletters?\b|\bnewsletter sign ?up\b|"
            r"\bad ?blocker\b|\benable javascript\b|©|\(c\) \d{4}"
        )
        | _matches(
            r"(?i)\b(?:cookies?|newsletters?|unsubscribe|privacy (?:policy|notice|settings)|"
            r"terms (?:of|and) (?:use|service|conditions))\b",
            ~pl.col("texty"),
        ),
    ),
    (
        "advertisement",
        _matches(
            r"(?i)^(?:advertisement|advertising|ad|sponsored(?: content)?|continue reading(?: the main story| below)?|"
            r"story continues(?: below)?(?: advertisement)?|supported by|skip (?:to|advertisement)\b.*|"
            r"scroll to continue.*)$"
        ),
    ),
    (
        "byline",
        _matches(
            r"^(?i:by)\s+[A-Z][\w.'-]*(?:\s+(?:[A-Z][\w.'-]*|and|&|,|in|for))*(?:\s*[,|-]\s*.*)?$",
            (pl.col("n_words") <= 10) & ~pl.col("ends_sentence"),
        )
        | _matches(FULL_DATE_RE, _matches(r"^(?i:by)\s+\p{Lu}", pl.col("n_words") <= BYLINE_WITH_DATE_MAX_WORDS))
        | _matches(
            r"(?i)^(?:written|researched|edited|reported|compiled|produced|reviewed|fact-checked) by:?\s", SHORT
        ),
    ),
    (
        "comments",
        _matches(
            r"(?i)^\W*(?:\d+\s+)?(?:comments?|responses?|replies)\W*$"
            r"|^(?:top rated|show|view|load|read|post a|leave a|add a)\s+(?:\w+\s+)?(?:comments?|reply)\b"
            r"|^join the (?:conversation|discussion)|^(?:discussion|comments) \(\d+\)",
            SHORT,
        ),
    ),
    (
        "author_bio",
        _matches(
            r"^(?i:about|sobre|über|a propos de|à propos de|acerca de|o autorze|об авторе)\s+(?:the author|\p{Lu})",
            SHORT & ~pl.col("ends_sentence"),
        ),
    ),
    ("tags", _matches(r"(?i)^(?:tags?|topics?|filed under|categories|category|keywords)\s*:", SHORT)),
    (
        "related_list",
        _matches(
            r"(?i)^(?:related|read (?:more|also|next)|see also|more (?:from|in|on|stories|news)\b|"
            r"you (?:may|might) also (?:like|be interested in)|recommended|most (?:read|popular|viewed|shared)|"
            r"trending|top stories|latest (?:news|stories))",
            SHORT & ~pl.col("texty"),
        ),
    ),
]


def pattern_rule_expr() -> pl.Expr:
    """Name of the first rule in `LINE_RULES` that the block matches; null if none does. (A coalesce, not a chain
    of when/otherwise: polars plans the nested chain of 16 rules in ~25 ms per call, a fixed cost of every batch.)"""
    return pl.coalesce([pl.when(condition).then(pl.lit(name)) for name, condition in LINE_RULES])


HARD_TAIL_RULES = ("comments",)
SOFT_TAIL_RULES = ("tags", "author_bio")
PAGE_FURNITURE_RULES = (
    "share_prompt",
    "cookie_newsletter",
    "related_list",
    "comments",
    "tags",
    "author_bio",
    "corpus_repeated",
)
