"""Dedup stage: copies, story grouping, incremental attach and determinism on the seed articles."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from tasks.dedup import DedupIndex, _cut_tree, assign_stories, build_index, refresh_stories
from tasks.ids import stable_id

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
OUTLETS = ["Newsweek", "The National", "RT", "Sputnik", "Knewz"]
DATES = [date(2022, 3, 18), date(2022, 3, 16), date(2024, 4, 4), date(2024, 4, 4), date(2024, 7, 15)]
GROUPS = [{"000", "001"}, {"002", "003"}, {"004"}]


def _clean(text: str) -> list[str]:
    """Seed lines minus obvious junk: date stamps, icon strips, url lines, short fragments."""
    lines = (re.sub(r"^\s*date \d{4}-\d{2}-\d{2}\s*", "", line).strip() for line in text.splitlines())
    return [
        line
        for line in lines
        if sum(word.isalpha() for word in line.split()) > 3 and "icon" not in line and "http" not in line
    ]


def article(article_id: str, body: str, title: str | None, outlet: str | None, published: date | None) -> dict:
    """One clean-stage article row."""
    return {
        "article_id": article_id,
        "source_id": article_id,
        "url": None,
        "outlet": outlet,
        "title": title,
        "published_date": published,
        "body": body,
        "content_hash": stable_id(" ".join(body.lower().split())),
        "ingested_at": datetime(2026, 1, 1),
    }


def frame(rows: list[dict]) -> pl.DataFrame:
    """Articles frame with clean-stage dtypes."""
    return pl.DataFrame(rows, schema_overrides={"published_date": pl.Date, "outlet": pl.String, "title": pl.String})


def seed_rows(dates: list[date | None] = DATES) -> list[dict]:
    """The five seed articles with cleaned bodies, ids '000'..'004'."""
    rows = []
    for path, outlet, published in zip(sorted(SEEDS.glob("*.txt")), OUTLETS, dates, strict=True):
        lines = _clean(path.read_text(encoding="utf-8"))
        rows.append(article(path.name[:3], "\n".join(lines), lines[0], outlet, published))
    return rows


def groups_of(out: pl.DataFrame) -> list[set[str]]:
    """Article-id sets per story, sorted for comparison."""
    grouped = out.group_by("story_id").agg(pl.col("article_id"))["article_id"].to_list()
    return sorted((set(g) for g in grouped), key=min)


@pytest.mark.parametrize("dates", [DATES, [None, *DATES[1:4], None]], ids=["dated", "undated-000-004"])
def test_seed_stories(dates: list[date | None]) -> None:
    out, stories, _ = assign_stories(frame(seed_rows(dates)))
    assert groups_of(out) == GROUPS
    assert out["duplicate_of"].null_count() == out.height
    assert out["story_id"].null_count() == 0
    assert stories.height == 3
    by_id = (
        stories.join(out.select("story_id", "article_id"), on="story_id")
        .group_by("story_id")
        .agg(pl.col("article_id").sort(), pl.col("outlets").first(), pl.col("canonical_article_id").first())
    )
    nato = by_id.filter(pl.col("article_id").list.first() == "002").row(0, named=True)
    assert nato["outlets"] == ["RT", "Sputnik"] and nato["canonical_article_id"] == "002"
    shared = out.filter(pl.col("article_id") == "003")["story_evidence"].item()
    assert "sikorski" in shared


def test_exact_and_near_copies_point_to_first_copy() -> None:
    rows = seed_rows()
    nato = rows[2]
    exact = article("105", nato["body"], "Copy", "Mirror", date(2024, 4, 5))
    earlier_exact = article("101", nato["body"], "Early copy", "Wire", date(2024, 4, 4))
    words = rows[3]["body"].split(" ")
    near_body = "MOSCOW (Wire) - " + " ".join(words[:40] + ["reportedly"] + words[41:])
    near = article("110", near_body, "Another headline", "Syndicated", date(2024, 4, 6))
    out, stories, _ = assign_stories(frame([*rows, exact, earlier_exact, near]))
    got = {r["article_id"]: r for r in out.iter_rows(named=True)}
    # 002 and 101 share date and text: the smaller id is the first copy.
    assert got["002"]["duplicate_of"] is None
    assert (got["101"]["duplicate_of"], got["101"]["duplicate_kind"]) == ("002", "exact")
    assert (got["105"]["duplicate_of"], got["105"]["duplicate_kind"]) == ("002", "exact")
    assert (got["110"]["duplicate_of"], got["110"]["duplicate_kind"]) == ("003", "near")
    assert got["110"]["story_score"] >= 0.8
    assert {got[a]["story_id"] for a in ("002", "003", "101", "105", "110")} == {got["002"]["story_id"]}
    assert stories.height == 3
    story = stories.filter(pl.col("story_id") == got["002"]["story_id"]).row(0, named=True)
    assert story["n_articles"] == 5 and story["n_outlets"] == 5 and story["canonical_article_id"] == "002"


QUAKES = [
    (
        "q1",
        "Italy",
        "A magnitude 6.3 earthquake struck the Abruzzo region of central Italy early on Monday, killing at "
        "least 150 people in the medieval city of L'Aquila. Prime Minister Silvio Berlusconi declared a state of "
        "emergency and rescuers from the Civil Protection agency searched collapsed buildings in L'Aquila and "
        "nearby Onna. The quake was felt in Rome, about 100 kilometres away.",
    ),
    (
        "q2",
        "Italy",
        "Rescue workers in L'Aquila dug through rubble on Monday after a powerful earthquake of magnitude "
        "6.3 devastated the Abruzzo capital, leaving more than 150 dead. Berlusconi cancelled a trip to Moscow and "
        "the Civil Protection agency said thousands of residents of L'Aquila and Onna were homeless.",
    ),
    (
        "q3",
        "Haiti",
        "A magnitude 7.0 earthquake struck Haiti on Tuesday, flattening much of Port-au-Prince and "
        "killing thousands of people. President Rene Preval said the presidential palace collapsed, and the United "
        "Nations mission in Port-au-Prince reported its headquarters destroyed. Rescuers searched collapsed "
        "buildings in the Haitian capital.",
    ),
]


@pytest.mark.parametrize("published", [date(2009, 4, 6), None], ids=["same-week", "undated"])
def test_same_kind_events_stay_apart(published: date | None) -> None:
    rows = [article(aid, body, None, outlet, published) for aid, outlet, body in QUAKES]
    out, _, _ = assign_stories(frame(rows))
    assert groups_of(out) == [{"q1", "q2"}, {"q3"}]


def test_date_window_splits_repeated_event() -> None:
    rows = seed_rows()
    reworded = " ".join(rows[3]["body"].split()[::2])
    later = article("201", reworded, None, "Later", date(2024, 9, 1))
    same_week = article("202", reworded, None, "Later", date(2024, 4, 5))
    out, _, _ = assign_stories(frame([*rows[:4], later]))
    nato = set(out.filter(pl.col("article_id").is_in(["002", "003"]))["story_id"])
    assert out.filter(pl.col("article_id") == "201")["story_id"].item() not in nato
    out, _, _ = assign_stories(frame([*rows[:4], same_week]))
    assert out.filter(pl.col("article_id") == "202")["story_id"].item() in nato


def test_incremental_attach_keeps_story_ids() -> None:
    rows = {r["article_id"]: r for r in seed_rows()}
    first, first_stories, _ = assign_stories(frame([rows["000"], rows["002"], rows["004"]]))
    new, stories, _ = assign_stories(frame([rows["001"], rows["003"]]), prior=first, index=build_index(first))
    assert set(first_stories["story_id"]) == set(stories["story_id"])
    story_of = dict(zip(first["article_id"], first["story_id"], strict=True))
    attached = dict(zip(new["article_id"], new["story_id"], strict=True))
    assert attached == {"001": story_of["000"], "003": story_of["002"]}
    sizes = dict(zip(stories["story_id"], stories["n_articles"], strict=True))
    assert sizes == {story_of["000"]: 2, story_of["002"]: 2, story_of["004"]: 1}
    assert new.columns[: len(frame([rows["001"]]).columns)] == frame([rows["001"]]).columns


def test_incremental_with_the_kept_index_matches_a_rebuilt_index() -> None:
    rows = {r["article_id"]: r for r in seed_rows()}
    first, first_stories, index = assign_stories(frame([rows["000"], rows["002"], rows["004"]]))
    later = frame([rows["001"], rows["003"]])
    kept = assign_stories(later, prior=first, index=index, prior_stories=first_stories)
    rebuilt = assign_stories(later, prior=first, index=build_index(first))
    assert kept.articles.equals(rebuilt.articles)
    assert kept.stories.equals(rebuilt.stories)
    keys = kept.index.keys
    assert keys["article_id"].to_list() == ["001", "003"]
    assert keys["bands"].list.len().to_list() == [12, 12] and keys["block"].list.len().min() > 0
    whole = build_index(pl.concat([first, kept.articles]))
    assert kept.index.df.sort("key").equals(whole.df.sort("key"))


def test_kept_index_counts_a_new_earlier_copy_of_a_prior_text_like_a_rebuilt_index() -> None:
    rows = {r["article_id"]: r for r in seed_rows()}
    first, first_stories, index = assign_stories(frame([rows["000"], rows["002"]]))
    earlier = article("099", rows["002"]["body"], "Earlier copy", "Wire", date(2024, 3, 1))
    new = assign_stories(frame([earlier]), prior=first, index=index, prior_stories=first_stories)
    assert new.articles["duplicate_of"].to_list() == [None]  # the earliest copy now: it leads the copy group
    whole = build_index(pl.concat([first, new.articles], how="diagonal_relaxed"))
    assert new.index.df.sort("key").equals(whole.df.sort("key"))
    kept_blocks = pl.concat([index.keys, new.index.keys]).filter(pl.col("block").is_not_null())
    assert kept_blocks.height == whole.keys.filter(pl.col("block").is_not_null()).height == 3


def test_carried_stories_are_rebuilt_when_their_articles_were_quarantined() -> None:
    rows = {r["article_id"]: r for r in seed_rows()}
    first, first_stories, index = assign_stories(frame([rows["000"], rows["001"], rows["002"], rows["003"]]))
    canonical = first_stories.filter(pl.col("n_articles") == 2)["canonical_article_id"].to_list()
    kept = first.filter(pl.col("article_id") != canonical[0])  # validation quarantined one canonical article
    new, stories, _ = assign_stories(frame([rows["004"]]), prior=kept, index=index, prior_stories=first_stories)
    _, rebuilt, _ = assign_stories(frame([rows["004"]]), prior=kept, index=build_index(kept))
    assert stories.equals(rebuilt)
    assert set(stories["canonical_article_id"]) <= {*kept["article_id"], *new["article_id"]}
    assert sorted(stories["n_articles"]) == [1, 1, 2]


def test_refresh_stories_after_quarantine_matches_the_kept_articles() -> None:
    rows = {r["article_id"]: r for r in seed_rows()}
    articles, stories, _ = assign_stories(frame([rows["000"], rows["001"], rows["002"], rows["003"], rows["004"]]))
    gone = stories.filter(pl.col("n_articles") == 2)["canonical_article_id"][0]
    kept = articles.filter(pl.col("article_id") != gone)
    refreshed = refresh_stories(kept, stories)
    held = kept.group_by("story_id").len()
    assert dict(zip(refreshed["story_id"], refreshed["n_articles"], strict=True)) == dict(held.iter_rows())
    assert set(refreshed["canonical_article_id"]) <= set(kept["article_id"])
    hit = articles.filter(pl.col("article_id") == gone)["story_id"].item()
    others = pl.col("story_id") != hit
    assert refreshed.filter(others).equals(stories.filter(others))


def test_incremental_new_story_and_copy_of_prior() -> None:
    rows = {r["article_id"]: r for r in seed_rows()}
    first, _, _ = assign_stories(frame([rows["000"], rows["002"]]))
    copy = article("300", rows["002"]["body"], "Copy", "Mirror", date(2024, 4, 8))
    new, stories, _ = assign_stories(frame([rows["004"], copy]), prior=first, index=build_index(first))
    got = {r["article_id"]: r for r in new.iter_rows(named=True)}
    assert got["300"]["duplicate_of"] == "002"
    assert got["300"]["story_id"] == first.filter(pl.col("article_id") == "002")["story_id"].item()
    assert got["004"]["story_id"] == stable_id("story", "004")
    assert stories.height == 3


def test_idempotent_and_order_independent() -> None:
    rows = seed_rows()
    out1, stories1, _ = assign_stories(frame(rows))
    out2, stories2, _ = assign_stories(frame(rows[::-1]))
    key = ["article_id"]
    assert out1.sort(key).drop("ingested_at").equals(out2.sort(key).drop("ingested_at"))
    assert stories1.equals(stories2)


def test_empty_input() -> None:
    empty = frame(seed_rows()).head(0)
    out, stories, _ = assign_stories(empty)
    assert out.height == 0 and stories.height == 0
    assert {"story_id", "duplicate_of", "duplicate_kind"} <= set(out.columns)


def test_incremental_near_copy_of_prior_copy_points_to_first_copy() -> None:
    rows = {r["article_id"]: r for r in seed_rows()}
    words = rows["003"]["body"].split(" ")
    near_body = " ".join(words[:30] + ["allegedly"] + words[30:])
    near = article("400", near_body, "Syndicated", "Wire", date(2024, 4, 5))
    first, _, _ = assign_stories(frame([rows["002"], rows["003"], near]))
    assert first.filter(pl.col("article_id") == "400")["duplicate_of"].item() == "003"
    again = article("500", near_body + " Updated.", "Later copy", "Mirror", date(2024, 4, 6))
    new, stories, _ = assign_stories(frame([again]), prior=first, index=build_index(first))
    row = new.row(0, named=True)
    assert (row["duplicate_of"], row["duplicate_kind"]) == ("003", "near")
    assert row["story_id"] == first.filter(pl.col("article_id") == "003")["story_id"].item()
    assert stories.filter(pl.col("story_id") == row["story_id"])["n_articles"].item() == 4


def test_story_title_falls_back_to_the_lead_sentence_when_no_article_has_one():
    body = ("Poland proposed an armed peacekeeping mission for Ukraine on Friday. NATO allies refused the next day, "
            "ministers said in Brussels.")
    rows = [article("t1", body, None, "Newsweek", date(2022, 3, 18)),
            article("t2", "Earthquake hits Chile. " + "Rescue teams searched the rubble in Santiago. " * 3,
                    "Quake in Chile", None, date(2022, 3, 18))]
    _, stories, _ = assign_stories(frame(rows))
    titles = sorted(stories["title"])
    assert titles == ["Poland proposed an armed peacekeeping mission for Ukraine on Friday.", "Quake in Chile"]


def test_tree_cut_numbers_clusters_like_scipy_fcluster() -> None:
    rng = np.random.default_rng(7)
    for trial in range(400):
        n = int(rng.integers(3, 30))
        dist = rng.random((n, n))
        if trial % 2:
            dist = np.round(dist, 1)  # tied distances
        dist = (dist + dist.T) / 2
        np.fill_diagonal(dist, 0.0)
        tree = linkage(squareform(dist, checks=False), method="average")
        for cutoff in (0.2, 0.45, 0.5, 0.8):
            expected = fcluster(tree, t=cutoff, criterion="distance") - 1
            assert np.array_equal(_cut_tree(tree, n, cutoff), expected), (trial, cutoff)


def test_a_new_text_without_blocking_keys_gets_its_own_story() -> None:
    rows = {r["article_id"]: r for r in seed_rows()}
    first, _, _ = assign_stories(frame([rows["000"], rows["002"]]))
    new = frame([article("x", "", None, None, date(2024, 4, 5))])  # an empty text: no features, no pairs
    out, stories, _ = assign_stories(new, prior=first, index=build_index(first))
    assert out["story_id"].item() not in set(first["story_id"]) and stories.height == 3


def test_an_implausible_date_does_not_make_a_text_the_original_of_its_copies() -> None:
    body = seed_rows()[4]["body"]
    out, _, _ = assign_stories(frame([article("old", body, None, None, date(1850, 3, 1)),
                                      article("now", body, None, None, date(2022, 4, 16)),
                                      article("later", body, None, None, date(2999, 1, 1))]))
    copies = dict(zip(out["article_id"], out["duplicate_of"], strict=True))
    assert copies == {"now": None, "old": "now", "later": "now"}


def varied_coverage(seed: int) -> list[dict]:
    """Articles of the seed and quake stories as many outlets would publish them: reworded (sentences dropped and
    reordered), exact and near copies, late-arriving earlier copies, and some undated."""
    rng = np.random.default_rng(seed)
    bases = [(r["article_id"], r["body"], r["published_date"]) for r in seed_rows()]
    bases += [(aid, body, date(2009, 4, 6) if outlet == "Italy" else date(2010, 1, 12)) for aid, outlet, body in QUAKES]
    rows = []
    for n in range(90):
        base_id, body, published = bases[int(rng.integers(len(bases)))]
        sentences = re.split(r"(?<=[.!?])\s+", body)
        kind = rng.choice(["reworded", "exact", "near", "earlier", "undated"])
        if kind == "reworded" and len(sentences) > 2:
            keep = rng.permutation(len(sentences))[: max(2, len(sentences) * 2 // 3)]
            body = " ".join(sentences[k] for k in sorted(keep, reverse=bool(rng.integers(2))))
        elif kind == "near":
            words = body.split(" ")
            spot = int(rng.integers(len(words)))
            body = " ".join(words[:spot] + ["reportedly"] + words[spot:])
        shift = -int(rng.integers(1, 4)) if kind == "earlier" else int(rng.integers(0, 10))
        day = None if kind == "undated" else date.fromordinal(published.toordinal() + shift)
        rows.append(article(f"{base_id}-{n:03d}", body, None, f"Outlet {n % 7}", day))
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_incremental_run_on_the_prior_articles_that_matter_equals_one_on_all(seed: int) -> None:
    rows = varied_coverage(seed)
    first, first_stories, index = assign_stories(frame(rows[:60]))
    later = frame(rows[60:])
    narrowed = assign_stories(later, prior=first, index=index, prior_stories=first_stories)
    whole = assign_stories(later, prior=first, index=index)  # no prior stories: every prior article takes part
    assert narrowed.articles.equals(whole.articles)
    assert narrowed.stories.equals(whole.stories)
    assert narrowed.index.keys.equals(whole.index.keys)
    assert narrowed.articles["duplicate_of"].is_not_null().sum() >= 5  # copies of prior texts were found
    assert set(narrowed.articles["story_id"]) & set(first["story_id"])  # and prior stories joined


def test_a_prior_copy_group_led_by_a_late_earlier_copy_is_found_through_any_of_its_members() -> None:
    words = [f"w{i}" for i in range(120)]

    def with_words(spots: list[int], tag: str) -> str:
        out = list(words)
        for spot in sorted(spots, reverse=True):
            out[spot:spot] = [f"{tag}{spot}"]
        return " ".join(out)

    reworded = with_words([70, 80, 90, 100, 110], "p")
    runs = [[article("R", " ".join(words), None, None, date(2024, 1, 10))],
            [article("P", reworded, None, None, date(2024, 1, 12))],  # a near copy of R: points to R
            [article("P0", reworded, None, None, date(2024, 1, 5))]]  # P's text, earlier than R: leads the group
    prior, stories, index = assign_stories(frame(runs[0]))
    for rows in runs[1:]:
        out = assign_stories(frame(rows), prior=prior, index=index, prior_stories=stories)
        prior, stories = pl.concat([prior, out.articles]), out.stories
        index = DedupIndex(pl.concat([index.keys, out.index.keys]), out.index.df)
    # N shares band keys with R only; P0 reaches its group through P (a copy of R) and P's text
    late = frame([article("N", with_words([12, 16, 34, 51, 52], "n"), None, None, date(2024, 1, 20))])
    narrowed = assign_stories(late, prior=prior, index=index, prior_stories=stories)
    whole = assign_stories(late, prior=prior, index=index)
    assert narrowed.articles.equals(whole.articles) and narrowed.stories.equals(whole.stories)
    assert narrowed.articles.select("duplicate_of", "duplicate_kind").row(0) == ("P0", "near")


def test_an_article_read_again_with_another_text_is_matched_by_its_new_text() -> None:
    first_text = " ".join(f"alpha{i}" for i in range(80))
    text = " ".join(f"beta{i}" for i in range(80))
    near = " ".join([f"beta{i}" for i in range(40)] + ["extra"] + [f"beta{i}" for i in range(40, 80)])
    others = [article(f"f{i}", " ".join(f"gamma{i}x{j}" for j in range(50)), None, None, date(2024, 2, 1))
              for i in range(20)]
    first = assign_stories(frame([article("X", first_text, None, None, date(2024, 1, 1)),
                                  article("Y", text, None, None, date(2024, 1, 2)), *others]))
    new = frame([article("X", text, None, None, date(2024, 1, 10)),  # X's id, now with Y's text
                 article("N", near, None, None, date(2024, 1, 11))])
    for stories in (first.stories, None):  # the prior articles that matter, or all of them
        out = assign_stories(new, prior=first.articles, index=first.index, prior_stories=stories).articles
        assert out.select("article_id", "duplicate_of", "duplicate_kind").rows() == [("X", "Y", "exact"),
                                                                                     ("N", "Y", "near")]
