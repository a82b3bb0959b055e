"""Dedup stage: mark exact and near copies, then group overlapping coverage into stories.

Copies: same `content_hash` (exact), or word 3-shingle Jaccard >= 0.8 (near: MinHash LSH candidates, verified
exactly) point via `duplicate_of` to their first copy (earliest date, then smallest id) and share its story.

Stories: the remaining texts get TF-IDF vectors over two equally weighted channels, key terms (what) and
capitalised name words/phrases (who, where). Candidate pairs share a top-weighted rare feature in the same or
an adjacent week (when; an undated article is compared with all). Average-link clustering cuts at
STORY_THRESHOLD; a cluster is then split when, with the features all its members share discounted, it falls into
two halves far less similar to each other than within themselves (two earthquakes, two NATO meetings).
Prior stories keep their ids: a new cluster joins the prior story it is on average similar to (unless the
same contrast test says otherwise), else it founds a story whose id hashes its canonical article's id.
Evidence: `story_score` (Jaccard for copies, best cosine within the story otherwise) and `story_evidence`.

Incremental cost: a `DedupIndex` kept with the warehouse holds each article's MinHash band keys and story
blocking keys, and the corpus' feature document frequencies, so a run reads only the prior texts that are
candidates for a new article instead of re-processing every prior text. The run's pool of articles holds the new
ones and only the prior ones that can change their result (the same result as with every prior article): those
sharing a text or band key with a new text and the first copy of each of their copy groups, and those a new
text's story candidates are drawn from; the stories a run touches are recomputed from all their articles.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import NamedTuple

import numba
import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import squareform

from tasks.dedup_features import (
    ENTITY_WEIGHT,
    HASH_SEED,
    MINHASH_BANDS,
    ShingleSets,
    doc_frequencies,
    frequencies_of,
    intersection_sizes,
    jaccard_at_least,
    list_column,
    rowwise_dot,
    shared_products,
    shingle_sets,
    story_features,
    tfidf_matrix,
)
from tasks.ids import stable_id_expr
from tasks.validate import EARLIEST_DATE

NEAR_JACCARD = 0.8
STORY_THRESHOLD = 0.20
DATE_WINDOW_DAYS = 7
BLOCK_TOP_K = 20
BLOCK_TOP_UNIQUE = 10
BLOCK_MIN_PARTIAL = 0.05
BLOCK_MAX_DF = 0.02
BLOCK_MIN_MAX_DF = 50
BLOCK_MAX_PER_WEEK = 200
MAX_DENSE_CLUSTER = 3000
SPLIT_MIN_HALF = 3
SPLIT_RATIO = 0.35
EVIDENCE_TERMS = 4
NO_DAY = np.iinfo(np.int64).min  # the day (and week) number of an undated article
BASE_SCHEMA = {
    "article_id": pl.String,
    "outlet": pl.String,
    "title": pl.String,
    "published_date": pl.Date,
    "body": pl.String,
    "content_hash": pl.String,
}
POOL_META = [c for c in BASE_SCHEMA if c != "body"]  # the texts are kept apart
ADDED_SCHEMA = {
    "story_id": pl.String,
    "duplicate_of": pl.String,
    "duplicate_kind": pl.String,
    "story_score": pl.Float64,
    "story_evidence": pl.String,
}
STORY_SCHEMA = {
    "story_id": pl.String,
    "title": pl.String,
    "first_published": pl.Date,
    "n_articles": pl.Int64,
    "n_outlets": pl.Int64,
    "outlets": pl.List(pl.String),
    "canonical_article_id": pl.String,
}
KEYS_SCHEMA = {
    "article_id": pl.String,
    "bands": pl.List(pl.UInt64),  # MinHash band keys of the text; null for an exact copy of a known text
    "block": pl.List(pl.Int64),  # top story-feature keys; null for an article not clustered (a copy)
    "block_w": pl.List(pl.Float32),
}
DF_SCHEMA = {"key": pl.Int64, "df": pl.Int64}


@dataclass(frozen=True)
class DedupIndex:
    """What later runs match new articles against: per article its MinHash band keys and story blocking keys
    (`keys`), and the document frequency of each story feature over the clustered articles (`df`)."""

    keys: pl.DataFrame
    df: pl.DataFrame

    @classmethod
    def empty(cls) -> DedupIndex:
        return cls(pl.DataFrame(schema=KEYS_SCHEMA), pl.DataFrame(schema=DF_SCHEMA))


class Dedup(NamedTuple):
    """The new articles with their story assignment, all stories, and the index after this run (`keys` holds
    only the new articles' rows; `df` is whole)."""

    articles: pl.DataFrame
    stories: pl.DataFrame
    index: DedupIndex


def assign_stories(articles: pl.DataFrame, prior: pl.DataFrame | None = None,
                   index: DedupIndex | None = None, prior_stories: pl.DataFrame | None = None) -> Dedup:
    """Add `story_id`, `duplicate_of`, `duplicate_kind` and evidence to new articles.

    `index` must describe `prior` (`build_index(prior)` derives one from the texts). With `prior_stories` (the
    stories table of `prior`) only the stories that gain articles are recomputed, and only the prior articles that
    can matter take part (see `_copy_context`, `_story_context`), with the result every prior article would give:
    over all of them a run only scans a few columns (texts, links, index keys).
    """
    if index is None:
        if prior is not None and prior.height:
            raise ValueError("prior articles need their index: pass index=build_index(prior)")
        index = DedupIndex.empty()
    if prior is not None:
        read_again = prior["article_id"].is_in(articles["article_id"].implode())
        if read_again.any():  # a prior article read again is a new one
            prior = prior.filter(~read_again)
    narrow = prior_stories is not None and prior is not None and prior.height > 0
    unseen = _unseen_texts(articles, prior)
    if narrow:
        context, groups = _copy_context(prior, index.keys, articles["content_hash"], unseen)
    else:
        context, groups = prior, _prior_groups(prior)
    pool, texts = _article_pool(articles, context)
    pool, bands = _mark_copies(pool, texts, index.keys, unseen, groups)
    del unseen, groups  # the shingle sets: story assignment sets dedup's memory peak
    vectors = _root_vectors(texts, _new_roots(pool), index)
    if narrow:
        pool, texts = _widened(pool, texts, _story_context(prior, index.keys, pool, vectors.blocks))
    pool = _assign_story_ids(pool, texts, index.keys, vectors, prior)
    blocks, df = vectors.blocks, vectors.df
    del vectors  # the new texts' vectors and vocabulary
    new = pool.filter("is_new").select("article_id", *ADDED_SCHEMA)
    out = articles.drop([c for c in ADDED_SCHEMA if c in articles.columns]).join(
        new, on="article_id", how="left", maintain_order="left"
    )
    keys = (
        articles.select("article_id")
        .join(bands, on="article_id", how="left", maintain_order="left")
        .join(blocks, on="article_id", how="left", maintain_order="left")
        .select(list(KEYS_SCHEMA))
        .cast(KEYS_SCHEMA)
    )
    return Dedup(out, _stories_table(pool, texts, prior_stories, prior), DedupIndex(keys, df))


def build_index(articles: pl.DataFrame) -> DedupIndex:
    """The index of articles already assigned to stories, derived from their texts."""
    rows = articles.select("article_id", "content_hash", "published_date", "duplicate_of", "title").with_row_index()
    reps = rows.sort(copy_order(), nulls_last=True).unique("content_hash", keep="first", maintain_order=True)
    _, bands = shingle_sets(articles["body"], reps["index"].to_numpy())
    docs = rows.filter(pl.col("duplicate_of").is_null())
    counts, _ = story_features(articles["body"], docs["index"].to_numpy(), docs["title"])
    df = doc_frequencies(counts)
    x = tfidf_matrix(counts, df, docs.height)
    blocks = _blocking_keys(x, df, docs.height).join(
        docs.select("article_id").with_row_index("doc").cast({"doc": pl.Int64}), on="doc"
    ).drop("doc")
    keys = (
        articles.select("article_id")
        .join(reps.select("article_id", bands=_band_lists(bands)),
              on="article_id", how="left", maintain_order="left")
        .join(blocks, on="article_id", how="left", maintain_order="left")
        .select(list(KEYS_SCHEMA))
        .cast(KEYS_SCHEMA)
    )
    return DedupIndex(keys, df.cast(DF_SCHEMA))


def without_articles(index: DedupIndex, gone: pl.DataFrame) -> DedupIndex:
    """`index` without the `gone` articles (quarantined after dedup): their keys, and the feature counts of those
    that were clustered (not copies), so its `df` equals a rebuild's. Not handed on (a rebuild would): the band
    keys of a gone text to a remaining exact copy of it, which is then found by later near copies only through
    its story."""
    clustered = gone.filter(pl.col("duplicate_of").is_null())
    counts, _ = story_features(clustered["body"], np.arange(clustered.height), clustered["title"])
    df = (
        index.df.join(doc_frequencies(counts).rename({"df": "gone"}), on="key", how="left", maintain_order="left")
        .with_columns(df=pl.col("df") - pl.col("gone").fill_null(0))
        .filter(pl.col("df") > 0)
        .select(list(DF_SCHEMA))
    )
    return DedupIndex(index.keys.filter(~pl.col("article_id").is_in(gone["article_id"].implode())), df)


def refresh_stories(articles: pl.DataFrame, stories: pl.DataFrame) -> pl.DataFrame:
    """`stories` with the rows that no longer match `articles` (some were quarantined) rebuilt from them (from the
    articles of those stories only: at 1M articles, pooling them all took 1 s and 270 MB)."""
    members = articles.filter(pl.col("story_id").is_in(_stale_stories(articles, stories).implode()))
    pool, texts = _article_pool(members.head(0), members)
    return _stories_table(pool, texts, stories, articles)


def copy_order_date() -> pl.Expr:
    """The published date that orders copies (the first is the original): none when validation would quarantine
    it (before EARLIEST_DATE or after today), so such an article is not the one its copies point to."""
    published = pl.col("published_date")
    return pl.when(published.is_between(EARLIEST_DATE.date(), date.today())).then(published)


def copy_order() -> list[pl.Expr]:
    """The order of copies: earliest (plausible) date first, then smallest id; undated last."""
    return [copy_order_date(), pl.col("article_id")]


def _article_pool(articles: pl.DataFrame, prior: pl.DataFrame | None) -> tuple[pl.DataFrame, pl.Series]:
    """Prior and new articles in copy order with a position index, and their texts: the inputs' bodies, not
    copied; the pool's `text_row` indexes them."""
    offset = prior.height if prior is not None else 0
    new = articles.select(POOL_META).with_columns(
        is_new=pl.lit(True), **{c: pl.lit(None, dtype=t) for c, t in ADDED_SCHEMA.items()},
        text_row=pl.int_range(pl.len(), dtype=pl.Int64) + offset,
    )
    frames, texts = [new], [articles["body"]]
    if prior is not None and prior.height:
        frames.insert(0, _prior_rows(prior, 0))
        texts.insert(0, prior["body"].cast(pl.String))
    return _in_copy_order(pl.concat(frames, how="vertical_relaxed")), pl.concat(texts, rechunk=False)


def _prior_rows(prior: pl.DataFrame, first_text_row: int) -> pl.DataFrame:
    """Pool rows (without `pos`) of prior articles whose texts start at `first_text_row`."""
    return prior.with_columns(
        **{c: pl.lit(None, dtype=t) for c, t in ADDED_SCHEMA.items() if c not in prior.columns}
    ).select(*POOL_META, is_new=pl.lit(False), **{c: pl.col(c).cast(t) for c, t in ADDED_SCHEMA.items()},
             text_row=pl.int_range(pl.len(), dtype=pl.Int64) + first_text_row)


def _in_copy_order(rows: pl.DataFrame) -> pl.DataFrame:
    """Pool rows sorted in copy order, numbered by `pos`."""
    return (
        rows.cast({c: BASE_SCHEMA[c] for c in POOL_META})
        .sort(copy_order(), nulls_last=True)
        .with_row_index("pos")
        .with_columns(pl.col("pos").cast(pl.Int64))
    )


def _widened(pool: pl.DataFrame, texts: pl.Series, prior: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """`pool` (copies marked) and its texts with the `prior` articles added, for what reads the copy groups of new
    articles only: the pool's rows keep theirs, an added article is put in a group of its own."""
    if prior.is_empty():
        return pool, texts
    rows = pl.concat([
        pool.join(pool.select(root="pos", root_id="article_id"), on="root", maintain_order="left").drop("pos", "root"),
        _prior_rows(prior, len(texts)).with_columns(root_id="article_id"),
    ], how="diagonal_relaxed")
    wider = _in_copy_order(rows)
    wider = wider.join(wider.select(root_id="article_id", root="pos"), on="root_id", maintain_order="left")
    return wider.drop("root_id"), pl.concat([texts, prior["body"].cast(pl.String)], rechunk=False)


class _Unseen(NamedTuple):
    """The texts of new articles no prior article has, one per content hash (its first copy's) in copy order:
    their shingle sets and MinHash band keys."""

    content_hash: pl.Series
    sets: ShingleSets
    bands: np.ndarray


def _unseen_texts(articles: pl.DataFrame, prior: pl.DataFrame | None) -> _Unseen:
    """Shingle the new texts (see `_Unseen`)."""
    firsts = (
        articles.select("article_id", "published_date", "content_hash", row=pl.int_range(pl.len()))
        .sort(copy_order(), nulls_last=True)
        .unique("content_hash", keep="first", maintain_order=True)
    )
    if prior is not None and prior.height:
        known = prior.filter(pl.col("content_hash").is_in(firsts["content_hash"].implode()))["content_hash"]
        firsts = firsts.filter(~pl.col("content_hash").is_in(known.implode()))
    sets, bands = shingle_sets(articles["body"], firsts["row"].to_numpy())
    return _Unseen(firsts["content_hash"], sets, bands)


def _with_any(keys: pl.DataFrame, column: str, values: pl.Series) -> pl.DataFrame:
    """The rows of `keys` whose list `column` holds one of `values`."""
    return keys.filter(pl.col(column).list.eval(pl.element().is_in(values.implode())).list.any())


def _prior_groups(prior: pl.DataFrame | None) -> pl.DataFrame:
    """Per prior article, the first (in copy order) of its copy group among the prior articles, those linked by
    `duplicate_of` or sharing a text, transitively (article_id, group_first)."""
    if prior is None or prior.is_empty():
        return pl.DataFrame(schema={"article_id": pl.String, "group_first": pl.String})
    rows = (
        prior.select("article_id", "content_hash", "duplicate_of", "published_date")
        .sort(copy_order(), nulls_last=True)
        .with_row_index("i")
        .with_columns(pl.col("i").cast(pl.Int64), same_text=pl.col("i").min().over("content_hash").cast(pl.Int64))
    )
    links = rows.join(rows.select(duplicate_of="article_id", target="i"), on="duplicate_of")
    first = _joined(np.arange(rows.height), np.r_[links["i"].to_numpy(), rows["i"].to_numpy()],
                    np.r_[links["target"].to_numpy(), rows["same_text"].to_numpy()])  # a set's root: its first
    return rows.select("article_id", group_first=rows["article_id"].gather(first))


def _linked(prior: pl.DataFrame, ids: pl.Series) -> pl.DataFrame:
    """The copy groups of the prior articles `ids`, whole: the prior articles linked to them by `duplicate_of`
    (either way) or a shared text, transitively (their article_id, content_hash, duplicate_of, published_date)."""
    links = prior.select("article_id", "content_hash", "duplicate_of", "published_date")
    members = links.filter(pl.col("article_id").is_in(ids.implode()))
    while True:
        reach = pl.concat([members["article_id"], members["duplicate_of"].drop_nulls()]).implode()
        grown = links.filter(pl.col("article_id").is_in(reach) | pl.col("duplicate_of").is_in(reach)
                             | pl.col("content_hash").is_in(members["content_hash"].implode()))
        if grown.height == members.height:  # it holds `members`, so nothing was added
            return grown
        members = grown


def _copy_context(prior: pl.DataFrame, keys: pl.DataFrame, hashes: pl.Series, unseen: _Unseen
                  ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The prior articles that can decide a new text's copy group (its content hash in `hashes`): those with its
    text or a MinHash band key of it (a superset of those sharing a bucket), and the first copy of each of their
    prior copy groups, which leads the group whatever links it to them; and `_prior_groups` of those groups."""
    band_keys = unseen.bands.reshape(-1)
    shared = _with_any(keys, "bands", pl.Series(band_keys[band_keys != 0]))["article_id"]
    found = prior.filter(pl.col("article_id").is_in(shared.implode())
                         | pl.col("content_hash").is_in(hashes.implode()))["article_id"]
    groups = _prior_groups(_linked(prior, found))
    firsts = groups.filter(pl.col("article_id").is_in(found.implode()))["group_first"]
    return prior.filter(pl.col("article_id").is_in(pl.concat([found, firsts]).implode())), groups


def _story_context(prior: pl.DataFrame, keys: pl.DataFrame, pool: pl.DataFrame, blocks: pl.DataFrame
                   ) -> pl.DataFrame:
    """The prior articles not in `pool` that `_candidate_pairs` can pair with a new first copy (`blocks`: their
    article_id, block): all with one of its blocking keys in its week or the adjacent ones, undated ones
    included (all with the key when it is undated), so every (key, week) group it looks at is whole."""
    week = (pl.col("published_date").cast(pl.Int64) // DATE_WINDOW_DAYS).alias("week")
    probes = blocks.join(pool.select("article_id", week), on="article_id").select("block", "week").explode(
        "block").drop_nulls("block")
    probe_keys = probes["block"].unique().implode()
    hits = _with_any(keys.select("article_id", "block"), "block", probes["block"].unique()).join(
        pool.select("article_id"), on="article_id", how="anti")
    entries = hits.explode("block").filter(pl.col("block").is_in(probe_keys)).join(
        prior.select("article_id", week).filter(pl.col("article_id").is_in(hits["article_id"].implode())),
        on="article_id")
    key_week = pl.col("block").hash(HASH_SEED) ^ pl.col("week").hash(HASH_SEED + 1)  # a clash only adds an article
    near = probes.filter(pl.col("week").is_not_null()).select(
        "block", week=pl.concat_list(pl.col("week") - 1, "week", pl.col("week") + 1)).explode("week")
    undated_keys = probes.filter(pl.col("week").is_null())["block"].implode()
    probed = entries.filter(pl.col("week").is_null() | pl.col("block").is_in(undated_keys)
                            | key_week.is_in(near.select(key_week).to_series().implode()))
    return prior.filter(pl.col("article_id").is_in(probed["article_id"].unique().implode()))


class _ShingleRows:
    """Shingle sets of texts in the pool by copy-group number `k`, computed once per text when first needed."""

    def __init__(self, texts: pl.Series, text_rows: np.ndarray) -> None:
        self.texts, self.text_rows = texts, text_rows
        self.row_of, self.parts, self.n = np.full(len(text_rows), -1, np.int64), [], 0

    def add(self, ks: np.ndarray, sets: ShingleSets | None = None) -> None:
        """Take the shingle sets of texts `ks` from `sets`, or shingle those of them not seen yet."""
        if sets is None:
            ks = np.unique(ks[self.row_of[ks] < 0])
            if not len(ks):
                return
            sets, _ = shingle_sets(self.texts, self.text_rows[ks], with_bands=False)
        self.row_of[ks] = self.n + np.arange(len(ks))
        self.parts.append(sets)
        self.n += len(ks)

    def jaccard(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Exact shingle Jaccard of text pairs (a[n], b[n])."""
        self.add(np.r_[a, b])
        sets, row_of = self.all()
        sizes = sets.sizes().astype(np.float64)
        ra, rb = row_of[a], row_of[b]
        inter = intersection_sizes(sets, ra, rb)
        return inter / np.maximum(sizes[ra] + sizes[rb] - inter, 1.0)

    def all(self) -> tuple[ShingleSets, np.ndarray]:
        """The shingle sets computed so far, and the row of each text in them (-1: not computed)."""
        sets = ShingleSets.stack(self.parts)
        self.parts = [sets]
        return sets, self.row_of


def _mark_copies(pool: pl.DataFrame, texts: pl.Series, prior_keys: pl.DataFrame, new_texts: _Unseen,
                 groups: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Add `root` (pos of the first copy of the copy group: exact and near copies, transitively) and set
    duplicate_of/kind/score/evidence for new copies; also return the band keys of new texts (article_id, bands).

    The texts never seen before come shingled (`new_texts`); prior texts are found through their stored band keys
    and shingled only when they are a candidate."""
    reps = (
        pool.group_by("content_hash")
        .agg(rep=pl.col("pos").min(), unseen=pl.col("is_new").all())
        .sort("rep")
        .with_columns(k=pl.int_range(pl.len(), dtype=pl.Int64))
    )
    pool = pool.join(reps.select("content_hash", "rep", "k"), on="content_hash", how="left", maintain_order="left")
    rep_pos = reps["rep"].to_numpy()
    text_rows = pool["text_row"].gather(rep_pos).to_numpy()
    shingles = _ShingleRows(texts, text_rows)
    first_seen = reps.filter("unseen")
    if not first_seen["content_hash"].equals(new_texts.content_hash, check_names=False):
        raise RuntimeError("the new texts were shingled in another order than the pool's")
    unseen, bands = first_seen["k"].to_numpy(), new_texts.bands
    shingles.add(unseen, new_texts.sets)
    is_new = np.zeros(len(rep_pos), bool)
    is_new[unseen] = True
    prior_bands = (  # of the prior texts only: a new article with a prior one's id replaces its text
        prior_keys.select("article_id", "bands")
        .join(pool.filter(~pl.col("is_new")).select("article_id", "k"), on="article_id")
        .filter(pl.col("bands").is_not_null())
        .unique("k", keep="first")
    )
    prior_buckets = prior_bands.select(
        "k", band=pl.int_ranges(pl.col("bands").list.len()).cast(pl.List(pl.Int16)), key="bands"
    ).explode("band", "key")
    new_buckets = _buckets(unseen, bands)
    buckets = pl.concat([new_buckets, prior_buckets.join(new_buckets, on=["band", "key"], how="semi")])
    shingles.add(buckets["k"].to_numpy())  # the prior texts that can be candidates, shingled at once
    # Prior copy groups are kept as edges to their first copy, so a new copy of a prior copy reaches it.
    prior_links = (
        pool.select("article_id", "k")
        .join(groups, on="article_id")
        .join(pool.select(group_first="article_id", k2="k"), on="group_first")
    )
    members = (  # the buckets of two texts or more, each contiguous and in text order (grouped, not sorted whole)
        buckets.group_by("band", "key").agg(pl.col("k").sort()).filter(pl.col("k").list.len() > 1).explode("k")
    )
    comp = _copy_groups(prior_links["k"].to_numpy(), prior_links["k2"].to_numpy(), members, is_new,
                        *shingles.all())
    groups = reps.select("rep", "k", "unseen").with_columns(comp=comp).with_columns(
        root=pl.col("rep").min().over("comp"), root_k=pl.col("k").min().over("comp")
    )
    moved = groups.filter((pl.col("k") != pl.col("root_k")) & pl.col("unseen"))
    moved = moved.with_columns(jaccard=shingles.jaccard(moved["k"].to_numpy(), moved["root_k"].to_numpy()))
    pool = pool.join(groups.select("k", "root"), on="k", how="left", maintain_order="left").join(
        moved.select("k", "jaccard"), on="k", how="left", maintain_order="left"
    )
    # Exact copies point to the first identical copy; a first identical copy that is a near copy points to
    # the first copy of its near-copy group.
    exact = pl.col("pos") != pl.col("rep")
    near_copy = ~exact & (pl.col("pos") != pl.col("root"))
    pool = pool.with_columns(target=pl.when(exact).then("rep").when(near_copy).then("root"))
    pool = pool.join(pool.select(target="pos", target_id="article_id"), on="target", how="left", maintain_order="left")
    is_copy = pl.col("is_new") & (exact | near_copy)
    pool = pool.with_columns(
        duplicate_of=pl.when(is_copy).then("target_id").otherwise("duplicate_of"),
        duplicate_kind=pl.when(is_copy)
        .then(pl.when(exact).then(pl.lit("exact")).otherwise(pl.lit("near")))
        .otherwise("duplicate_kind"),
        story_score=pl.when(is_copy).then(pl.when(exact).then(1.0).otherwise("jaccard")).otherwise("story_score"),
        story_evidence=pl.when(is_copy)
        .then(
            pl.when(exact)
            .then(pl.format("exact copy of {}", "target_id"))
            .otherwise(pl.format("near copy of {} (word-shingle jaccard {})", "target_id", pl.col("jaccard").round(3)))
        )
        .otherwise("story_evidence"),
    ).drop("rep", "k", "target", "target_id", "jaccard")
    new_bands = pl.DataFrame({"article_id": pool["article_id"].gather(rep_pos[unseen]),
                              "bands": _band_lists(bands)})
    return pool, new_bands


def _band_lists(bands: np.ndarray) -> pl.Series:
    """The rows of a band-key matrix as a list column (a zero-copy conversion, not one list per row)."""
    return pl.Series(bands).cast(pl.List(pl.UInt64))


def _buckets(ks: np.ndarray, bands: np.ndarray) -> pl.DataFrame:
    """LSH bucket rows (k, band, key) of texts with shingles."""
    frame = pl.DataFrame({
        "k": np.repeat(ks, MINHASH_BANDS).astype(np.int64),
        "band": np.tile(np.arange(MINHASH_BANDS, dtype=np.int16), len(ks)),
        "key": bands.reshape(-1),
    }, schema={"k": pl.Int64, "band": pl.Int16, "key": pl.UInt64})
    return frame.filter(pl.col("key") != 0)


def _copy_groups(link_a: np.ndarray, link_b: np.ndarray, members: pl.DataFrame, is_new: np.ndarray,
                 sets: ShingleSets, row_of: np.ndarray) -> np.ndarray:
    """Copy-group label per text: the groups linked by the prior copy links (link_a[n], link_b[n]) and by the
    near copies (shingle Jaccard >= NEAR_JACCARD, one text new) among the texts sharing an LSH bucket (`members`:
    k, band, key; each bucket contiguous, in k order). Every member is first tried against its bucket's first member
    (cheap, and it connects most copy groups), then every pair still spanning two groups; each pair once (in
    the first band it shares), verified in parallel. The groups are the same as when every pair is verified."""
    k, band, key = (members[c].to_numpy() for c in ("k", "band", "key"))
    bucket_start = np.r_[np.flatnonzero(np.r_[len(k) > 0, (np.diff(band) != 0) | (np.diff(key) != 0)]), len(k)]
    band_keys = np.zeros((len(is_new), MINHASH_BANDS), np.uint64)
    band_keys[k, band] = key
    root = _joined(np.arange(len(is_new)), link_a, link_b)
    for anchors_only in (True, False):
        a, b = _bucket_pairs(k, bucket_start, band, band_keys, is_new, root, anchors_only)
        near = jaccard_at_least(sets, row_of[a], row_of[b], NEAR_JACCARD)
        root = _joined(root, a[near], b[near])
    return root


@numba.njit(cache=True, nogil=True)
def _bucket_pairs(members: np.ndarray, bucket_start: np.ndarray, band: np.ndarray, band_keys: np.ndarray,
                  is_new: np.ndarray, root: np.ndarray, anchors_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (a < b) of texts sharing a bucket (with `anchors_only`, its first member and each other one),
    one of them new, in two groups of `root`, each listed in the first band where the two share a key."""
    out_a, out_b = np.empty(1024, np.int64), np.empty(1024, np.int64)
    n = 0
    for bucket in range(len(bucket_start) - 1):
        lo, hi = bucket_start[bucket], bucket_start[bucket + 1]
        for x in range(lo, lo + 1 if anchors_only else hi - 1):
            a = members[x]
            for y in range(x + 1, hi):
                b = members[y]
                if not (is_new[a] or is_new[b]) or root[a] == root[b]:
                    continue
                earlier = False
                for t in range(band[lo]):
                    if band_keys[a, t] != 0 and band_keys[a, t] == band_keys[b, t]:
                        earlier = True
                        break
                if earlier:
                    continue
                if n == len(out_a):
                    out_a = np.concatenate((out_a, np.empty(n, np.int64)))
                    out_b = np.concatenate((out_b, np.empty(n, np.int64)))
                out_a[n], out_b[n] = a, b
                n += 1
    return out_a[:n].copy(), out_b[:n].copy()


@numba.njit(cache=True, nogil=True)
def _joined(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Union-find roots (resolved) after joining the pairs (a[n], b[n])."""
    parent = parent.copy()
    for n in range(len(a)):
        _union(parent, a[n], b[n])
    for k in range(len(parent)):
        parent[k] = _root(parent, k)
    return parent


@numba.njit(cache=True, nogil=True)
def _root(parent: np.ndarray, k: int) -> int:
    """Union-find root of k (with path halving)."""
    while parent[k] != k:
        parent[k] = parent[parent[k]]
        k = parent[k]
    return k


@numba.njit(cache=True, nogil=True)
def _union(parent: np.ndarray, a: int, b: int) -> None:
    """Join the union-find sets of a and b."""
    ra, rb = _root(parent, a), _root(parent, b)
    parent[max(ra, rb)] = min(ra, rb)


def _new_roots(pool: pl.DataFrame) -> pl.DataFrame:
    """The new first copies of the pool's copy groups, in pool order: the new texts that enter the index."""
    return pool.filter(pl.col("is_new") & (pl.col("pos") == pl.col("root")))


class _RootVectors(NamedTuple):
    """TF-IDF rows of the new first copies (in pool order), their vocabulary and blocking keys (article_id,
    block, block_w), the feature frequencies including them, and the number of clustered docs those count."""

    x: sp.csr_matrix
    vocab: pl.DataFrame
    blocks: pl.DataFrame
    df: pl.DataFrame
    n_docs: int


def _root_vectors(texts: pl.Series, roots: pl.DataFrame, index: DedupIndex) -> _RootVectors:
    """`_RootVectors` of `roots` (every new first copy enters the index, as `build_index` would count it)."""
    counts, vocab = story_features(texts, roots["text_row"].to_numpy(), roots["title"])
    df = (
        pl.concat([index.df, doc_frequencies(counts)], how="vertical_relaxed")
        .group_by("key").agg(pl.col("df").sum())
        .cast(DF_SCHEMA)
    )
    n_docs = int(index.keys["block"].is_not_null().sum()) + roots.height
    x = tfidf_matrix(counts, df, n_docs)
    blocks = _blocking_keys(x, df, n_docs).select(roots["article_id"], "block", "block_w")
    return _RootVectors(x, vocab, blocks, df, n_docs)


def _assign_story_ids(pool: pl.DataFrame, texts: pl.Series, prior_keys: pl.DataFrame, vectors: _RootVectors,
                      prior: pl.DataFrame | None) -> pl.DataFrame:
    """Cluster the new first copies not in a prior copy group into stories; copies and copy groups touching a
    prior story inherit its id."""
    group_story = (
        pool.filter(~pl.col("is_new")).sort("pos").group_by("root").agg(group_story=pl.col("story_id").first())
    )
    pool = pool.join(group_story, on="root", how="left", maintain_order="left")
    roots = _new_roots(pool)
    labels = _cluster_docs(pool, texts, roots, roots["group_story"].is_null(), prior_keys, vectors, prior)
    pool = pool.join(labels, on="pos", how="left", maintain_order="left")
    root_story = pool.select(root="pos", root_story=pl.coalesce("cluster_story", "group_story"))
    pool = pool.join(root_story, on="root", how="left", maintain_order="left")
    is_clustered = pl.col("cluster_story").is_not_null() & pl.col("is_new")
    joins_copies = pl.col("is_new") & pl.col("story_evidence").is_null() & pl.col("group_story").is_not_null()
    return pool.with_columns(
        story_id=pl.when(pl.col("is_new")).then(pl.coalesce("root_story", "group_story")).otherwise("story_id"),
        story_score=pl.when(is_clustered).then("cluster_score").otherwise("story_score"),
        story_evidence=pl.when(is_clustered)
        .then("cluster_evidence")
        .when(joins_copies)
        .then(pl.lit("first copy of texts already in this story"))
        .otherwise("story_evidence"),
    ).drop("group_story", "cluster_story", "cluster_score", "cluster_evidence", "root_story")


def _cluster_docs(pool: pl.DataFrame, texts: pl.Series, roots: pl.DataFrame, to_cluster: pl.Series,
                  prior_keys: pl.DataFrame, vectors: _RootVectors, prior: pl.DataFrame | None) -> pl.DataFrame:
    """Story per new doc of `roots` where `to_cluster` (pos, cluster_story, cluster_score, cluster_evidence)."""
    empty = {"pos": pl.Int64, "cluster_story": pl.String, "cluster_score": pl.Float64, "cluster_evidence": pl.String}
    new = roots.filter(to_cluster)
    if not new.height:
        return pl.DataFrame(schema=empty)
    x_new = vectors.x[np.flatnonzero(to_cluster.to_numpy())]
    new_blocks = vectors.blocks.join(new.select("article_id", "pos"), on="article_id", maintain_order="right")
    prior_blocks = prior_keys.select("article_id", "block", "block_w").join(
        pool.filter(~pl.col("is_new")).select("article_id", "pos"), on="article_id"
    ).filter(pl.col("block").is_not_null())
    dates = pool.select("pos", "published_date", "is_new")
    pairs = _candidate_pairs(pl.concat([new_blocks, prior_blocks]).drop("article_id").join(dates, on="pos"))
    candidates = pairs.filter(~pl.col("new_j")).select(pos="j").unique().sort("pos")
    docs = pl.concat([new.select("pos"), candidates]).join(
        pool.select("pos", "article_id", "is_new", "story_id", "published_date", "text_row", "title"), on="pos",
        maintain_order="left",
    )
    prior_docs = docs.slice(new.height)
    counts, prior_vocab = story_features(texts, prior_docs["text_row"].to_numpy(), prior_docs["title"])
    x = sp.vstack([x_new, tfidf_matrix(counts, vectors.df, vectors.n_docs)], format="csr")
    local = docs.select("pos").with_row_index("idx").cast({"idx": pl.Int64})
    pairs = pairs.join(local.select(i="pos", li="idx"), on="i").join(local.select(j="pos", lj="idx"), on="j")
    i, j = pairs["li"].to_numpy(), pairs["lj"].to_numpy()
    sim = rowwise_dot(x, i, j)
    is_new = docs["is_new"].to_numpy()
    both_new = is_new[i] & is_new[j]
    label = _average_link(docs.height, i[both_new], j[both_new], sim[both_new], np.flatnonzero(is_new))
    label = _contrast_split(x, label)
    stories = _StoryVectors(prior, vectors.df, vectors.n_docs)
    story = _attach_to_prior(x, stories, docs, label, i[~both_new], j[~both_new], sim[~both_new])
    vocab = pl.concat([vectors.vocab, prior_vocab]).unique("key")
    score, evidence = _evidence(x, vocab, docs["article_id"], story, i, j, sim)
    return (
        docs.select("pos")
        .with_columns(cluster_story=story, cluster_score=score, cluster_evidence=evidence)
        .filter(pl.Series(is_new))
    )


def _blocking_keys(x: sp.csr_matrix, df: pl.DataFrame, n_docs: int) -> pl.DataFrame:
    """Per row of `x` (doc) its blocking keys and weights: the BLOCK_TOP_K top-weighted rare-but-repeated
    features, plus the BLOCK_TOP_UNIQUE top-weighted features no other doc has yet, which are what a later
    article of the same story will share with it."""
    max_df = max(BLOCK_MIN_MAX_DF, int(BLOCK_MAX_DF * n_docs))
    indptr, keys, weights = _top_features(x.indptr, x.indices, x.data, frequencies_of(x.indices, df), max_df)
    return pl.DataFrame({"doc": np.arange(x.shape[0], dtype=np.int64), "block": list_column(indptr, keys),
                         "block_w": list_column(indptr, weights)})


@numba.njit(cache=True, nogil=True)
def _top_features(indptr: np.ndarray, keys: np.ndarray, weights: np.ndarray, doc_freq: np.ndarray, max_df: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per CSR row: its BLOCK_TOP_K heaviest features of frequency 2..max_df, then its BLOCK_TOP_UNIQUE
    heaviest of frequency 1 (each by weight descending, then key), as CSR (indptr, keys, weights)."""
    n = len(indptr) - 1
    out_ptr = np.zeros(n + 1, np.int64)
    out_keys = np.empty(n * (BLOCK_TOP_K + BLOCK_TOP_UNIQUE), np.int64)
    out_w = np.empty(len(out_keys), np.float32)
    picked = np.empty(np.max(np.diff(indptr)) if n else 0, np.int64)
    nnz = 0
    for d in range(n):
        for unique, top in ((False, BLOCK_TOP_K), (True, BLOCK_TOP_UNIQUE)):
            m = 0
            for p in range(indptr[d], indptr[d + 1]):
                if 0 < doc_freq[p] <= max_df and (doc_freq[p] == 1) == unique:
                    picked[m] = p
                    m += 1
            order = np.argsort(-weights[picked[:m]], kind="mergesort")[:top]  # stable: ties keep keys ascending
            for p in picked[:m][order]:
                out_keys[nnz], out_w[nnz] = keys[p], weights[p]
                nnz += 1
        out_ptr[d + 1] = nnz
    return out_ptr, out_keys[:nnz].copy(), out_w[:nnz].copy()


def _candidate_pairs(blocks: pl.DataFrame) -> pl.DataFrame:
    """Pairs (i, j, new_j) of pool positions, i new, whose top-weighted features overlap by at least
    BLOCK_MIN_PARTIAL (a lower bound of their similarity) and whose dates are within the window (unless one
    is missing); a pair of two new docs appears once, with i < j; sorted by i, then j.

    Blocking keys are (feature, week): a new dated article looks up its own and the adjacent weeks plus the
    undated articles; a new undated article looks up every article. A (feature, week) shared by more than
    BLOCK_MAX_PER_WEEK articles is no evidence of one story, so work stays linear when a week gets denser.
    """
    entries = blocks.select("pos", "is_new", day=pl.col("published_date").cast(pl.Int64), key="block",
                            w="block_w").explode("key", "w").drop_nulls("key")
    entries = entries.join(entries.filter("is_new").select("key").unique(), on="key", how="semi")
    if entries.is_empty():  # no new doc has a blocking key (an empty text): no pairs
        return pl.DataFrame(schema={"i": pl.Int64, "j": pl.Int64, "new_j": pl.Boolean})
    entries = entries.with_columns(
        pl.col("day").fill_null(NO_DAY), week=(pl.col("day") // DATE_WINDOW_DAYS).fill_null(NO_DAY)
    ).sort("key", "week")
    key, week, day, pos, w = (entries[c].to_numpy() for c in ("key", "week", "day", "pos", "w"))
    is_new = entries["is_new"].to_numpy()
    group_start, group_of, key_groups = _block_groups(key, week)
    probes = np.flatnonzero(is_new)
    probes = probes[np.argsort(pos[probes], kind="stable")]
    doc_start = np.r_[np.flatnonzero(np.r_[True, np.diff(pos[probes]) != 0]), len(probes)]
    new_at = np.zeros(int(pos.max(initial=-1)) + 1, np.bool_)
    new_at[pos[is_new]] = True
    bounds = doc_start[np.linspace(0, len(doc_start) - 1, (os.cpu_count() or 1) + 1).astype(np.int64)]

    def part(k: int) -> tuple[np.ndarray, np.ndarray]:
        return _overlapping(group_start, group_of, key_groups, week, day, pos, w, new_at, probes,
                            bounds[k], bounds[k + 1])

    with ThreadPoolExecutor(max_workers=len(bounds) - 1) as threads:
        found = list(threads.map(part, range(len(bounds) - 1)))
    i = np.concatenate([np.empty(0, np.int64), *(f[0] for f in found)])
    j = np.concatenate([np.empty(0, np.int64), *(f[1] for f in found)])
    return pl.DataFrame({"i": i, "j": j, "new_j": new_at[j]},
                        schema={"i": pl.Int64, "j": pl.Int64, "new_j": pl.Boolean})


@numba.njit(cache=True, nogil=True)
def _block_groups(key: np.ndarray, week: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Of entries sorted by (key, week): where each (key, week) group starts (G + 1 offsets), each entry's
    group, and per group the range of groups [first, end) with its key."""
    n = len(key)
    starts = [0]
    for e in range(1, n):
        if key[e] != key[e - 1] or week[e] != week[e - 1]:
            starts.append(e)
    starts.append(n)
    group_start = np.array(starts, np.int64)
    n_groups = len(group_start) - 1
    key_groups = np.empty((n_groups, 2), np.int64)
    group_of = np.empty(n, np.int64)
    first = 0
    for g in range(n_groups + 1):
        if g < n_groups:
            group_of[group_start[g] : group_start[g + 1]] = g
        if g == n_groups or key[group_start[g]] != key[group_start[first]]:
            key_groups[first:g, 0], key_groups[first:g, 1] = first, g
            first = g
    return group_start, group_of, key_groups


@numba.njit(cache=True, nogil=True)
def _overlapping(group_start: np.ndarray, group_of: np.ndarray, key_groups: np.ndarray, week: np.ndarray,
                 day: np.ndarray, pos: np.ndarray, w: np.ndarray, new_at: np.ndarray, probes: np.ndarray,
                 lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """The candidate pairs (i, j) of the probing docs whose entries are probes[lo:hi] (see `_candidate_pairs`):
    per doc, the weight products summed per partner over its blocking keys' groups, in float64 like polars."""
    partial = np.zeros(len(new_at))
    seen = np.zeros(len(new_at), np.bool_)
    touched = np.empty(len(new_at), np.int64)
    out_i, out_j = np.empty(1024, np.int64), np.empty(1024, np.int64)
    n_out = 0
    a = lo
    while a < hi:
        b = a + 1
        while b < hi and pos[probes[b]] == pos[probes[a]]:
            b += 1
        i, m = pos[probes[a]], 0
        for e in probes[a:b]:
            first, end = key_groups[group_of[e], 0], key_groups[group_of[e], 1]
            if week[e] == NO_DAY:  # an undated probe looks at every group of its key
                m = _add_groups(first, end, e, m, group_start, day, pos, w, new_at, partial, seen, touched)
                continue
            if week[group_start[first]] == NO_DAY:  # the key's undated group sorts first
                m = _add_groups(first, first + 1, e, m, group_start, day, pos, w, new_at, partial, seen, touched)
                first += 1
            while end - first > 1:  # binary search: the first group of week >= week - 1
                middle = (first + end) // 2
                if week[group_start[middle - 1]] < week[e] - 1:
                    first = middle
                else:
                    end = middle
            if first < end and week[group_start[first]] < week[e] - 1:
                first += 1
            end = first
            while end < key_groups[group_of[e], 1] and week[group_start[end]] <= week[e] + 1:
                end += 1
            m = _add_groups(first, end, e, m, group_start, day, pos, w, new_at, partial, seen, touched)
        if n_out + m > len(out_i):
            out_i = np.concatenate((out_i, np.empty(n_out + m, np.int64)))
            out_j = np.concatenate((out_j, np.empty(n_out + m, np.int64)))
        for j in np.sort(touched[:m]):
            seen[j] = False
            if np.float32(partial[j]) >= np.float32(BLOCK_MIN_PARTIAL):
                out_i[n_out], out_j[n_out] = i, j
                n_out += 1
        a = b
    return out_i[:n_out].copy(), out_j[:n_out].copy()


@numba.njit(cache=True, nogil=True)
def _add_groups(first: int, end: int, e: int, m: int, group_start: np.ndarray, day: np.ndarray, pos: np.ndarray,
                w: np.ndarray, new_at: np.ndarray, partial: np.ndarray, seen: np.ndarray, touched: np.ndarray) -> int:
    """Add probe entry e's weight products with the entries of groups first..end (those of at most
    BLOCK_MAX_PER_WEEK entries) to `partial` by partner; returns the new count of partners in `touched`."""
    i = pos[e]
    for g in range(first, end):
        if group_start[g + 1] - group_start[g] > BLOCK_MAX_PER_WEEK:
            continue
        for f in range(group_start[g], group_start[g + 1]):
            j = pos[f]
            if j == i or (new_at[j] and j < i):
                continue
            if day[e] != NO_DAY and day[f] != NO_DAY and abs(day[e] - day[f]) > DATE_WINDOW_DAYS:
                continue
            if not seen[j]:
                seen[j], partial[j], touched[m] = True, 0.0, j
                m += 1
            partial[j] += np.float64(w[e] * w[f])
    return m


class _StoryVectors:
    """TF-IDF rows of the prior stories' clustered docs, computed on demand (for the contrast test against a
    story)."""

    def __init__(self, prior: pl.DataFrame | None, df: pl.DataFrame, n_docs: int) -> None:
        self.prior, self.df, self.n_docs = prior, df, n_docs

    @cached_property
    def docs(self) -> pl.DataFrame:
        """The prior articles that are not copies (their row in `prior`, story, title), in copy order."""
        if self.prior is None:
            return pl.DataFrame(schema={"story_id": pl.String, "title": pl.String, "row": pl.Int64})
        return self.prior.select(*POOL_META, "story_id", "duplicate_of", row=pl.int_range(pl.len())).filter(
            pl.col("duplicate_of").is_null()).sort(copy_order(), nulls_last=True).select("story_id", "title", "row")

    def story_sizes(self, story_ids: pl.Series) -> pl.DataFrame:
        """Clustered prior docs per story of `story_ids` (story_id, n_story)."""
        docs = self.docs.filter(pl.col("story_id").is_in(story_ids.implode()))
        return docs.group_by("story_id").agg(n_story=pl.len())

    def of_story(self, story_id: str) -> sp.csr_matrix:
        """Vectors of a prior story's clustered docs."""
        members = self.docs.filter(pl.col("story_id") == story_id)
        counts, _ = story_features(self.prior["body"].cast(pl.String), members["row"].to_numpy(), members["title"])
        return tfidf_matrix(counts, self.df, self.n_docs)


def _average_link(n: int, i: np.ndarray, j: np.ndarray, sim: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Average-link cluster label per doc (-1 outside `nodes`) over the scored pairs (others count as 0),
    cut at STORY_THRESHOLD.

    Average-link clusters never span two components of the graph of pairs with sim >= threshold, so the
    dense linkage runs per component (a component too large is split at a higher threshold first).
    """
    label = np.full(n, -1, np.int64)
    next_label = 0
    work = [(nodes, STORY_THRESHOLD)]
    while work:
        members, cut = work.pop()
        local = np.full(n, -1, np.int64)
        local[members] = np.arange(len(members))
        inside = (local[i] >= 0) & (local[j] >= 0)
        li, lj, ls = local[i[inside]], local[j[inside]], sim[inside]
        strong = ls >= cut
        graph = sp.coo_matrix((np.ones(strong.sum()), (li[strong], lj[strong])), shape=(len(members),) * 2)
        n_comp, comp = connected_components(graph, directed=False)
        sizes = np.bincount(comp, minlength=n_comp)
        label[members] = next_label + comp
        next_label += n_comp
        by_comp = np.argsort(comp, kind="stable")
        starts = np.r_[0, np.cumsum(sizes)]
        rank = np.empty(len(members), np.int64)
        rank[by_comp] = np.arange(len(members)) - starts[comp[by_comp]]
        same = comp[li] == comp[lj]
        pair_order = np.argsort(comp[li][same], kind="stable")
        pi, pj, ps = li[same][pair_order], lj[same][pair_order], ls[same][pair_order]
        pair_starts = np.searchsorted(comp[pi], np.arange(n_comp + 1))
        for c in np.flatnonzero(sizes > 2):
            group = members[by_comp[starts[c] : starts[c + 1]]]
            if len(group) > MAX_DENSE_CLUSTER:
                work.append((group, cut + 0.05))
                continue
            lo, hi = pair_starts[c], pair_starts[c + 1]
            sub = _dense_average_link(len(group), rank[pi[lo:hi]], rank[pj[lo:hi]], ps[lo:hi])
            label[group] = next_label + sub
            next_label += int(sub.max()) + 1
    return label


def _dense_average_link(size: int, a: np.ndarray, b: np.ndarray, sim: np.ndarray) -> np.ndarray:
    """Average-link labels (0-based) for one component from its scored pairs."""
    dist = np.ones((size, size))
    dist[a, b] = dist[b, a] = 1.0 - sim
    np.fill_diagonal(dist, 0.0)
    tree = linkage(squareform(np.clip(dist, 0.0, None), checks=False), method="average")
    return _cut_tree(tree, size, 1.0 - STORY_THRESHOLD)


@numba.njit(cache=True, nogil=True)
def _cut_tree(tree: np.ndarray, n: int, cutoff: float) -> np.ndarray:
    """`fcluster(tree, cutoff, criterion="distance") - 1` without its per-call validation of the tree (the costly
    part for the many small components): SciPy's walk from the root, numbering clusters in the same order."""
    highest = np.zeros(n - 1)  # the highest merge inside each merged cluster
    for k in range(n - 1):
        highest[k] = tree[k, 2]
        for child in (int(tree[k, 0]), int(tree[k, 1])):
            if child >= n:
                highest[k] = max(highest[k], highest[child - n])
    label = np.zeros(n, np.int64)
    visited = np.zeros(2 * n - 1, np.bool_)
    path = np.empty(n, np.int64)
    depth, path[0], n_cluster, leader = 0, 2 * n - 2, 0, -1
    while depth >= 0:
        node = path[depth] - n
        left, right = int(tree[node, 0]), int(tree[node, 1])
        if leader == -1 and highest[node] <= cutoff:
            leader = node
            n_cluster += 1
        if left >= n and not visited[left]:
            visited[left] = True
            depth += 1
            path[depth] = left
            continue
        if right >= n and not visited[right]:
            visited[right] = True
            depth += 1
            path[depth] = right
            continue
        for leaf in (left, right):
            if leaf < n:
                if leader == -1:
                    n_cluster += 1
                label[leaf] = n_cluster - 1
        if leader == node:
            leader = -1
        depth -= 1
    return label


def _contrast_split(x: sp.csr_matrix, label: np.ndarray) -> np.ndarray:
    """Split clusters that hide two events of the same kind (two quakes, two title fights).

    Within a cluster, features every member shares (the kind of event, the common actor) are down-weighted by
    a local IDF; the cluster is bisected by average link on the re-weighted vectors and split when the halves
    are far less similar to each other than within themselves (ratio < SPLIT_RATIO), recursively.
    """
    label = label.copy()
    next_label = label.max(initial=-1) + 1
    sizes = np.bincount(label[label >= 0])
    big = np.flatnonzero((label >= 0) & (sizes[np.maximum(label, 0)] >= 2 * SPLIT_MIN_HALF))
    big = big[np.argsort(label[big], kind="stable")]
    stack = np.split(big, np.flatnonzero(np.diff(label[big])) + 1) if len(big) else []
    x_big = x[big]
    row_of = np.full(x.shape[0], -1, np.int64)
    row_of[big] = np.arange(len(big))
    while stack:
        members = stack.pop()
        halves = _bisect_if_contrasted(x_big[row_of[members]])
        if halves is None:
            continue
        label[members[halves]] = next_label
        next_label += 1
        stack += [members[halves], members[~halves]]
    return label


def _bisect_if_contrasted(x: sp.csr_matrix) -> np.ndarray | None:
    """Mask of the second half if the cluster splits into two contrasted halves of SPLIT_MIN_HALF+ docs."""
    sim = _local_similarity(x)
    dist = np.clip(1.0 - sim, 0.0, None)
    np.fill_diagonal(dist, 0.0)
    second = fcluster(linkage(squareform(dist, checks=False), method="average"), 2, criterion="maxclust") == 2
    return second if _contrasted(sim, second) else None


def _local_similarity(x: sp.csr_matrix) -> np.ndarray:
    """Dense similarity of a group's rows with features re-weighted by their IDF inside the group."""
    n = x.shape[0]
    rows = np.repeat(np.arange(n), np.diff(x.indptr))
    cols, col = np.unique(x.indices, return_inverse=True)
    local_df = np.bincount(col)
    weight = x.data * np.log((n + 1) / local_df[col])
    entity = (cols % 2 == 1)[col]  # a feature key's lowest bit marks an entity
    shared_col = np.cumsum(local_df > 1) - 1
    sim = np.zeros((n, n))
    for share, in_channel in ((ENTITY_WEIGHT, entity), (1.0 - ENTITY_WEIGHT, ~entity)):
        norms = np.sqrt(np.bincount(rows[in_channel], weight[in_channel] ** 2, minlength=n))
        keep = in_channel & (local_df[col] > 1)
        dense = np.zeros((n, shared_col[-1] + 1))
        dense[rows[keep], shared_col[col[keep]]] = weight[keep] / norms[rows[keep]]
        sim += share * (dense @ dense.T)
    return sim


def _contrasted(sim: np.ndarray, second: np.ndarray) -> bool:
    """Whether two parts of SPLIT_MIN_HALF+ docs are far less similar to each other than within themselves."""
    a, b = np.flatnonzero(~second), np.flatnonzero(second)
    if min(len(a), len(b)) < SPLIT_MIN_HALF:
        return False
    within = min(_mean_offdiag(sim[np.ix_(a, a)]), _mean_offdiag(sim[np.ix_(b, b)]))
    return bool(within > 0 and sim[np.ix_(a, b)].mean() < SPLIT_RATIO * within)


def _mean_offdiag(block: np.ndarray) -> float:
    """Mean of a square block without its diagonal."""
    n = len(block)
    return float((block.sum() - np.trace(block)) / (n * (n - 1)))

def _attach_to_prior(
    x: sp.csr_matrix,
    vectors: _StoryVectors,
    docs: pl.DataFrame,
    label: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    sim: np.ndarray,
) -> pl.Series:
    """Story id per doc: prior docs keep theirs; a new cluster joins the prior story with the best average
    similarity (pairs not scored count as 0) if it clears STORY_THRESHOLD and the two are not contrasted (the
    same test that splits clusters), else founds a story named after its first (canonical) article."""
    frame = docs.select("pos", "article_id", "is_new", "story_id").with_columns(
        label=pl.Series(label), idx=pl.int_range(pl.len())
    )
    new_first = docs["is_new"].to_numpy()[i]
    links = pl.DataFrame({"new": np.where(new_first, i, j), "old": np.where(new_first, j, i), "sim": sim})
    sizes = frame.group_by("label").agg(n_label=pl.len())
    best = (
        links.join(frame.select(new="idx", label="label"), on="new")
        .join(frame.select(old="idx", story_id="story_id"), on="old")
        .group_by("label", "story_id")
        .agg(total=pl.col("sim").sum())
        .join(sizes, on="label")
        .join(vectors.story_sizes(frame.filter(~pl.col("is_new"))["story_id"].unique()), on="story_id")
        .with_columns(avg=pl.col("total") / (pl.col("n_label") * pl.col("n_story")))
        .filter(pl.col("avg") >= STORY_THRESHOLD)
        .sort("label", "avg", "story_id", descending=[False, True, False])
        .group_by("label", maintain_order=True)
        .first()
        .select("label", "n_label", "n_story", prior_story="story_id")
    )
    best = best.filter(~pl.Series(_contrasted_attachments(x, vectors, frame, best), dtype=pl.Boolean))
    founders = (
        frame.filter("is_new")
        .group_by("label")
        .agg(founder=pl.col("article_id").sort_by("pos").first())
        .with_columns(new_story=stable_id_expr(pl.lit("story"), "founder"))
    )
    return (
        frame.join(best, on="label", how="left", maintain_order="left")
        .join(founders, on="label", how="left", maintain_order="left")
        .select(pl.when("is_new").then(pl.coalesce("prior_story", "new_story")).otherwise("story_id"))
        .to_series()
    )


def _contrasted_attachments(x: sp.csr_matrix, vectors: _StoryVectors, frame: pl.DataFrame,
                            best: pl.DataFrame) -> list[bool]:
    """Per proposed (label, prior_story) attachment: whether the new cluster and the story are contrasted."""
    members = best.join(frame.group_by("label").agg(new_rows=pl.col("idx")), on="label", how="left",
                        maintain_order="left")
    verdicts = []
    for row in members.iter_rows(named=True):
        if min(row["n_label"], row["n_story"]) < SPLIT_MIN_HALF:
            verdicts.append(False)
            continue
        group = sp.vstack([x[row["new_rows"]], vectors.of_story(row["prior_story"])], format="csr")
        is_old = np.arange(group.shape[0]) >= row["n_label"]
        verdicts.append(_contrasted(_local_similarity(group), is_old))
    return verdicts


def _evidence(
    x: sp.csr_matrix,
    vocab: pl.DataFrame,
    ids: pl.Series,
    story: pl.Series,
    i: np.ndarray,
    j: np.ndarray,
    sim: np.ndarray,
) -> tuple[pl.Series, pl.Series]:
    """Per doc: best similarity to another doc of its story and the top shared features of that pair."""
    story_code = story.rank("dense").to_numpy()
    a, b = np.r_[i, j], np.r_[j, i]
    same = story_code[a] == story_code[b]
    both = pl.DataFrame({"a": a[same], "b": b[same], "sim": np.r_[sim, sim][same]})
    best = both.sort("a", "sim", "b", descending=[False, True, False]).group_by("a", maintain_order=True).first()
    best = best.with_columns(partner=ids.gather(best["b"]))
    a, b = best["a"].to_numpy(), best["b"].to_numpy()
    row, key = _top_shared(x.indptr, x.indices, x.data, a, b)
    terms = (
        pl.DataFrame({"row": row, "key": key})
        .join(vocab, on="key", maintain_order="left")
        .with_columns(is_name=pl.col("feat").str.starts_with("@"))
        .group_by("row", maintain_order=True)
        .agg(
            names=pl.col("feat").filter("is_name").str.strip_prefix("@").str.join(", "),
            terms=pl.col("feat").filter(~pl.col("is_name")).str.join(", "),
        )
    )
    explained = (
        best.with_row_index("row")
        .with_columns(pl.col("row").cast(pl.Int64))
        .join(terms, on="row", how="left", maintain_order="left")
    )
    full = pl.DataFrame({"a": np.arange(x.shape[0])}).join(explained, on="a", how="left", maintain_order="left")
    evidence = (
        pl.when(pl.col("sim").is_null())
        .then(pl.lit("founds story: no similar article"))
        .otherwise(
            pl.format(
                "cosine {} with {}; shared names: {}; shared terms: {}",
                pl.col("sim").round(3),
                "partner",
                pl.col("names").fill_null(""),
                pl.col("terms").fill_null(""),
            )
        )
    )
    return full["sim"], full.select(evidence).to_series()


@numba.njit(cache=True, nogil=True)
def _top_shared(indptr: np.ndarray, keys: np.ndarray, weights: np.ndarray, a: np.ndarray, b: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per pair p (rows a[p], b[p] of a CSR with sorted keys): the EVIDENCE_TERMS shared features of each
    channel (entity keys are odd) with the largest nonzero weight products, by product descending then key,
    as (p, key) rows."""
    out_row, out_key = np.empty(len(a) * 2 * EVIDENCE_TERMS, np.int64), np.empty(len(a) * 2 * EVIDENCE_TERMS, np.int64)
    longest = np.max(np.diff(indptr)) if len(indptr) > 1 else 0
    shared_key, shared_v = np.empty(longest, np.int64), np.empty(longest, np.float32)
    n_out = 0
    for p in range(len(a)):
        n = shared_products(indptr, keys, weights, a[p], b[p], shared_key, shared_v)
        for channel in (0, 1):
            for _ in range(EVIDENCE_TERMS):
                best = -1
                for q in range(n):
                    if shared_key[q] & 1 == channel and shared_v[q] >= 0 and (
                            best < 0 or shared_v[q] > shared_v[best]):
                        best = q  # keys ascend, so a tie keeps the smaller key
                if best < 0:
                    break
                out_row[n_out], out_key[n_out] = p, shared_key[best]
                n_out += 1
                shared_v[best] = -1.0  # taken
    return out_row[:n_out].copy(), out_key[:n_out].copy()


def lead_sentence(body: pl.Expr, max_chars: int = 160) -> pl.Expr:
    """A headline stand-in: the body's first sentence, cut at a word boundary past `max_chars`."""
    first = body.str.extract(r"^\s*(.+?[.!?])(?:\s|$)", 1).fill_null(body.str.strip_chars())
    return pl.when(first.str.len_chars() <= max_chars).then(first).otherwise(
        first.str.slice(0, max_chars).str.replace(r"\s+\S*$", "") + "…"
    )


def _stale_stories(prior: pl.DataFrame | None, prior_stories: pl.DataFrame) -> pl.Series:
    """Ids of prior stories that no longer match the prior articles (some were quarantined after the stories were
    built): another number of articles, or a canonical article that is not among them."""
    if prior is None:
        return prior_stories["story_id"]
    held = prior.group_by("story_id").agg(held=pl.len())
    miscounted = prior_stories.join(held, on="story_id", how="left").filter(
        (pl.col("held") != pl.col("n_articles")).fill_null(True))
    uncanonical = prior_stories.join(prior.select("story_id", canonical_article_id="article_id"),
                                     on=["story_id", "canonical_article_id"], how="anti")
    return pl.concat([miscounted["story_id"], uncanonical["story_id"]]).unique()


def _stories_table(pool: pl.DataFrame, texts: pl.Series, prior_stories: pl.DataFrame | None,
                   prior: pl.DataFrame | None) -> pl.DataFrame:
    """One row per story over prior and new articles. Prior stories (those of the `prior` articles) are carried
    over unless they gained an article or no longer match their articles; a story recomputed is recomputed from
    all of them, those the pool lacks taken from `prior`."""
    kept = None
    if prior_stories is not None:
        touched = pl.concat([pool.filter("is_new")["story_id"], _stale_stories(prior, prior_stories)])
        touched = touched.unique().implode()
        if prior is not None:
            pool, texts = _widened(pool, texts, prior.filter(pl.col("story_id").is_in(touched)).join(
                pool.select("article_id"), on="article_id", how="anti"))
        pool = pool.filter(pl.col("story_id").is_in(touched))
        kept = prior_stories.filter(~pl.col("story_id").is_in(touched))
    canonical = (
        pool.filter(pl.col("duplicate_of").is_null())
        .sort("pos")
        .group_by("story_id")
        .agg(canonical_article_id=pl.col("article_id").first(), title=pl.col("title").drop_nulls().first(),
             text_row=pl.col("text_row").first())
    )
    untitled = canonical.filter(pl.col("title").is_null())
    lead = untitled.select("story_id", lead=lead_sentence(pl.lit(texts.gather(untitled["text_row"]))))
    canonical = canonical.join(lead, on="story_id", how="left").with_columns(title=pl.coalesce("title", "lead"))
    stats = pool.group_by("story_id").agg(
        first_published=pl.col("published_date").min(),
        n_articles=pl.len().cast(pl.Int64),
        outlets=pl.col("outlet").drop_nulls().unique().sort(),
    )
    stories = (
        stats.join(canonical, on="story_id", how="left", maintain_order="left")
        .with_columns(n_outlets=pl.col("outlets").list.len().cast(pl.Int64))
        .select(list(STORY_SCHEMA))
        .cast(STORY_SCHEMA)
    )
    if kept is not None:
        stories = pl.concat([kept.select(list(STORY_SCHEMA)).cast(STORY_SCHEMA), stories])
    return stories.sort("story_id")
