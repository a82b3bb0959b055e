"""Quotations in article bodies and their speakers (vectorised regexes plus joins to the article's people)."""

from __future__ import annotations

import re

import polars as pl

from tasks.actors import name_key, role_words
from tasks.ids import stable_id_expr
from tasks.phrases import POS_SCALE
from tasks.sentences import TOKEN_RE

# every character falls in one segment: a closed curly or straight quotation (a straight one may run over a
# wrapped line, not a paragraph break), the text between, or a stray mark
SEGMENT_RE = r"“[^“”]*”|\"(?:[^\"\n]|\n[^\s\"])*\"|[^“\"]+|[“\"]"
VERBS = (
    r"(?:said|says|added|told [A-Za-z ]{0,30}?|explained|noted|stressed|declared|insisted|wrote|stated|argued|warned"
    r"|continued|emphasi[sz]ed|replied|responded|suggested|described|called|pointed out|was quoted as saying"
    r"|is quoted as saying)"
)
ROLE = (
    r"(?:minister|diplomat|spokesman|spokeswoman|spokesperson|president|official|secretary|leader|chancellor"
    r"|ambassador|envoy|general|commander|premier|chief|head)"
)
# Latin letters only: small character classes keep these regexes fast
UPPER = r"[A-ZÀ-ÞĀ-Ž]"
LETTER = r"[A-Za-zÀ-ÿĀ-ž’'-]"
NAME = rf"((?:{UPPER}(?:{LETTER}+|\.)\s+){{0,3}}{UPPER}{LETTER}+)"
# after the quote a name may follow its titles: "said NATO Secretary General Jens Stoltenberg"
TITLED_NAME = rf"((?:{UPPER}(?:{LETTER}+|\.)\s+){{0,6}}{UPPER}{LETTER}+)"
APPOSITIVE = r"(?:,[^,.“”\"]{1,60},)?"
AFTER_NAME_VERB = r"^[\s,.]*" + TITLED_NAME + APPOSITIVE + r"\s+" + VERBS + r"(?-u:\b)"
AFTER_VERB_NAME = r"^[\s,.]*" + VERBS + r"\s+" + TITLED_NAME
AFTER_PRONOUN = r"^[\s,.]*(?i:he|she|the\s+(?:[a-z-]+\s+){0,2}" + ROLE + r")\s+" + VERBS + r"(?-u:\b)"
# speaker before the quote: "X said: “", "X, the Dutch representative, said it was “", "he stressed that “"
LEAD_OUT = r"(?-u:\b)[^.“”\"]{0,45}$"
BEFORE_NAME = NAME + APPOSITIVE + r"\s+(?:also\s+)?(?:" + VERBS + r"|saying)" + LEAD_OUT
# a lead-in verb ends at most 45 characters before the quote and is at most 35 long ("told reporters in ...")
VERB_REACH = 80
BEFORE_PRONOUN = (
    r"(?i:(?-u:\b)(?:he|she|the\s+(?:[a-z-]+\s+){0,2}" + ROLE + r")\s+(?:also\s+)?(?:" + VERBS + r"))" + LEAD_OUT
)


def extract_quotes(articles: pl.DataFrame, sentences: pl.DataFrame, people: pl.DataFrame) -> pl.DataFrame:
    """One row per quotation of at least three words, with its speaker resolved to an article person.

    A named speaker ("..., Stoltenberg said" / "said Sikorski" / "X said: “...”") is matched by surname to the
    article's people (full name and code); "he said" or "the minister explained" resolves to the last person
    named before the quote. `people`: article_id, sentence_index, ti, actor, code, name_key.
    """
    segments = (
        articles.select("article_id", "story_id", "body", pl.col("body").str.extract_all(SEGMENT_RE).alias("seg"))
        .explode("seg")
        .drop_nulls("seg")
        .with_columns(n=pl.col("seg").str.len_chars())
        .with_columns(char_start=(pl.col("n").cum_sum().over("article_id") - pl.col("n")).cast(pl.Int64))
        .filter(pl.col("seg").str.starts_with("“") | pl.col("seg").str.starts_with('"'))
        .filter(pl.col("seg").str.count_matches(r"\s+") >= 2)
        .with_columns(
            char_end=pl.col("char_start") + pl.col("n"),
            quote=pl.col("seg").str.strip_chars('“”" ').str.strip_chars(),
        )
    )
    segments = segments.with_columns(
        after=pl.col("body").str.slice(pl.col("char_end"), 120),
        before=pl.col("body")
        .str.slice(pl.max_horizontal(pl.col("char_start") - 150, 0), pl.min_horizontal(pl.col("char_start"), 150))
        .str.extract(r"([^.!?\n]*)$"),
    )
    # the costly lead-in regexes only where their verb occurs near the end of the lead-in
    tail = pl.col("before").str.slice(-VERB_REACH)
    before_verb = pl.when(tail.str.contains(r"(?:" + VERBS + r"|saying)")).then(pl.col("before"))
    before_verb_any_case = pl.when(tail.str.contains(r"(?i:" + VERBS + r")")).then(pl.col("before"))
    after_run = pl.coalesce(pl.col("after").str.extract(AFTER_NAME_VERB), pl.col("after").str.extract(AFTER_VERB_NAME))
    # after a quote ending its sentence and line, a titled subject on the next line starts a new statement
    # ("... that.”\nEstonian Defense Minister Kalle Laanet said ..."); a bare name is the quote's speaker
    ends_line = pl.col("seg").str.contains(r"[.!?][”\"]$") & pl.col("after").str.contains(r"^[ \t]*\n")
    named = pl.coalesce(
        pl.when(~ends_line | (without_titles(after_run) == after_run)).then(after_run),
        before_verb.str.extract(BEFORE_NAME),
    )
    anaphoric = pl.col("after").str.contains(AFTER_PRONOUN) | before_verb_any_case.str.contains(
        BEFORE_PRONOUN
    ).fill_null(False)
    segments = segments.with_columns(named=last_words(without_titles(named)), anaphoric=anaphoric).with_columns(
        named=pl.when(pl.col("named").str.contains(r"^(?:He|She|It|They|We|I|The|This)(?-u:\b)"))
        .then(None)
        .otherwise("named")
    )
    # sentence and token position of the quote start, to find the last person named before it
    located = (
        segments.sort("article_id", "char_start")
        .join_asof(
            sentences.select("article_id", "sentence_index", pl.col("char_start").alias("s_start"), "sentence").sort(
                "article_id", "s_start"
            ),
            left_on="char_start",
            right_on="s_start",
            by="article_id",
            strategy="backward",
            check_sortedness=False,
        )
        .with_columns(
            ti=pl.col("sentence")
            .str.slice(0, pl.col("char_start") - pl.col("s_start"))
            .str.count_matches(TOKEN_RE)
            .cast(pl.Int64),
        )
        .with_columns(pos=pl.col("sentence_index") * POS_SCALE + pl.col("ti"))
        .sort("pos")
    )
    persons = people.with_columns(pos=pl.col("sentence_index") * POS_SCALE + pl.col("ti")).sort("pos")
    last = persons.select("article_id", "pos", pl.col("actor").alias("last_actor"), pl.col("code").alias("last_code"))
    located = located.join_asof(last, on="pos", by="article_id", strategy="backward", check_sortedness=False)
    register = persons.unique(["article_id", "name_key"], keep="first").select(
        "article_id", "name_key", pl.col("actor").alias("reg_actor"), pl.col("code").alias("reg_code")
    )
    located = located.with_columns(name_key=name_key(pl.col("named").str.extract(r"(\S+)$"))).join(
        register, on=["article_id", "name_key"], how="left"
    )
    speaker = (
        pl.when(pl.col("named").is_not_null())
        .then(pl.coalesce("reg_actor", "named"))
        .when(pl.col("anaphoric"))
        .then(pl.col("last_actor"))
    )
    code = (
        pl.when(pl.col("named").is_not_null())
        .then(pl.col("reg_code"))
        .when(pl.col("anaphoric"))
        .then(pl.col("last_code"))
    )
    return (
        located.with_columns(speaker=speaker, speaker_code=code)
        .with_columns(quote_id=stable_id_expr("article_id", "char_start"))
        .sort("article_id", "char_start")
        .select(
            "quote_id",
            "article_id",
            "story_id",
            "speaker",
            "speaker_code",
            "quote",
            "sentence_index",
            "char_start",
            "char_end",
        )
    )


def without_titles(run: pl.Expr) -> pl.Expr:
    """A run of capitalised words without the titles and roles before the name (Secretary General Jens ...)."""
    roles = "|".join(re.escape(w) for w in role_words())
    return run.str.replace(rf"^(?:.*\s)?(?i:{roles})\s+", "")


def last_words(name: pl.Expr) -> pl.Expr:
    """The last three words of a name (a person's name in a longer run of capitalised words)."""
    return name.str.extract(r"((?:\S+\s+){0,2}\S+)$")
