"""Tests of the extract stage: seed stories end to end, and unit tests of its parts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from tasks.actors import actor_mentions
from tasks.dates import resolve_dates
from tasks.extract import aggregate_events, extract_events
from tasks.ids import stable_id
from tasks.sentences import split_sentences, tokenize
from tasks.validate import PLOVER_TYPES
from tests.conftest import buffer_bytes

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
SEED_META = {  # file prefix -> (published_date, story_id, outlet, junk lines to drop at the top)
    "000": ("2022-03-18", "s1", "Newsweek", 0),
    "001": ("2022-03-16", "s1", "The National", 1),
    "002": ("2024-04-04", "s2", "RT", 1),
    "003": ("2024-04-04", "s2", "Sputnik", 1),
    "004": ("2024-07-15", "s3", "Knewz", 0),
}


def article_frame(rows: list[dict]) -> pl.DataFrame:
    """Articles frame with the stage's input columns from partial rows."""
    defaults = {"story_id": "s", "outlet": None, "published_date": None, "title": "", "duplicate_of": None}
    full = [{**defaults, "article_id": f"a{i}", **r} for i, r in enumerate(rows)]
    return pl.DataFrame(
        full,
        schema={
            "article_id": pl.String,
            "story_id": pl.String,
            "outlet": pl.String,
            "published_date": pl.Date,
            "title": pl.String,
            "body": pl.String,
            "duplicate_of": pl.String,
        },
    )


@pytest.fixture(scope="module")
def seed_articles() -> pl.DataFrame:
    rows = []
    for path in sorted(SEEDS.glob("*.txt")):
        date, story, outlet, junk = SEED_META[path.name[:3]]
        body = "\n".join(path.read_text().split("\n")[junk:])
        rows.append(
            {
                "article_id": path.stem,
                "story_id": story,
                "outlet": outlet,
                "published_date": dt.date.fromisoformat(date),
                "body": body,
            }
        )
    return article_frame(rows)


@pytest.fixture(scope="module")
def extracted(seed_articles: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    return extract_events(seed_articles)


@pytest.fixture(scope="module")
def mentions(extracted: tuple[pl.DataFrame, pl.DataFrame]) -> pl.DataFrame:
    return extracted[0]


@pytest.fixture(scope="module")
def quotes(extracted: tuple[pl.DataFrame, pl.DataFrame]) -> pl.DataFrame:
    return extracted[1]


def events_like(
    mentions: pl.DataFrame, story: str, event_type: str, source: str, target: str | None = None, **filters: object
) -> pl.DataFrame:
    """Asserted (not negated, not hypothetical) mentions of one story matching type and codes."""
    cond = (
        (pl.col("story_id") == story)
        & (pl.col("event_type") == event_type)
        & (pl.col("source_code") == source)
        & ~pl.col("negated")
        & (pl.col("modality") != "hypothetical")
    )
    if target is not None:
        cond &= pl.col("target_code") == target
    for column, value in filters.items():
        cond &= pl.col(column) == value
    return mentions.filter(cond)


# --- seed stories end to end -------------------------------------------------------------------------------


def test_story1_poland_requests_nato_mission(mentions: pl.DataFrame) -> None:
    hit = events_like(mentions, "s1", "REQUEST", "POL", "NATO")
    assert not hit.is_empty()
    assert "Kaczynski" in hit["source_actor"][0]


def test_story1_nato_allies_reject_and_clear_no(mentions: pl.DataFrame) -> None:
    rejected = events_like(mentions, "s1", "REJECT", "NATO", "POL")
    assert set(rejected["outlet"]) == {"Newsweek", "The National"}
    assert set(rejected["event_date"]) == {dt.date(2022, 3, 16)}  # "the next day" after Tuesday; "Wednesday"
    bausch = events_like(mentions, "s1", "REJECT", "LUX", "POL")
    assert bausch["source_actor"].to_list() == ["Francois Bausch"]


def test_story1_visit_and_arms(mentions: pl.DataFrame) -> None:
    visit = events_like(mentions, "s1", "CONSULT", "POL", "UKR", article_id="000_5aebb8792d952252")
    assert visit["event_date"][0] == dt.date(2022, 3, 15)  # "on Tuesday" before Friday 18 March
    assert visit["source_actor"][0] == "Mateusz Morawiecki"
    assert not events_like(mentions, "s1", "AID", "NATO", "UKR").is_empty()


def test_story1_negated_and_hypothetical_sentences_give_no_asserted_event(mentions: pl.DataFrame) -> None:
    asserted = mentions.filter(~pl.col("negated") & (pl.col("modality") == "asserted"))
    for text in ("no plans to deploy NATO troops", "would not join the alliance"):
        assert asserted.filter(pl.col("sentence").str.contains(text, literal=True)).is_empty()
    no_plans = mentions.filter(pl.col("sentence").str.contains("no plans to deploy", literal=True))
    assert no_plans["negated"].to_list() == [True]


def test_story2_accuse_threaten_agree(mentions: pl.DataFrame) -> None:
    accuse = events_like(mentions, "s2", "ACCUSE", "RUS", "NATO")
    assert "Dmitry Peskov" in accuse["source_actor"].to_list()
    threat = mentions.filter(
        (pl.col("story_id") == "s2")
        & (pl.col("event_type") == "THREATEN")
        & (pl.col("source_code") == "RUS")
        & ~pl.col("negated")
    )
    assert "Sergey Lavrov" in threat["source_actor"].to_list()
    agree = events_like(mentions, "s2", "AGREE", "NATO")
    assert dt.date(2024, 4, 3) in agree["event_date"].to_list()  # "On Wednesday" before Thursday 4 April


def test_story3_stoltenberg_rejects_poland(mentions: pl.DataFrame) -> None:
    rejected = events_like(mentions, "s3", "REJECT", "NATO", "POL")
    assert "Jens Stoltenberg" in rejected["source_actor"].to_list()
    turned_down = events_like(mentions, "s3", "REJECT", "NATO", event_date=dt.date(2024, 7, 14))
    assert not turned_down.is_empty()


def test_story3_agreement_signed_on_july_8(mentions: pl.DataFrame) -> None:
    agree = mentions.filter((pl.col("story_id") == "s3") & (pl.col("event_type") == "AGREE") & ~pl.col("negated"))
    pair = agree.filter(pl.col("event_date") == dt.date(2024, 7, 8))
    assert {pair["source_code"][0], pair["target_code"][0]} == {"POL", "UKR"}


def test_mentions_point_at_their_sentence(seed_articles: pl.DataFrame, mentions: pl.DataFrame) -> None:
    bodies = dict(seed_articles.select("article_id", "body").iter_rows())
    for row in mentions.iter_rows(named=True):
        assert bodies[row["article_id"]][row["char_start"] : row["char_end"]] == row["sentence"]
    keys = ("story_id", "source_code", "event_type", "target_code", "event_date", "negated")
    row = mentions.row(0, named=True)
    assert row["event_id"] == stable_id(*(row[k] for k in keys))
    assert set(mentions["event_type"]) <= set(PLOVER_TYPES)


def test_quotes_have_speakers(quotes: pl.DataFrame) -> None:
    def speaker_of(fragment: str) -> tuple[str, str]:
        row = quotes.filter(pl.col("quote").str.contains(fragment, literal=True)).row(0, named=True)
        return row["speaker"], row["speaker_code"]

    assert speaker_of("We need to reset our military posture") == ("Jens Stoltenberg", "NATO")
    assert speaker_of("NATO’s policy remains unchanged") == ("Jens Stoltenberg", "NATO")
    assert speaker_of("I think that it is necessary to have a peace mission") == ("Jaroslaw Kaczynski", "POL")
    assert speaker_of("We have decided to create a NATO mission") == ("Radoslaw Sikorski", "POL")
    assert speaker_of("We’re still in too early stages") == ("Kajsa Ollongren", "NLD")  # "..., she said"
    assert speaker_of("We will watch them carefully") == ("Andrey Kartapolov", "RUS")  # "he told"


def test_copies_are_skipped() -> None:
    text = "Russia accused NATO of provocations on Monday."
    arts = article_frame([{"body": text}, {"body": text, "duplicate_of": "a0"}])
    mentions, _ = extract_events(arts)
    assert mentions["article_id"].to_list() == ["a0"]


# --- sentences ------------------------------------------------------------------------------------------------


def test_sentence_splitter_abbreviations_quotes_and_glue() -> None:
    body = (
        "Lt. Gen. John Smith met U.S. officials in Washington on Jan. 5 with Mr. Brown. Prices rose 5.1 pct. "
        '"We have decided," said Sikorski.Sikorski left. The journalists."We have a plan," he said.'
    )
    sents = split_sentences(article_frame([{"body": body}]))
    assert sents["sentence"].to_list() == [
        "Lt. Gen. John Smith met U.S. officials in Washington on Jan. 5 with Mr. Brown.",
        "Prices rose 5.1 pct.",
        '"We have decided," said Sikorski.',
        "Sikorski left.",
        "The journalists.",
        '"We have a plan," he said.',
    ]
    for row in sents.iter_rows(named=True):
        assert body[row["char_start"] : row["char_end"]] == row["sentence"]
    dateline = "WASHINGTON, Feb. 26 (Reuters) - U.S. officials met Iran's envoy. They left."
    assert split_sentences(article_frame([{"body": dateline}]))["sentence"].to_list() == [
        "WASHINGTON, Feb. 26 (Reuters) - U.S. officials met Iran's envoy.",
        "They left.",
    ]


def test_sentence_splitter_wrapped_newswire_and_headlines() -> None:
    wrapped = "Showers continued in\nthe Bahia zone since early\nJanuary, the review said.\n    Arrivals fell."
    headline = "NATO Creates Mission\nNATO countries have created a mission.\n\nIt will train troops."
    sents = split_sentences(article_frame([{"body": wrapped}, {"body": headline}]))
    assert sents.filter(pl.col("article_id") == "a0")["sentence"].to_list() == [
        "Showers continued in\nthe Bahia zone since early\nJanuary, the review said.",
        "Arrivals fell.",
    ]
    assert sents.filter(pl.col("article_id") == "a1").height == 3


# --- actors ---------------------------------------------------------------------------------------------------


def people_of(body: str) -> pl.DataFrame:
    sents = split_sentences(article_frame([{"body": body}]))
    return actor_mentions(tokenize(sents), sents).sort("sid", "start")


def test_people_introduced_by_role_and_resolved_by_surname() -> None:
    body = (
        "Estonian Defense Minister Kalle Laanet met Luxembourg's Francois Bausch in Brussels. "
        "Jaroslaw Kaczynski, Poland's deputy prime minister, spoke later. "
        "Laanet said the plan was sound. Mr Kaczynski disagreed and Bausch left."
    )
    people = people_of(body).filter(pl.col("kind") == "person")
    assert people.select("actor", "code").rows() == [
        ("Kalle Laanet", "EST"),
        ("Francois Bausch", "LUX"),
        ("Jaroslaw Kaczynski", "POL"),
        ("Kalle Laanet", "EST"),
        ("Jaroslaw Kaczynski", "POL"),
        ("Francois Bausch", "LUX"),
    ]


def test_name_variants_and_metonyms() -> None:
    body = (
        "Ukraine's President Volodymyr Zelenskyy spoke to Nato. Zelensky then called Kiev and the Kremlin. "
        "Kaczyński, the Polish leader, met Kaczynski's allies in Warsaw while the White House and the State Duma "
        "watched."
    )
    found = people_of(body)
    assert found.filter(pl.col("actor").str.contains("Zelensk"))["code"].to_list() == ["UKR", "UKR"]
    assert found.filter(pl.col("actor").str.contains("Zelensk"))["actor"].unique().to_list() == ["Volodymyr Zelenskyy"]
    codes = dict(found.filter(pl.col("kind") != "person").select("actor", "code").iter_rows())
    assert codes == {
        "Nato": "NATO",
        "Kiev": "UKR",
        "Kremlin": "RUS",
        "Warsaw": "POL",
        "White House": "USA",
        "State Duma": "RUS",
    }
    assert found.filter(pl.col("actor").str.contains("Kaczy"))["code"].to_list() == ["POL", "POL"]


def test_source_and_target_by_structure_not_cooccurrence() -> None:
    body = (
        "Pakistan, a key U.S. ally, has refused to deploy peacekeepers in Iraq. "
        "A camp for Congolese refugees was attacked by Burundian militiamen. "
        "Relations between Russia and NATO worsened as Kremlin spokesman Dmitry Peskov accused the alliance."
    )
    mentions, _ = extract_events(article_frame([{"body": body, "published_date": dt.date(2024, 1, 10)}]))
    triples = mentions.select("source_code", "event_type", "target_code").rows()
    assert triples == [("PAK", "REJECT", "IRQ"), ("BDI", "ASSAULT", "COD"), ("RUS", "ACCUSE", "NATO")]


def test_a_place_before_a_comma_is_not_a_persons_country_without_a_role() -> None:
    body = ("In Warsaw, Scholz met Polish Prime Minister Donald Tusk. China will send aid to Russia, Zelensky said. "
            "Poland's foreign minister, Radoslaw Sikorski, condemned Russia.")
    mentions, _ = extract_events(article_frame([{"body": body, "published_date": dt.date(2024, 1, 10)}]))
    got = mentions.select("source_actor", "source_code", "target_actor", "target_code").rows()
    assert got == [("Olaf Scholz", "DEU", "Donald Tusk", "POL"), ("China", "CHN", "Russia", "RUS"),
                   ("Radoslaw Sikorski", "POL", "Russia", "RUS")]


def test_modality_intent_and_negation() -> None:
    body = (
        "Finland will give Tanzania a grant of aid. Russia could attack Georgia. "
        "Serbia did not expel the diplomats. Nigeria will withdraw its force from Chad unless talks resume. "
        "NATO said it would continue to send weapons to Kyiv."
    )
    mentions, _ = extract_events(article_frame([{"body": body, "published_date": dt.date(2024, 1, 10)}]))
    got = mentions.select("event_type", "action_type", "modality", "negated").rows()
    assert got == [
        ("AGREE", "AID", "intent", False),
        ("ASSAULT", "ASSAULT", "hypothetical", False),
        ("SANCTION", "SANCTION", "negated", True),
        ("THREATEN", "RETREAT", "intent", False),
        ("AID", "AID", "asserted", False),
    ]


def test_without_negates_only_within_its_comma_segment() -> None:
    body = (
        "Without warning, Russia attacked Ukraine. The talks ended without Serbia signing the agreement with Kosovo. "
        "Without a vote, Turkey will not sanction Greece. Without hesitation, Poland sent aid to Ukraine."
    )
    mentions, _ = extract_events(article_frame([{"body": body, "published_date": dt.date(2024, 1, 10)}]))
    got = mentions.select("source_code", "action_type", "target_code", "modality", "negated").rows()
    assert got == [
        ("RUS", "ASSAULT", "UKR", "asserted", False),
        ("SRB", "AGREE", "XKX", "negated", True),
        ("TUR", "SANCTION", "GRC", "negated", True),
        ("POL", "AID", "UKR", "asserted", False),
    ]


def test_location_from_place_phrase() -> None:
    body = "NATO ministers met Ukraine's envoy in Brussels on Wednesday."
    mentions, _ = extract_events(article_frame([{"body": body, "published_date": dt.date(2022, 3, 18)}]))
    assert mentions.select("location", "event_date").row(0) == ("Brussels", dt.date(2022, 3, 16))


# --- dates ----------------------------------------------------------------------------------------------------


def dated_sentences(texts: list[str], published: dt.date | None) -> pl.DataFrame:
    """`resolve_dates` over the sentences of one article published on `published`."""
    frame = pl.DataFrame(
        {"article_id": ["a"] * len(texts), "sentence_index": list(range(len(texts))), "sentence": texts}
    )
    return resolve_dates(frame.with_columns(published_date=pl.lit(published, pl.Date)))


def test_date_resolution() -> None:
    texts = [
        "Morawiecki visited Kyiv on Tuesday.",
        "It was the first visit since the war began on February 24.",
        "However, the next day, NATO refused.",
        "Speaking on July 14, he said no.",
        "In March 2024, the command said so.",
        "He left on 3 January 2020.",
        "Nothing dated here.",
    ]
    dated = dated_sentences(texts, dt.date(2024, 7, 19))
    assert dated["event_date"].to_list() == [
        dt.date(2024, 7, 16),
        dt.date(2024, 7, 19),
        dt.date(2024, 7, 17),
        dt.date(2024, 7, 14),
        dt.date(2024, 3, 1),
        dt.date(2020, 1, 3),
        dt.date(2024, 7, 19),
    ]
    assert dated["date_precision"][4] == "month"
    undated = dated_sentences(texts, None)
    assert undated["event_date"].to_list() == [None, None, None, None, dt.date(2024, 3, 1), dt.date(2020, 1, 3), None]
    assert undated["date_precision"][4] == "month"


def test_dates_bounding_a_period_are_not_event_dates() -> None:
    texts = [
        "The ceasefire holds until June 30, officials said on Monday.",
        "Talks had stalled since March 1, but on Tuesday they resumed.",
        "Since March 1 the border has been closed.",
        "Before April 2 no aid arrived.",
        "The truce lasts until the end of March.",
        "Troops have been deployed since March 2024.",
        "The unit was bought from Acme in March.",
    ]
    published = dt.date(2024, 5, 8)  # a Wednesday
    dated = dated_sentences(texts, published)
    monday, tuesday, march = dt.date(2024, 5, 6), dt.date(2024, 5, 7), dt.date(2024, 3, 1)
    assert dated["event_date"].to_list() == [monday, tuesday, *[published] * 4, march]
    assert dated["date_precision"].to_list() == ["day"] * 6 + ["month"]


def test_a_sentence_in_capitals_gives_the_events_it_gives_in_ordinary_case() -> None:
    body = ("Russia attacked Ukraine on March 3. President Vladimir Putin said NATO threatened Russia. "
            "Police arrested 20 protesters in Minsk on Tuesday. Poland sent aid to Ukraine on Monday. "
            "Russian forces shelled Ukraine on March 1st.")  # "1ST" read in title case is "1St"
    event = ["sentence_index", "event_date", "source_code", "event_type", "target_code", "negated"]
    published = dt.date(2024, 3, 8)
    ordinary, _ = extract_events(article_frame([{"body": body, "published_date": published}]))
    shouted, _ = extract_events(article_frame([{"body": body.upper(), "published_date": published}]))
    assert ordinary.height == 5 and dt.date(2024, 3, 1) in ordinary["event_date"].to_list()
    assert shouted.select(event).equals(ordinary.select(event))
    spans = shouted.select("char_start", "char_end").rows()
    assert shouted["sentence"].to_list() == [body.upper()[a:b] for a, b in spans]  # the text as written


def test_dates_in_capitals_date_the_events_after_them_as_in_ordinary_case() -> None:
    body = ("Fighting began in Kharkiv on March 3. Russia attacked Ukraine the next day. "  # dated by the one before
            "Poland sent aid to Ukraine on 1st March.")  # "1ST MARCH": day first, its suffix in capitals
    event = ["sentence_index", "event_date", "source_code", "event_type", "target_code"]
    published = dt.date(2024, 3, 9)
    ordinary, _ = extract_events(article_frame([{"body": body, "published_date": published}]))
    shouted, _ = extract_events(article_frame([{"body": body.upper(), "published_date": published}]))
    assert ordinary["event_date"].to_list() == [dt.date(2024, 3, 4), dt.date(2024, 3, 1)]
    assert shouted.select(event).equals(ordinary.select(event))


def test_a_time_of_day_bound_keeps_its_date() -> None:
    texts = [
        "Before dawn on March 3, Russian forces shelled Kharkiv.",
        "Fighting went on until midnight on May 2.",
        "They fought until the evening of 4 May.",
        "Before the vote on May 6 no deal was reached.",  # bounds still
        "Before the morning vote on May 6 no deal was reached.",
        "Talks stalled before the midnight deadline on May 6.",
        "Since the morning of 4 May, the city has been shelled.",
        "Shelling that began before dawn has continued until March 5 in Kharkiv.",
        "Before dawn in March 2024 troops crossed.",
    ]
    published = dt.date(2024, 5, 8)
    dated = dated_sentences(texts, published)
    assert dated["event_date"].to_list() == [dt.date(2024, 3, 3), dt.date(2024, 5, 2), dt.date(2024, 5, 4),
                                             *[published] * 6]


def test_event_dates_are_never_past_the_day_after_publication_and_from_bounds_only_its_own_date() -> None:
    texts = [
        "Russia attacked Ukraine on May 12.",  # a past May 12: last year's
        "Russia withdrew its troops from Kherson on November 11.",
        "The summit will be held on 2024-06-01.",  # a plan: the statement's day
        "Leaders will meet in March 2025.",
        "Fighting raged from March 1 to March 5.",
        "The talks resume on May 9.",  # the day after publication is allowed (a dateline's time zone)
    ]
    published = dt.date(2024, 5, 8)
    dated = dated_sentences(texts, published)
    assert dated["event_date"].to_list() == [
        dt.date(2023, 5, 12), dt.date(2023, 11, 11), published, published, published, dt.date(2024, 5, 9)]
    assert dated["date_precision"].to_list() == ["day"] * 6


# --- aggregation ----------------------------------------------------------------------------------------------


def test_aggregate_merges_outlets() -> None:
    text = "Russia accused NATO of provocations on Monday."
    arts = article_frame(
        [
            {"body": text, "story_id": "s9", "outlet": "RT", "published_date": dt.date(2024, 4, 4)},
            {
                "body": "On Monday, Russia accused NATO of provocations near its borders.",
                "story_id": "s9",
                "outlet": "Reuters",
                "published_date": dt.date(2024, 4, 5),
            },
            {
                "body": text,
                "story_id": "s9",
                "outlet": "RT",
                "published_date": dt.date(2024, 4, 4),
                "duplicate_of": "a0",
            },
        ]
    )
    mentions, _ = extract_events(arts)
    events = aggregate_events(mentions)
    assert events.height == 1
    row = events.row(0, named=True)
    assert (row["n_articles"], row["n_outlets"], row["event_date"]) == (2, 2, dt.date(2024, 4, 1))
    assert (row["source_code"], row["event_type"], row["target_code"]) == ("RUS", "ACCUSE", "NATO")
    assert row["confidence"] >= mentions["confidence"].max()
    # order-independent and idempotent: old + new mentions (with repeats) re-aggregate to the same events
    again = aggregate_events(pl.concat([mentions.reverse(), mentions]))
    assert again.equals(events)


def test_reported_demands_passives_and_domestic_targets() -> None:
    body = (
        "Russia said on Tuesday that Sudan must return the helicopter. "
        "At least three Iraqi civilians were killed in a car bombing. "
        "Egyptian police opened fire to disperse the demonstrators. "
        "Israeli tanks fired shells at targets in Jericho. "
        "President Omar al-Bashir lifted the curfew imposed in Sudan."
    )
    mentions, _ = extract_events(article_frame([{"body": body, "published_date": dt.date(2024, 1, 10)}]))
    got = mentions.select("sentence_index", "source_code", "event_type", "target_code").rows()
    assert got == [
        (0, "RUS", "REQUEST", "SDN"),  # "X said Y must ..." is X's demand on Y
        (2, "EGY", "ASSAULT", "EGY"),  # unnamed domestic group: the source's country
        (3, "ISR", "ASSAULT", "PSE"),  # a shelled town: its country
        (4, "SDN", "CONCEDE", "SDN"),  # a titled person takes the sentence's only country
    ]  # sentence 1 (agentless passive, bare "bombing") names no source: no event


def test_economic_nouns_and_company_names_are_not_events() -> None:
    body = (
        "Strong demand from Japan lifted prices. South Korea's money supply fell two pct. "
        "American Financial Corp said it would attack costs. The alumina refinery is a Royal Dutch Shell unit."
    )
    mentions, _ = extract_events(article_frame([{"body": body}]))
    assert mentions.is_empty()


@pytest.mark.parametrize("phrases", ["actors", "places"])
def test_phrase_matching_gives_the_same_matches_in_one_pass_and_per_length(seed_articles, monkeypatch, phrases):
    import tasks.phrases
    from tasks.actors import actor_phrases
    from tasks.places import place_phrases

    index = actor_phrases() if phrases == "actors" else place_phrases()
    tokens = tokenize(split_sentences(seed_articles))
    monkeypatch.setattr(tasks.phrases, "ONE_PASS_LOOKUPS", 10**12)
    one_pass = tasks.phrases.match_phrases(tokens, index, "tok")
    monkeypatch.setattr(tasks.phrases, "ONE_PASS_LOOKUPS", 0)
    per_length = tasks.phrases.match_phrases(tokens, index, "tok")
    assert one_pass.height > 10 and one_pass.sort("sid", "start").equals(per_length.sort("sid", "start"))


def test_mention_sentences_do_not_hold_the_article_bodies(mentions: pl.DataFrame, seed_articles: pl.DataFrame) -> None:
    sentences = mentions["sentence"]
    held = buffer_bytes(sentences)
    assert held < 4 * int(sentences.str.len_bytes().sum()) + 4096
    assert held < int(seed_articles["body"].str.len_bytes().sum())


def test_military_strikes_are_assaults_and_walkouts_protests() -> None:
    sentences = [
        "Israel struck Gaza overnight.",
        "Russian missiles struck Kyiv.",
        "Israel launched air strikes on Gaza.",
        "Russia launched a drone strike on Odesa.",
        "Polish workers went on strike over pay.",
        "Greek dockers strike over pay.",
    ]
    mentions, _ = extract_events(article_frame([{"body": s} for s in sentences]))
    got = mentions.sort("article_id").select("article_id", "event_type", "event_mode", "source_code").rows()
    assert got == [
        ("a0", "ASSAULT", "heavy-weapons", "ISR"),
        ("a1", "ASSAULT", "heavy-weapons", "RUS"),
        ("a2", "ASSAULT", "heavy-weapons", "ISR"),
        ("a3", "ASSAULT", "heavy-weapons", "RUS"),
        ("a4", "PROTEST", "strike", "POL"),
        ("a5", "PROTEST", "strike", "GRC"),
    ]


def test_striking_a_deal_is_no_attack() -> None:
    sentences = ["Poland and Ukraine struck the deal on grain.", "Germany and France struck their first agreement.",
                 "Russia struck the port of Odesa."]
    mentions, _ = extract_events(article_frame([{"body": s} for s in sentences]))
    got = dict(mentions.select("article_id", "event_type").iter_rows())
    assert got.get("a0") != "ASSAULT" and got.get("a1") != "ASSAULT" and got["a2"] == "ASSAULT"


def test_speaker_after_quote_with_titles_or_appositive() -> None:
    bodies = [
        "“We will respond,” said NATO Secretary General Jens Stoltenberg.",
        "“We will respond,” Ukrainian Foreign Minister Dmytro Kuleba said.",
        "“We will respond,” Dmitry Peskov, the Kremlin spokesman, said.",
        # a titled subject on the line after a finished quote starts a new statement
        "Dutch Defense Minister Kajsa Ollongren said: “We are not ready to talk.”\n"
        "Estonian Defense Minister Kalle Laanet said a mission was possible.",
    ]
    _, quotes = extract_events(article_frame([{"body": b} for b in bodies]))
    assert quotes.sort("article_id").select("speaker", "speaker_code").rows() == [
        ("Jens Stoltenberg", "NATO"),
        ("Dmytro Kuleba", "UKR"),
        ("Dmitry Peskov", "RUS"),
        ("Kajsa Ollongren", "NLD"),
    ]
