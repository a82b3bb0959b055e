"""Vectorised text features for dedup: word shingles + MinHash, and TF-IDF story vectors."""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

SHINGLE_WORDS = 3
MINHASH_BANDS = 12
MINHASH_ROWS = 3
HASH_SEED = 20240404
_STOPWORD_TEXT = """
a about above after again against all also am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers herself
him himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or
other our ours ourselves out over own same she should so some such than that the their theirs them themselves then
there these they this those through to too under until up very was we were what when where which while who whom why
will with would you your yours yourself yourselves said says say told according one two three new last first year
years week day days time monday tuesday wednesday thursday friday saturday sunday mr mrs ms s t ll re ve d m don didn
doesn isn wasn aren weren won wouldn couldn shouldn hasn haven hadn may might must shall can't it's he's she's i'm
we're they're that's there's however meanwhile reported report reports news via per like well even still yet
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
TERM_PATTERN = r"[a-z][a-z'’-]*[a-z]|\d+(?:[.,]\d+)*"
POSSESSIVE = r"['’]s\b"
ENTITY_PATTERN = r"[A-Z][\w'’-]*[A-Za-z0-9](?:[ -](?:[A-Z][\w'’-]*[A-Za-z0-9]))*"
ENTITY_WEIGHT = 0.5
IDF_FLOOR = 0.5  # idf of a feature in every doc; < 1 keeps small batches from matching on common words
LEAD_CHARS = 400


def word_shingles(bodies: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Hashed word 3-shingles as (doc index, shingle hash) arrays in document order (repeats kept)."""
    tokens = bodies.str.to_lowercase().str.extract_all(r"\w+")
    doc = np.repeat(np.arange(len(bodies), dtype=np.int64), tokens.list.len().fill_null(0).to_numpy())
    h = tokens.explode().drop_nulls().hash(seed=HASH_SEED).to_numpy()
    if len(h) < SHINGLE_WORDS:
        return np.empty(0, np.int64), np.empty(0, np.uint64)
    end = len(h) - SHINGLE_WORDS + 1
    mult = np.uint64(0x9E3779B97F4A7C15)
    sh = h[:end].copy()
    for k in range(1, SHINGLE_WORDS):
        sh = sh * mult + h[k : end + k]
    same_doc = doc[:end] == doc[SHINGLE_WORDS - 1 :]
    return doc[:end][same_doc], sh[same_doc]


def shingle_matrix(doc: np.ndarray, sh: np.ndarray, n_docs: int) -> sp.csr_matrix:
    """Binary doc x shingle matrix (for exact Jaccard on candidate pairs)."""
    col = (sh >> np.uint64(2)).astype(np.int64)  # the 62-bit hash itself is the column: no vocabulary needed
    m = sp.csr_matrix((np.ones(len(doc), np.float32), (doc, col)), shape=(n_docs, 2**62))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def minhash_candidates(doc: np.ndarray, sh: np.ndarray, focus: np.ndarray) -> pl.DataFrame:
    """Candidate near-copy pairs (i < j, at least one in `focus`, a mask over docs) from MinHash LSH banding."""
    if len(doc) == 0:
        return pl.DataFrame({"i": [], "j": []}, schema={"i": pl.Int64, "j": pl.Int64})
    starts = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
    docs = doc[starts]
    rng = np.random.default_rng(HASH_SEED)
    n_perm = MINHASH_BANDS * MINHASH_ROWS
    a = rng.integers(1, 2**63, n_perm, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, n_perm, dtype=np.uint64)
    sig = np.empty((len(docs), n_perm), np.uint64)
    permuted = np.empty_like(sh)  # reused: fresh 8-byte-per-shingle arrays per permutation cost page faults
    for k in range(n_perm):
        np.multiply(sh, a[k], out=permuted)
        np.add(permuted, b[k], out=permuted)
        sig[:, k] = np.minimum.reduceat(permuted, starts)
    mix = np.uint64(0xBF58476D1CE4E5B9)
    frames = []
    for band in range(MINHASH_BANDS):
        key = np.zeros(len(docs), np.uint64)
        for col in sig[:, band * MINHASH_ROWS : (band + 1) * MINHASH_ROWS].T:
            key = (key ^ col) * mix
        frames.append(pl.DataFrame({"band": np.full(len(docs), band, np.int16), "key": key, "doc": docs}))
    buckets = pl.concat(frames)
    return (
        buckets.filter(pl.Series(np.tile(focus[docs], MINHASH_BANDS)))
        .join(buckets, on=["band", "key"], suffix="_r")
        .filter(pl.col("doc") != pl.col("doc_r"))
        .select(i=pl.min_horizontal("doc", "doc_r"), j=pl.max_horizontal("doc", "doc_r"))
        .unique()
        .sort("i", "j")
    )


def rowwise_dot(a: sp.csr_matrix, b: sp.csr_matrix, i: np.ndarray, j: np.ndarray, chunk: int = 200_000) -> np.ndarray:
    """Dot products a[i[k]] . b[j[k]] for each pair k, chunked to bound memory."""
    out = np.empty(len(i), np.float64)
    for s in range(0, len(i), chunk):
        out[s : s + chunk] = np.asarray(a[i[s : s + chunk]].multiply(b[j[s : s + chunk]]).sum(axis=1)).ravel()
    return out


def story_features(bodies: pl.Series, titles: pl.Series) -> pl.DataFrame:
    """Feature occurrences (doc, feat): lowercased key terms (title + body) and '@'-prefixed named-entity words
    and phrases (body only: headlines are often Title Case); the lead's words count twice."""
    body = pl.col("body").fill_null("")
    text = (
        pl.LazyFrame({"body": bodies, "title": titles})
        .with_row_index("doc")
        .select("doc", body=body + "\n" + body.str.slice(0, LEAD_CHARS), title=pl.col("title").fill_null(""))
    )
    stop = pl.lit(pl.Series(sorted(STOPWORDS))).implode()
    full_text = pl.concat_str(["title", "body"], separator="\n").str.to_lowercase()
    terms = (
        text.select("doc", feat=full_text.str.extract_all(TERM_PATTERN))
        .explode("feat")
        .filter(~pl.col("feat").is_in(stop) & (pl.col("feat").str.len_chars() > 2))
    )
    phrases = (
        text.select("doc", phrase=pl.col("body").str.extract_all(ENTITY_PATTERN))
        .explode("phrase")
        .select("doc", phrase=pl.col("phrase").str.to_lowercase().str.replace_all(POSSESSIVE, ""))
        .with_columns(words=pl.col("phrase").str.split(" "))
    )
    entity_words = phrases.select("doc", feat="words").explode("feat")
    entity_phrases = phrases.filter(pl.col("words").list.len() > 1).select("doc", feat="phrase")
    entities = (
        pl.concat([entity_words, entity_phrases])
        .filter(~pl.col("feat").is_in(stop) & (pl.col("feat").str.len_chars() > 1))
        .select("doc", feat="@" + pl.col("feat"))
    )
    return pl.concat([terms, entities]).collect()


def tfidf_matrix(features: pl.DataFrame, n_docs: int) -> tuple[sp.csr_matrix, pl.DataFrame]:
    """Sublinear TF-IDF matrix, each channel (terms, '@' entities) L2-normalised and scaled so that a row dot
    product is ENTITY_WEIGHT * entity cosine + (1 - ENTITY_WEIGHT) * term cosine; plus the vocabulary
    (col, feat, df)."""
    keys, first, col = np.unique(
        features["feat"].hash(seed=HASH_SEED).to_numpy(), return_index=True, return_inverse=True
    )
    doc = features["doc"].to_numpy().astype(np.int64)
    x = sp.csr_matrix((np.ones(len(doc), np.float32), (doc, col)), shape=(n_docs, len(keys)))
    x.sum_duplicates()
    df = np.bincount(x.indices, minlength=len(keys))
    vocab = pl.DataFrame({"col": np.arange(len(keys)), "feat": features["feat"].gather(first), "df": df})
    entity = vocab["feat"].str.starts_with("@").to_numpy()[x.indices]
    x.data = (1.0 + np.log(x.data)) * (np.log((n_docs + 1) / (df[x.indices] + 1)) + IDF_FLOOR)
    rows = np.repeat(np.arange(n_docs), np.diff(x.indptr))
    for in_channel, share in ((entity, ENTITY_WEIGHT), (~entity, 1.0 - ENTITY_WEIGHT)):
        norms = np.sqrt(np.bincount(rows[in_channel], x.data[in_channel] ** 2, minlength=n_docs))
        x.data[in_channel] *= np.sqrt(share) / norms[rows[in_channel]]
    return x.astype(np.float32), vocab
