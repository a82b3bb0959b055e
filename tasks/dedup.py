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
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import squareform

from tasks.dedup_features import (
    ENTITY_WEIGHT,
    minhash_candidates,
    rowwise_dot,
    shingle_matrix,
    story_features,
    tfidf_matrix,
    word_shingles,
)
from tasks.ids import stable_id_expr

NEAR_JACCARD = 0.8
STORY_THRESHOLD = 0.20
DATE_WINDOW_DAYS = 7
BLOCK_TOP_K = 20
BLOCK_MIN_PARTIAL = 0.05
BLOCK_MAX_DF = 0.02
BLOCK_MIN_MAX_DF = 50
BLOCK_MAX_PER_WEEK = 200
MAX_DENSE_CLUSTER = 3000
SPLIT_MIN_HALF = 3
SPLIT_RATIO = 0.35
EVIDENCE_TERMS = 4
BASE_SCHEMA = {
    "article_id": pl.String,
    "outlet": pl.String,
    "title": pl.String,
    "published_date": pl.Date,
    "body": pl.String,
    "content_hash": pl.String,
}
BASE_COLUMNS = list(BASE_SCHEMA)
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


def assign_stories(articles: pl.DataFrame, prior: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Add `story_id`, `duplicate_of`, `duplicate_kind` and evidence to new articles; return (articles, stories)."""
    pool = _article_pool(articles, prior)
    pool = _mark_copies(pool)
    pool = _assign_story_ids(pool)
    new = pool.filter("is_new").select("article_id", *ADDED_SCHEMA)
    out = articles.drop([c for c in ADDED_SCHEMA if c in articles.columns]).join(
        new, on="article_id", how="left", maintain_order="left"
    )
    return out, _stories_table(pool)


def _article_pool(articles: pl.DataFrame, prior: pl.DataFrame | None) -> pl.DataFrame:
    """Prior and new articles in copy order (earliest date, then smallest id) with a position index."""
    new = articles.select(BASE_COLUMNS).with_columns(
        is_new=pl.lit(True), **{c: pl.lit(None, dtype=t) for c, t in ADDED_SCHEMA.items()}
    )
    frames = [new]
    if prior is not None and prior.height:
        old = prior.filter(~pl.col("article_id").is_in(articles["article_id"].implode()))
        old = old.with_columns(
            **{c: pl.lit(None, dtype=t) for c, t in ADDED_SCHEMA.items() if c not in old.columns}
        ).select(*BASE_COLUMNS, is_new=pl.lit(False), **{c: pl.col(c).cast(t) for c, t in ADDED_SCHEMA.items()})
        frames.insert(0, old)
    return (
        pl.concat(frames, how="vertical_relaxed")
        .cast(BASE_SCHEMA)
        .sort("published_date", "article_id", nulls_last=True)
        .with_row_index("pos")
        .with_columns(pl.col("pos").cast(pl.Int64))
    )


def _mark_copies(pool: pl.DataFrame) -> pl.DataFrame:
    """Add `root` (pos of the first copy of the copy group: exact and near copies, transitively) and set
    duplicate_of/kind/score/evidence for new copies."""
    reps = pool.group_by("content_hash").agg(rep=pl.col("pos").min(), new=pl.col("is_new").any())
    pool = pool.join(reps.select("content_hash", "rep"), on="content_hash", how="left", maintain_order="left")
    rep_pos = reps["rep"].sort().to_numpy()
    bodies = pool["body"].gather(rep_pos)
    doc, sh = word_shingles(bodies)
    shingles = shingle_matrix(doc, sh, len(rep_pos))
    sizes = np.diff(shingles.indptr).astype(np.float64)
    is_new_rep = reps.sort("rep")["new"].to_numpy()
    pairs = minhash_candidates(doc, sh, focus=is_new_rep)
    i, j = pairs["i"].to_numpy(), pairs["j"].to_numpy()
    inter = rowwise_dot(shingles, shingles, i, j)
    jac = inter / np.maximum(sizes[i] + sizes[j] - inter, 1.0)
    near = jac >= NEAR_JACCARD
    # Prior copy links are kept as edges so a new copy of a prior copy reaches the same first copy.
    k_of = pl.DataFrame({"rep": rep_pos.astype(np.int64), "k": np.arange(len(rep_pos))})
    rep_k = pool.select("article_id", "rep").join(k_of, on="rep")
    prior_links = (
        pool.filter(pl.col("duplicate_of").is_not_null())
        .select("article_id", target="duplicate_of")
        .join(rep_k.select("article_id", "k"), on="article_id")
        .join(rep_k.select(target="article_id", k2="k"), on="target")
    )
    src = np.r_[i[near], prior_links["k"].to_numpy()]
    dst = np.r_[j[near], prior_links["k2"].to_numpy()]
    graph = sp.coo_matrix((np.ones(len(src)), (src, dst)), shape=(len(rep_pos), len(rep_pos)))
    _, comp = connected_components(graph, directed=False)
    groups = pl.DataFrame({"rep": rep_pos, "comp": comp, "k": np.arange(len(rep_pos))}).with_columns(
        root=pl.col("rep").min().over("comp"), root_k=pl.col("k").min().over("comp")
    )
    moved = groups.filter(pl.col("k") != pl.col("root_k"))
    rep_k, root_k = moved["k"].to_numpy(), moved["root_k"].to_numpy()
    inter_root = rowwise_dot(shingles, shingles, rep_k, root_k)
    moved = moved.with_columns(jaccard=inter_root / np.maximum(sizes[rep_k] + sizes[root_k] - inter_root, 1.0))
    pool = pool.join(groups.select("rep", "root"), on="rep", how="left", maintain_order="left").join(
        moved.select("rep", "jaccard"), on="rep", how="left", maintain_order="left"
    )
    # Exact copies point to the first identical copy; a first identical copy that is a near copy points to
    # the first copy of its near-copy group.
    exact = pl.col("pos") != pl.col("rep")
    near = ~exact & (pl.col("pos") != pl.col("root"))
    pool = pool.with_columns(target=pl.when(exact).then("rep").when(near).then("root"))
    pool = pool.join(pool.select(target="pos", target_id="article_id"), on="target", how="left", maintain_order="left")
    is_copy = pl.col("is_new") & (exact | near)
    return pool.with_columns(
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
    ).drop("rep", "target", "target_id", "jaccard")


def _assign_story_ids(pool: pl.DataFrame) -> pl.DataFrame:
    """Cluster copy-group roots into stories; copies and copy groups touching a prior story inherit its id."""
    group_story = (
        pool.filter(~pl.col("is_new")).sort("pos").group_by("root").agg(group_story=pl.col("story_id").first())
    )
    pool = pool.join(group_story, on="root", how="left", maintain_order="left")
    to_cluster = pl.col("is_new") & (pl.col("pos") == pl.col("root")) & pl.col("group_story").is_null()
    # Prior articles outside the date window of every new one cannot join their stories: leave them out.
    date = pl.col("published_date")
    window = pl.duration(days=DATE_WINDOW_DAYS)
    in_reach = (
        date.is_null()
        | date.is_between(date.filter(to_cluster).min() - window, date.filter(to_cluster).max() + window)
        | date.filter(to_cluster).is_null().any()
    )
    docs = pool.filter(to_cluster | (~pl.col("is_new") & pl.col("duplicate_of").is_null() & in_reach))
    labels = _cluster_docs(docs)
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


def _cluster_docs(docs: pl.DataFrame) -> pl.DataFrame:
    """Story per new doc: (pos, cluster_story, cluster_score, cluster_evidence)."""
    empty = {"pos": pl.Int64, "cluster_story": pl.String, "cluster_score": pl.Float64, "cluster_evidence": pl.String}
    if not docs["is_new"].any():
        return pl.DataFrame(schema=empty)
    x, vocab = tfidf_matrix(story_features(docs["body"], docs["title"]), docs.height)
    is_new = docs["is_new"].to_numpy()
    i, j = _candidate_pairs(x, vocab, is_new, docs["published_date"])
    sim = rowwise_dot(x, x, i, j)
    both_new = is_new[i] & is_new[j]
    label = _average_link(docs.height, i[both_new], j[both_new], sim[both_new], np.flatnonzero(is_new))
    entity_col = vocab["feat"].str.starts_with("@").to_numpy()
    label = _contrast_split(x, entity_col, label)
    story = _attach_to_prior(x, entity_col, docs, label, i[~both_new], j[~both_new], sim[~both_new])
    score, evidence = _evidence(x, vocab, docs["article_id"], story, i, j, sim)
    return (
        docs.select("pos")
        .with_columns(cluster_story=story, cluster_score=score, cluster_evidence=evidence)
        .filter(pl.Series(is_new))
    )


def _candidate_pairs(
    x: sp.csr_matrix, vocab: pl.DataFrame, is_new: np.ndarray, dates: pl.Series
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j, at least one new, dates within the window unless one is missing) whose top-weighted
    rare-but-repeated features overlap by at least BLOCK_MIN_PARTIAL (a lower bound of their similarity).

    Blocking keys are (feature, week): a new dated article looks up its own and the adjacent weeks plus the
    undated articles; a new undated article looks up every article. Work grows with the new articles and,
    through BLOCK_MAX_PER_WEEK, stays linear when a week gets denser.
    """
    n = x.shape[0]
    max_df = max(BLOCK_MIN_MAX_DF, int(BLOCK_MAX_DF * n))
    coo = x.tocoo()
    df = vocab["df"].to_numpy()
    eligible = ((df >= 2) & (df <= max_df))[coo.col]
    days = dates.cast(pl.Int64).fill_null(0).to_numpy()
    dated = dates.is_not_null().to_numpy()
    week = days // DATE_WINDOW_DAYS - (days[dated] // DATE_WINDOW_DAYS).min(initial=0) + 2
    key_week = np.where(dated, week, 0)  # key 0 = undated; dated weeks start at 2 so week - 1 stays dated
    n_keys = int(key_week.max(initial=0)) + 2
    top = (
        pl.DataFrame({"doc": coo.row[eligible], "col": coo.col[eligible], "w": coo.data[eligible]})
        .sort("doc", "w", "col", descending=[False, True, False])
        .group_by("doc", maintain_order=True)
        .head(BLOCK_TOP_K)
    )
    doc, col, w = top["doc"].to_numpy().astype(np.int64), top["col"].to_numpy(), top["w"].to_numpy()
    if not len(doc):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    keys, key_of = np.unique(col * n_keys + key_week[doc], return_inverse=True)
    # A feature shared by too many articles of one week is no evidence of one story (and costs quadratically).
    specific = np.bincount(key_of)[key_of] <= BLOCK_MAX_PER_WEEK
    register = sp.csr_matrix((w[specific], (key_of[specific], doc[specific])), shape=(len(keys), n))
    # Keys a dated article looks up: its (feature, week) and the neighbours (week -1, week +1, undated).
    neighbours = [np.arange(len(keys))]
    for target in (keys - 1, keys + 1, keys - keys % n_keys):
        at = np.minimum(np.searchsorted(keys, target), len(keys) - 1)
        neighbours.append(np.where(keys[at] == target, at, -1))
    neighbours[3][keys % n_keys == 0] = -1  # an undated key already looks itself up
    dated_new = np.flatnonzero(is_new[doc] & dated[doc])
    look_at = np.concatenate([nb[key_of[dated_new]] for nb in neighbours])
    look_doc, look_w = np.tile(doc[dated_new], 4), np.tile(w[dated_new], 4)
    found = look_at >= 0
    look = sp.csr_matrix((look_w[found], (look_doc[found], look_at[found])), shape=(n, len(keys)))
    shared = look @ register
    undated_new = is_new[doc] & ~dated[doc]
    if undated_new.any():
        by_feature = sp.csr_matrix((w, (col, doc)), shape=x.shape[::-1])
        probe = sp.csr_matrix((w[undated_new], (doc[undated_new], col[undated_new])), shape=x.shape)
        shared = shared + probe @ by_feature
    shared = shared.tocoo()
    # Rows are the new articles: a pair of two new articles appears twice, keep it once.
    once = ~is_new[shared.col] | (shared.row < shared.col)
    row, column, partial = shared.row[once].astype(np.int64), shared.col[once].astype(np.int64), shared.data[once]
    i, j = np.minimum(row, column), np.maximum(row, column)
    in_window = ~(dated[i] & dated[j]) | (np.abs(days[i] - days[j]) <= DATE_WINDOW_DAYS)
    keep = in_window & (partial >= BLOCK_MIN_PARTIAL)
    order = np.lexsort((j[keep], i[keep]))
    return i[keep][order], j[keep][order]


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
    return fcluster(tree, t=1.0 - STORY_THRESHOLD, criterion="distance") - 1


def _contrast_split(x: sp.csr_matrix, entity_col: np.ndarray, label: np.ndarray) -> np.ndarray:
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
        halves = _bisect_if_contrasted(x_big[row_of[members]], entity_col)
        if halves is None:
            continue
        label[members[halves]] = next_label
        next_label += 1
        stack += [members[halves], members[~halves]]
    return label


def _bisect_if_contrasted(x: sp.csr_matrix, entity_col: np.ndarray) -> np.ndarray | None:
    """Mask of the second half if the cluster splits into two contrasted halves of SPLIT_MIN_HALF+ docs."""
    sim = _local_similarity(x, entity_col)
    dist = np.clip(1.0 - sim, 0.0, None)
    np.fill_diagonal(dist, 0.0)
    second = fcluster(linkage(squareform(dist, checks=False), method="average"), 2, criterion="maxclust") == 2
    return second if _contrasted(sim, second) else None


def _local_similarity(x: sp.csr_matrix, entity_col: np.ndarray) -> np.ndarray:
    """Dense similarity of a group's rows with features re-weighted by their IDF inside the group."""
    n = x.shape[0]
    rows = np.repeat(np.arange(n), np.diff(x.indptr))
    cols, col = np.unique(x.indices, return_inverse=True)
    local_df = np.bincount(col)
    weight = x.data * np.log((n + 1) / local_df[col])
    entity = entity_col[cols][col]
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
    entity_col: np.ndarray,
    docs: pl.DataFrame,
    label: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    sim: np.ndarray,
) -> pl.Series:
    """Story id per doc: prior docs keep theirs; a new cluster joins the prior story with the best average
    similarity if it clears STORY_THRESHOLD and the two are not contrasted (the same test that splits
    clusters), else founds a story named after its first (canonical) article."""
    frame = docs.select("pos", "article_id", "is_new", "story_id").with_columns(
        label=pl.Series(label), idx=pl.int_range(pl.len())
    )
    new_first = docs["is_new"].to_numpy()[i]
    links = pl.DataFrame({"new": np.where(new_first, i, j), "old": np.where(new_first, j, i), "sim": sim})
    sizes = frame.group_by("label").agg(n_label=pl.len())
    story_sizes = frame.filter(~pl.col("is_new")).group_by("story_id").agg(n_story=pl.len())
    best = (
        links.join(frame.select(new="idx", label="label"), on="new")
        .join(frame.select(old="idx", story_id="story_id"), on="old")
        .group_by("label", "story_id")
        .agg(total=pl.col("sim").sum())
        .join(sizes, on="label")
        .join(story_sizes, on="story_id")
        .with_columns(avg=pl.col("total") / (pl.col("n_label") * pl.col("n_story")))
        .filter(pl.col("avg") >= STORY_THRESHOLD)
        .sort("label", "avg", "story_id", descending=[False, True, False])
        .group_by("label", maintain_order=True)
        .first()
        .select("label", prior_story="story_id")
    )
    best = best.filter(~pl.Series(_contrasted_attachments(x, entity_col, frame, best), dtype=pl.Boolean))
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


def _contrasted_attachments(x: sp.csr_matrix, entity_col: np.ndarray, frame: pl.DataFrame, best: pl.DataFrame) -> list:
    """Per proposed (label, prior_story) attachment: whether the new cluster and the story are contrasted."""
    members = frame.group_by("label").agg(new_rows=pl.col("idx"))
    stories = frame.filter(~pl.col("is_new")).group_by("story_id").agg(old_rows=pl.col("idx"))
    pairs = best.join(members, on="label", how="left", maintain_order="left").join(
        stories, left_on="prior_story", right_on="story_id", how="left", maintain_order="left"
    )
    verdicts = []
    for new_rows, old_rows in zip(pairs["new_rows"].to_list(), pairs["old_rows"].to_list(), strict=True):
        if min(len(new_rows), len(old_rows)) < SPLIT_MIN_HALF:
            verdicts.append(False)
            continue
        is_old = np.arange(len(new_rows) + len(old_rows)) >= len(new_rows)
        verdicts.append(_contrasted(_local_similarity(x[np.r_[new_rows, old_rows]], entity_col), is_old))
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
    shared = x[a].multiply(x[b]).tocoo()
    terms = (
        pl.DataFrame({"row": shared.row.astype(np.int64), "col": shared.col.astype(np.int64), "v": shared.data})
        .join(vocab.select("col", "feat"), on="col")
        .with_columns(is_name=pl.col("feat").str.starts_with("@"))
        .sort("row", "v", "col", descending=[False, True, False])
        .group_by("row", "is_name", maintain_order=True)
        .head(EVIDENCE_TERMS)
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


def lead_sentence(body: pl.Expr, max_chars: int = 160) -> pl.Expr:
    """A headline stand-in: the body's first sentence, cut at a word boundary past `max_chars`."""
    first = body.str.extract(r"^\s*(.+?[.!?])(?:\s|$)", 1).fill_null(body.str.strip_chars())
    return pl.when(first.str.len_chars() <= max_chars).then(first).otherwise(
        first.str.slice(0, max_chars).str.replace(r"\s+\S*$", "") + "…"
    )


def _stories_table(pool: pl.DataFrame) -> pl.DataFrame:
    """One row per story over prior and new articles."""
    canonical = (
        pool.filter(pl.col("duplicate_of").is_null())
        .sort("pos")
        .group_by("story_id")
        .agg(
            canonical_article_id=pl.col("article_id").first(),
            title=pl.coalesce(pl.col("title").drop_nulls().first(), lead_sentence(pl.col("body").first())),
        )
    )
    stats = pool.group_by("story_id").agg(
        first_published=pl.col("published_date").min(),
        n_articles=pl.len().cast(pl.Int64),
        outlets=pl.col("outlet").drop_nulls().unique().sort(),
    )
    return (
        stats.join(canonical, on="story_id", how="left", maintain_order="left")
        .with_columns(n_outlets=pl.col("outlets").list.len().cast(pl.Int64))
        .select(list(STORY_SCHEMA))
        .sort("story_id")
        .cast(STORY_SCHEMA)
    )
