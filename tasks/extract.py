"""Extract stage: PLOVER event mentions and quotes from article bodies, and events merged across outlets.

Pipeline (all polars): sentences -> tokens -> actor mentions (gazetteers, people by role) and cue matches
(curated cue table) -> one event per sentence with source/target by structure, modality, date and location.
"""

from __future__ import annotations

from functools import lru_cache

import polars as pl

from tasks.actors import actor_gazetteer, actor_mentions, known_people, name_key
from tasks.dates import DATE_WORDS, resolve_dates
from tasks.event_rules import assemble_events, match_cues
from tasks.ids import stable_id_expr
from tasks.memory import detached
from tasks.places import match_places
from tasks.quotes import extract_quotes
from tasks.sentences import split_sentences, tokenize

LOUD_MIN_WORDS = 3  # words of two or more capitals, and no lower-case letter: a sentence written in capitals
EVENT_KEYS = ["story_id", "source_code", "event_type", "target_code", "event_date", "negated"]
MENTION_SCHEMA = {  # event_mentions columns in order
    "event_id": pl.String,
    "article_id": pl.String,
    "story_id": pl.String,
    "sentence_index": pl.Int64,
    "sentence": pl.String,
    "char_start": pl.Int64,
    "char_end": pl.Int64,
    "outlet": pl.String,
    "event_date": pl.Date,
    "date_precision": pl.String,
    "source_actor": pl.String,
    "source_code": pl.String,
    "event_type": pl.String,
    "event_mode": pl.String,
    "action_type": pl.String,
    "modality": pl.String,
    "target_actor": pl.String,
    "target_code": pl.String,
    "location": pl.String,
    "negated": pl.Boolean,
    "confidence": pl.Float64,
    "cue": pl.String,
}
QUOTE_SCHEMA = {
    "quote_id": pl.String,
    "article_id": pl.String,
    "story_id": pl.String,
    "speaker": pl.String,
    "speaker_code": pl.String,
    "quote": pl.String,
    "sentence_index": pl.Int64,
    "char_start": pl.Int64,
    "char_end": pl.Int64,
}


def event_id_expr() -> pl.Expr:
    """`stable_id(story_id, source_code, event_type, target_code, event_date, negated)`, vectorised.

    The flag is spelled as Python prints it ("True"/"False") so the id equals the scalar `stable_id`.
    """
    flag = pl.when(pl.col("negated")).then(pl.lit("True")).otherwise(pl.lit("False"))
    return stable_id_expr(*[flag if key == "negated" else key for key in EVENT_KEYS])


def loud_sentences(sentences: pl.DataFrame) -> pl.Series:
    """`sid` of the sentences written in capitals only (a headline, a wire slug, a shouting source)."""
    caps = sentences.filter(~pl.col("sentence").str.contains(r"\p{Ll}"))
    return caps.filter(pl.col("sentence").str.count_matches(r"\p{Lu}{2,}") >= LOUD_MIN_WORDS)["sid"]


@lru_cache(maxsize=1)
def cased_words() -> pl.DataFrame:
    """Per word in capitals (`upper`), the spelling the actor gazetteer or the known people give it (`cased`; a
    lower-case one first: "POLICE" is "police", "RUSSIA" "Russia", "NATO" "NATO")."""
    words = pl.concat([actor_gazetteer()["key"], known_people()["name"]]).str.split(" ").explode().drop_nulls()
    return (
        pl.DataFrame({"cased": words.unique()})
        .with_columns(upper=pl.col("cased").str.to_uppercase(), capital=pl.col("cased").str.contains(r"^\p{Lu}"))
        .sort("upper", "capital", "cased")
        .unique("upper", keep="first", maintain_order=True)
        .select("upper", "cased")
    )


def truecased(tokens: pl.DataFrame, loud: pl.Series) -> pl.DataFrame:
    """`tokens` with those of the `loud` sentences spelled as `cased_words` spells them, else in lower case, so
    that actors, places and names match as in ordinary text ("RUSSIA ATTACKED UKRAINE": "Russia attacked
    Ukraine"); a word they do not spell (a city, an unknown person) stays in lower case."""
    if loud.is_empty():
        return tokens
    rows = tokens["sid"].is_in(loud.implode()).arg_true()  # set in place: tokens stay in order, nothing is sorted
    cased = tokens[rows].join(cased_words(), left_on="tok", right_on="upper", how="left", maintain_order="left").select(
        tok=pl.coalesce("cased", "low")).with_columns(cap=pl.col("tok").str.contains(r"^\p{Lu}"))
    return tokens.with_columns(tokens["tok"].scatter(rows, cased["tok"]), tokens["cap"].scatter(rows, cased["cap"]))


def dated_sentences(sentences: pl.DataFrame, loud: pl.Series) -> pl.DataFrame:
    """`resolve_dates` over `sentences`, reading a `loud` one in title case ("ON MARCH 3": "On March 3")."""
    if loud.is_empty():
        return resolve_dates(sentences)
    rows = sentences["sid"].is_in(loud.implode()).arg_true()  # only these are title-cased
    loud_titled = sentences["sentence"].gather(rows).str.to_titlecase()
    titled = sentences.with_columns(as_written="sentence", sentence=sentences["sentence"].scatter(rows, loud_titled))
    return resolve_dates(titled).with_columns(sentence="as_written").drop("as_written")


def event_mentions(tokens: pl.DataFrame, sentences: pl.DataFrame, mentions: pl.DataFrame,
                   loud: pl.Series) -> pl.DataFrame:
    """Event mention rows (MENTION_SCHEMA) of the sentences with a cue; empty at once when there is none (`loud`:
    the sentences written in capitals)."""
    cues = match_cues(tokens)
    if cues.is_empty():
        return pl.DataFrame(schema=MENTION_SCHEMA)
    # only sentences with a cue can report an event: assemble them on their own tokens
    cue_sids = cues["sid"].unique().implode()
    cue_tokens = tokens.filter(pl.col("sid").is_in(cue_sids))
    places = match_places(cue_tokens)
    events = assemble_events(cue_tokens, mentions.filter(pl.col("sid").is_in(cue_sids)), cues, places)
    if events.is_empty():
        return pl.DataFrame(schema=MENTION_SCHEMA)
    event_sids = events["sid"].implode()
    dated = dated_sentences(sentences.filter(pl.col("sid").is_in(event_sids) | pl.col("sid").is_in(loud.implode())
                                             | pl.col("sentence").str.contains_any(DATE_WORDS)), loud)
    return (
        events.join(dated, on="sid")
        .with_columns(event_id=event_id_expr(), sentence=detached(pl.col("sentence")))
        .select(list(MENTION_SCHEMA))
        .cast(MENTION_SCHEMA)
        .sort("article_id", "sentence_index")
    )


def extract_events(articles: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(event_mentions, quotes) for the articles that are not copies (duplicate_of is null)."""
    originals = articles.filter(pl.col("duplicate_of").is_null()).with_columns(pl.col("body").fill_null(""))
    if originals.is_empty():
        return pl.DataFrame(schema=MENTION_SCHEMA), pl.DataFrame(schema=QUOTE_SCHEMA)
    meta = originals.select("article_id", "story_id", "outlet", pl.col("published_date").cast(pl.Date))
    sentences = split_sentences(originals).join(meta, on="article_id")
    loud = loud_sentences(sentences)
    tokens = truecased(tokenize(sentences), loud)
    mentions = actor_mentions(tokens, sentences)
    mention_rows = event_mentions(tokens, sentences, mentions, loud)
    people = (
        mentions.filter(pl.col("kind") == "person")
        .join(sentences.select("sid", "sentence_index"), on="sid")
        .select(
            "article_id",
            "sentence_index",
            pl.col("start").alias("ti"),
            "actor",
            "code",
            name_key=name_key(pl.col("actor").str.extract(r"(\S+)$")),
        )
    )
    quotes = extract_quotes(originals, sentences, people).cast(QUOTE_SCHEMA)
    return mention_rows, quotes


EVENT_ATTRIBUTES = [
    "story_id", "event_date", "source_actor", "source_code", "event_type", "event_mode", "target_actor",
    "target_code", "negated", "sentence",
]  # fmt: skip
EVENT_COLUMNS = [
    "event_id", "story_id", "event_date", "source_actor", "source_code", "event_type", "event_mode",
    "target_actor", "target_code", "location", "negated", "n_articles", "n_outlets", "sentence", "confidence",
]  # fmt: skip


def aggregate_events(event_mentions: pl.DataFrame) -> pl.DataFrame:
    """One row per event_id: the evidence of its most confident mention, article and outlet counts.

    A pure, order-independent function of the mentions (repeated rows count once), so old and new mentions
    can be re-aggregated together. Confidence combines the best mention of each article: 1 - prod(1 - c).
    """
    mentions = event_mentions.unique(["event_id", "article_id", "sentence_index"]).sort(
        "event_id", "article_id", "sentence_index"
    )
    combined = (
        mentions.group_by("event_id", "article_id")
        .agg(best=pl.col("confidence").max())
        .group_by("event_id")
        .agg(confidence=(1 - (1 - pl.col("best")).product()).clip(0, 1))
    )
    best = pl.col("confidence").arg_max()
    return (
        mentions.group_by("event_id", maintain_order=True)
        .agg(
            *[pl.col(c).get(best) for c in EVENT_ATTRIBUTES],
            location=pl.col("location").drop_nulls().first(),
            n_articles=pl.col("article_id").n_unique().cast(pl.Int64),
            n_outlets=pl.col("outlet").drop_nulls().n_unique().cast(pl.Int64),
        )
        .join(combined, on="event_id", how="left")
        .select(EVENT_COLUMNS)
    )
