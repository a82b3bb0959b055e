"""Tests for the clean stage: seed articles, glue repair, metadata, span accounting."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from tasks.clean import clean_articles, normalize_text
from tasks.ingest import RAW_SCHEMA
from tests.conftest import buffer_bytes

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def raw_frame(*docs: dict) -> pl.DataFrame:
    """raw_articles rows; each doc needs `raw_text`, other fields default to txt-file values."""
    rows = []
    for i, doc in enumerate(docs):
        rows.append(
            {
                "article_id": doc.get("article_id", f"doc{i}"),
                "source_file": doc.get("source_file", f"doc{i}.txt"),
                "source_id": doc.get("source_id", f"doc{i}.txt"),
                "source_line": doc.get("source_line"),
                "format": doc.get("format", "txt"),
                "raw_text": doc["raw_text"],
                "meta_title": doc.get("meta_title"),
                "meta_url": doc.get("meta_url"),
                "meta_outlet": doc.get("meta_outlet"),
                "meta_published": doc.get("meta_published"),
                "ingested_at": datetime(2024, 5, 1, tzinfo=UTC),
            }
        )
    return pl.DataFrame(rows, schema=RAW_SCHEMA)


def clean_one(text: str, **fields) -> tuple[dict, pl.DataFrame]:
    """Clean a single document; returns its article row and boilerplate rows."""
    articles, boilerplate = clean_articles(raw_frame({"raw_text": text, **fields}))
    return articles.row(0, named=True), boilerplate


@pytest.fixture(scope="module")
def seeds() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The five seed files cleaned as one batch: (raw, articles, boilerplate)."""
    paths = sorted(SEEDS.glob("*.txt"))
    raw = raw_frame(
        *({"article_id": p.name[:3], "source_id": p.name, "raw_text": p.read_text(encoding="utf-8")} for p in paths)
    )
    articles, boilerplate = clean_articles(raw)
    return raw, articles, boilerplate


def body_of(articles: pl.DataFrame, article_id: str) -> str:
    """The cleaned body of one article."""
    return articles.filter(pl.col("article_id") == article_id)["body"].item()


SEED_EXPECTATIONS = {
    "000": {
        "gone": ["Newsweek has contacted NATO for comment."],
        "kept": [
            "Polish Prime Minister Mateusz Morawiecki said on Friday that Warsaw would make a formal submission",
            "Kaczynski had announced the idea of an armed peacekeeping mission during the visit.",
            '"But a mission that will be able to defend itself, which will operate on Ukrainian territory."',
            "Ukrainian President Volodymyr Zelensky admitted on Tuesday",
        ],
    },
    "001": {
        "gone": ["date 2022-03-16", "emergency Nato meeting. EPA", "The defence ministers of Turkey"],
        "kept": [
            "Nato countries reacted coolly on Wednesday to Poland's proposal",
            "The proposal by Mr Kaczynski emerged from his visit to Kyiv",
            '"We need to reset our military posture for this new reality," Mr Stoltenberg said.',
        ],
    },
    "002": {
        "gone": [
            "icon bookmark",
            "chevron",
            "4 Apr, 2024 15:47",
            "Podcasts",
            "0:00",
            "25:57",
            "NATO creates 'joint mission'",
        ],
        "kept": [
            "NATO countries have created a joint mission in Ukraine in order to expand the scope of support",
            "Specifically, he pointed out that under the new initiative, Ukrainian troops will be more actively",
            "Moscow has for years repeatedly criticized NATO's expansion towards Russia's borders",
        ],
    },
    "003": {
        "gone": ["date 2024-04-04", "https://sputnikglobe.com", "NATO Establishes Joint Mission in Ukraine - Polish"],
        "kept": [
            "NATO countries have established a joint mission in Ukraine, Polish Foreign Minister Radoslaw Sikorski "
            "told journalists.",
            '"We have decided to create a NATO mission [in Ukraine]," said Sikorski. Sikorski clarified',
            "the minister explained. Sikorski added",
            "the Kiev regime. Russia has warned",
        ],
    },
    "004": {
        "gone": [
            "By: MEGA",
            "By: Russian Ministry of Defense",
            "Poland requested permission to intercept Russian "
            "missiles over Ukraine that are heading toward Polish territory.",
        ],
        "kept": [
            "NATO Secretary General Jens Stoltenberg has rejected Poland's request for permission",
            '"directly," Knewz.com has learned.',
            "The White House released a joint statement regarding the same on July 10, which read:",
            "Furthermore, NATO made efforts to make the Ukrainian airspace even more secure",
        ],
    },
}


@pytest.mark.parametrize("seed", sorted(SEED_EXPECTATIONS))
def test_seed_junk_removed_and_story_kept(seeds, seed):
    _, articles, _ = seeds
    body = body_of(articles, seed)
    for junk in SEED_EXPECTATIONS[seed]["gone"]:
        assert junk not in body, junk
    for sentence in SEED_EXPECTATIONS[seed]["kept"]:
        assert sentence in body, sentence


def test_seed_002_headline_only_once_as_title(seeds):
    _, articles, boilerplate = seeds
    rules = boilerplate.filter(pl.col("article_id") == "002")["rule"].to_list()
    assert rules.count("headline") == 1 and rules.count("repeated_headline") == 1
    assert (
        articles.filter(pl.col("article_id") == "002")["title"].item()
        == "NATO creates 'joint mission' in Ukraine - Poland"
    )


def test_seed_rules_name_what_was_removed(seeds):
    _, _, boilerplate = seeds
    rules = {(r["article_id"], r["rule"]) for r in boilerplate.iter_rows(named=True)}
    assert {
        ("000", "contact_for_comment"),
        ("001", "metadata_header"),
        ("001", "caption"),
        ("002", "icon_font"),
        ("002", "media_timestamp"),
        ("002", "repeated_headline"),
        ("003", "metadata_header"),
        ("004", "caption"),
    } <= rules


SEED_METADATA = {
    "000": {"outlet": "Newsweek", "title": None, "url": None, "published_date": None},
    "001": {"outlet": None, "title": None, "url": None, "published_date": date(2022, 3, 16)},
    "002": {"outlet": None, "url": None, "published_date": date(2024, 4, 4)},
    "003": {
        "outlet": "Sputnik",
        "title": "NATO Establishes Joint Mission in Ukraine - Polish Foreign Minister",
        "url": "https://sputnikglobe.com/20240404/nato-establishes-joint-mission-in-ukraine---polish-foreign-minister"
        "-1117740474.html",
        "published_date": date(2024, 4, 4),
    },
    "004": {
        "outlet": "Knewz",
        "title": "NATO Secretary General Rejects Poland's Proposal to Intercept Russian Missiles Over Ukraine",
        "published_date": None,
    },
}


@pytest.mark.parametrize("seed", sorted(SEED_METADATA))
def test_seed_metadata(seeds, seed):
    _, articles, _ = seeds
    row = articles.filter(pl.col("article_id") == seed).row(0, named=True)
    for column, expected in SEED_METADATA[seed].items():
        assert row[column] == expected, column


def test_seed_bodies_do_not_depend_on_the_batch(seeds):
    raw, articles, _ = seeds
    for row in raw.iter_rows(named=True):
        alone, _ = clean_articles(raw.filter(pl.col("article_id") == row["article_id"]))
        assert alone["body"].item() == body_of(articles, row["article_id"])


def test_output_schema(seeds):
    raw, articles, boilerplate = seeds
    assert "raw_text" not in articles.columns
    assert articles.schema["published_date"] == pl.Date
    assert articles.schema["raw_chars"] == articles.schema["clean_chars"] == pl.Int64
    assert set(raw.columns) - {"raw_text"} <= set(articles.columns)
    assert articles["article_id"].to_list() == raw["article_id"].to_list()
    assert (articles["raw_chars"] == raw["raw_text"].str.len_chars()).all()
    assert (articles["clean_chars"] == articles["body"].str.len_chars()).all()
    assert boilerplate.schema == pl.Schema(
        {"article_id": pl.String, "rule": pl.String, "text": pl.String, "char_start": pl.Int64, "char_end": pl.Int64}
    )


def assert_spans_account_for_text(raw: pl.DataFrame, articles: pl.DataFrame, boilerplate: pl.DataFrame) -> None:
    """Spans match the normalised text, do not overlap, and text minus spans is the body (up to whitespace)."""
    normalised = dict(zip(raw["article_id"], normalize_text(raw["raw_text"]), strict=True))
    for article_id, text in normalised.items():
        spans = boilerplate.filter(pl.col("article_id") == article_id).sort("char_start")
        masked, previous_end = list(text), 0
        for span in spans.iter_rows(named=True):
            assert span["char_start"] >= previous_end
            assert text[span["char_start"] : span["char_end"]] == span["text"]
            masked[span["char_start"] : span["char_end"]] = " " * (span["char_end"] - span["char_start"])
            previous_end = span["char_end"]
        remaining = re.sub(r"\s+", "", "".join(masked))
        assert remaining == re.sub(r"\s+", "", body_of(articles, article_id))


def test_seed_spans_account_for_the_whole_text(seeds):
    assert_spans_account_for_text(*seeds)


def test_spans_account_for_wrapped_and_messy_text():
    raw = raw_frame(
        {
            "raw_text": "Home\r\nNews\n\nShowers continued throughout the week in\nthe Bahia cocoa zone, alleviating "
            "the drought.\n    ---\nShare\nFacebook Twitter Email\n"
        },
        {
            "raw_text": " date 2024-01-02 https://rt.com/news/1/\nTitle here\n\nIt said the talks failed, sources told "
            "the agency on Monday.\n\u00a9 2024 RT. All rights reserved.",
            "article_id": "b",
        },
        {"raw_text": "", "article_id": "empty"},
    )
    articles, boilerplate = clean_articles(raw)
    assert_spans_account_for_text(raw, articles, boilerplate)
    assert body_of(articles, "empty") == ""


@pytest.mark.parametrize(
    ("glued", "repaired"),
    [
        ('told journalists."We have decided', 'told journalists. "We have decided'),
        ("in Ukraine.Sikorski clarified", "in Ukraine. Sikorski clarified"),
        ("in Kiev in 2022.Russia launched", "in Kiev in 2022. Russia launched"),
        ("Really?Yes, he said", "Really? Yes, he said"),
    ],
)
def test_glued_sentences_are_repaired(glued, repaired):
    row, _ = clean_one(f"The minister spoke at length today and said that {glued} more about the plan.")
    assert repaired in row["body"]


@pytest.mark.parametrize(
    "intact",
    [
        "the U.S. Army and the U.S.",
        "Knewz.com has learned",
        "grew 3.5 percent",
        "see https://sputnikglobe.com/20240404/nato.html for details",
        "Mr. Smith and Dr. Jones",
        "at 10.30 a.m. on Friday",
    ],
)
def test_glue_repair_leaves_abbreviations_domains_decimals_and_urls(intact):
    row, _ = clean_one(f"The minister spoke at length today and said that {intact} matter a great deal here.")
    assert intact in row["body"]


def test_unicode_normalised_and_mojibake_repaired():
    row, _ = clean_one("Polandâ€™s leader said â€œnoâ€\x9d to the planâ€”again, officials said on Friday.")
    assert row["body"] == 'Poland\'s leader said "no" to the plan-again, officials said on Friday.'


def test_jsonl_metadata_fields_win():
    row, _ = clean_one(
        "Ministers met in Brussels on Tuesday to discuss the proposal, officials said.",
        format="jsonl",
        meta_title="Ministers meet",
        meta_url="https://www.reuters.com/world/europe/ministers-meet-2023-05-06/",
        meta_outlet=None,
        meta_published="2023-05-06T10:00:00Z",
    )
    assert (row["title"], row["outlet"], row["published_date"]) == ("Ministers meet", "Reuters", date(2023, 5, 6))
    assert row["url"] == "https://www.reuters.com/world/europe/ministers-meet-2023-05-06/"


def test_meta_published_in_other_formats():
    row, _ = clean_one(
        "Ministers met in Brussels on Tuesday, officials said.", meta_published="Thu, 04 Apr 2024 15:47 GMT"
    )
    assert row["published_date"] == date(2024, 4, 4)


def test_meta_outlet_is_used_verbatim_unless_it_names_a_known_outlet():
    outlets = [clean_one("Ministers met in Brussels on Tuesday, officials said.", meta_outlet=name)[0]["outlet"]
               for name in ("Le Monde", "Reuters", "reuters", " reuters.com ")]
    assert outlets == ["Le Monde", "Reuters", "Reuters", "Reuters"]  # a story then counts Reuters once


def test_blank_metadata_does_not_block_the_fallbacks():
    story = "The ministers met in Brussels on Tuesday and agreed on a new aid package, diplomats said."
    text = f"Aid deal agreed\n\n{story}"
    row, _ = clean_one(text, format="jsonl", meta_title="  ", meta_outlet=" ", meta_url="https://www.dw.com/en/a-1")
    assert (row["title"], row["outlet"], row["body"]) == ("Aid deal agreed", "DW", story)
    no_url, _ = clean_one(text, format="jsonl", meta_url=" ")
    assert no_url["url"] is None


@pytest.mark.parametrize(
    ("url", "outlet"),
    [
        ("https://www.rt.com/news/595000-nato-mission/", "RT"),
        ("https://www.newsweek.com/poland-nato-1234", "Newsweek"),
        ("https://www.thenationalnews.com/world/europe/2022/03/16/nato/", "The National"),
        ("https://edition.cnn.com/2024/04/04/europe/nato/index.html", "CNN"),
        ("https://example-blog.net/2024/04/04/nato", None),
    ],
)
def test_outlet_from_domain_never_guessed(url, outlet):
    row, _ = clean_one("Ministers met in Brussels on Tuesday to discuss it, officials said.", meta_url=url)
    assert row["outlet"] == outlet


def test_published_date_from_url_path_and_inline_dateline():
    from_url, _ = clean_one("Talks went on all day, officials said.", meta_url="https://x.org/news/2024/04/04/talks")
    from_dateline, _ = clean_one("4 Apr, 2024 15:47\n\nTalks went on all day in Brussels, officials said on Thursday.")
    from_month_first, _ = clean_one("Updated November 20, 2019\n\nTalks went on all day in Brussels, officials said.")
    assert from_url["published_date"] == date(2024, 4, 4)
    assert from_dateline["published_date"] == date(2024, 4, 4)
    assert from_month_first["published_date"] == date(2019, 11, 20)


def test_wire_dateline_and_short_paragraphs_survive():
    text = (
        "KYIV, April 4, 2024\n\n"
        "WASHINGTON (Reuters) - The United States will send more air defence systems to Ukraine, the Pentagon "
        'said on Monday.\n\nNo.\n\n"We will not stop," he said.\n\nThe package is worth $1 billion, officials said.'
    )
    row, boilerplate = clean_one(text)
    assert row["body"] == re.sub(r"\n\n", "\n", text)
    assert boilerplate.is_empty()


def test_hard_wrapped_newswire_paragraphs_are_joined():
    text = (
        "Showers continued throughout the week in\nthe Bahia cocoa zone, alleviating the drought since early\n"
        "January and improving prospects for the coming temporao,\nalthough normal humidity levels have not been "
        "restored,\nComissaria Smith said in its weekly review.\n    The dry period means the temporao will be late "
        "this year.\n"
    )
    row, _ = clean_one(text)
    assert row["body"].splitlines() == [
        "Showers continued throughout the week in the Bahia cocoa zone, alleviating the drought since early January "
        "and improving prospects for the coming temporao, although normal humidity levels have not been restored, "
        "Comissaria Smith said in its weekly review.",
        "The dry period means the temporao will be late this year.",
    ]


def test_hard_wrapped_story_keeps_its_lines_apart_from_header_and_footer_lines():
    story = [
        "HAMBURG, May 4 - Palm oil output in Malaysia and Indonesia is",
        "likely to drop sharply this year because of lower yields and",
        "poor weather in the main growing areas, the Hamburg-based",
        "Oil World newsletter said.",
        "Traders in London said prices could rise further if the dry",
        "weather persists into the summer months, and that buyers in",
        "India and Pakistan had already started to cover their needs",
        "for the second half of the year, the report added.",
    ]
    header = ["Advertisement"]
    footer = ["REUTER", "Copyright 1987 Reuters Ltd. All rights reserved.", "Click here to subscribe to our newsletter"]
    row, boilerplate = clean_one("\n".join(header + story + footer))
    assert row["body"] == " ".join(story)
    assert boilerplate["text"].to_list() == header + footer
    assert {"advertisement", "cookie_newsletter", "share_prompt"} <= set(boilerplate["rule"])


def test_navigation_menus_and_related_lists_removed():
    story = (
        "The alliance agreed on Thursday to set up a new mission to coordinate support for Ukraine, diplomats said.\n"
        "The decision followed two days of talks among foreign ministers in Brussels, where the plan was debated.\n"
        "Several members had raised concerns about the cost of the mission and who would lead it in practice.\n"
    )
    text = (
        "Home\nWorld\nEurope\nPolitics\nBusiness\nSport\nSubscribe\n\n"
        + story
        + "\nShare this article\nFacebook Twitter Email\n\nMore from World\nFloods hit the north\n"
        "Election called in spring\nMarkets rally on rate hopes\nCookie settings\nPrivacy Policy\n"
    )
    row, boilerplate = clean_one(text)
    assert row["body"] == story.strip()
    assert {"navigation", "share_prompt", "related_list", "cookie_newsletter"} <= set(boilerplate["rule"])


def test_lines_repeated_across_the_batch_are_boilerplate_but_quotes_are_not():
    story = "Officials in {city} said on Monday that talks on the new trade agreement would resume next week."
    menu = "Traffic Cams\nWeather Alerts"
    docs = [
        {"raw_text": f"{menu}\n\n{story.format(city=city)}\nHe declined to comment.\n\n{menu}", "article_id": city}
        for city in ("Paris", "Berlin", "Madrid")
    ]
    articles, boilerplate = clean_articles(raw_frame(*docs))
    for city in ("Paris", "Berlin", "Madrid"):
        assert body_of(articles, city) == story.format(city=city) + "\nHe declined to comment."
    assert (boilerplate["rule"] == "corpus_repeated").sum() == 12


def test_content_hash_ignores_case_whitespace_and_punctuation():
    raw = raw_frame(
        {"raw_text": "The talks failed on Monday, officials said.", "article_id": "a"},
        {"raw_text": "The  talks failed on Monday - officials said!\n", "article_id": "b"},
        {"raw_text": "The talks succeeded on Monday, officials said.", "article_id": "c"},
        {"raw_text": "", "article_id": "d"},
        {"raw_text": "Share\nSubscribe", "article_id": "e"},
    )
    hashes = clean_articles(raw)[0]["content_hash"].to_list()
    assert hashes[0] == hashes[1] != hashes[2]
    assert len(set(hashes[2:])) == 3, "articles left without text are not copies of each other"


def test_html_text_is_cleaned_like_txt():
    story = "The ministers met in Brussels on Tuesday and agreed on a new aid package, diplomats said."
    text = f"Share this article\n\n{story}"
    as_html, _ = clean_one(text, format="html", meta_title="Ministers agree aid", meta_url="https://www.dw.com/en/a-1")
    as_txt, _ = clean_one(text)
    assert as_html["body"] == as_txt["body"] == story
    assert (as_html["title"], as_html["outlet"]) == ("Ministers agree aid", "DW")


def test_empty_batch_keeps_the_schema():
    articles, boilerplate = clean_articles(raw_frame({"raw_text": "x"}).clear())
    assert articles.is_empty() and boilerplate.is_empty()
    assert {"body", "content_hash", "published_date"} <= set(articles.columns)


@pytest.mark.parametrize(
    "text",
    [
        "Savin Corp said it has reached\nan agreement for Sun Chemical Corp to study the potential of\nSavin infrared "
        "technology for possible use in classified U.S.\nmilitary applications.\n    It said a royalty-bearing license "
        "could result.",
        "Phone-A-Gram System Inc said it named\nEugene Mora its Chairman and chief executive officer.\n    Mora "
        "succeed Fred Peterson, who resigned.",
    ],
)
def test_wire_copy_first_line_is_not_taken_for_a_headline(text):
    row, boilerplate = clean_one(text)
    assert row["title"] is None and boilerplate.is_empty()
    assert re.sub(r"\s+", " ", row["body"]) == re.sub(r"\s+", " ", text).strip()


def test_boilerplate_spans_do_not_hold_the_article_text() -> None:
    prose = "\n\n".join(f"Paragraph {i} of the report says the ministers met again to talk about the grain deal."
                        for i in range(300))
    docs = [{"raw_text": f"Photo: Reuters / staff {i}\n\n{prose}\n\nRead more: other stories {i}"} for i in range(20)]
    articles, boilerplate = clean_articles(raw_frame(*docs))
    assert articles["body"].str.contains("Paragraph 299").all()
    assert boilerplate.height >= 40
    spans = boilerplate["text"]
    assert buffer_bytes(spans) < 4 * int(spans.str.len_bytes().sum()) + 4096
