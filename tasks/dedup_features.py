"""Vectorised text features for dedup: word-shingle sets with MinHash band keys, and TF-IDF story vectors.

Feature columns are hashes, not vocabulary positions, so vectors built in different runs (or in parts of one
run) share one column space: the index stored in the warehouse stays valid as the corpus grows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numba
import numpy as np
import polars as pl
import pyarrow as pa
import scipy.sparse as sp

SHINGLE_WORDS = 3
MINHASH_BANDS = 12
MINHASH_ROWS = 3
HASH_SEED = 20240404
CHUNK_DOCS = 20_000  # texts tokenised at once: bounds the memory of the exploded tokens
# Shingle set columns are 30-bit hashes, so int32 indices (collisions barely move a Jaccard).
FEATURE_SPACE = 2**62  # story feature columns: 61-bit hash << 1 | is-entity bit
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


class ShingleSets(NamedTuple):
    """Shingle sets of texts in CSR layout: the sorted distinct shingle columns of text r are
    `indices[indptr[r]:indptr[r + 1]]` (30-bit shingle hashes, int32)."""

    indptr: np.ndarray
    indices: np.ndarray

    @classmethod
    def stack(cls, parts: list[ShingleSets]) -> ShingleSets:
        """The rows of `parts` one after the other."""
        return parts[0] if len(parts) == 1 else cls(stack_indptr(parts), np.concatenate([p.indices for p in parts]))

    def sizes(self) -> np.ndarray:
        """Number of distinct shingles per text."""
        return np.diff(self.indptr)


def stack_indptr(parts: list[NamedTuple]) -> np.ndarray:
    """Row offsets of CSR parts (each with an `indptr` field) put one after the other."""
    offsets = np.cumsum([0] + [p.indptr[-1] for p in parts[:-1]])
    return np.concatenate([[0], *(p.indptr[1:] + off for p, off in zip(parts, offsets, strict=True))])


def shingle_sets(texts: pl.Series, rows: np.ndarray, with_bands: bool = True) -> tuple[ShingleSets, np.ndarray]:
    """Per text `texts[rows]`: its shingle set, and (`with_bands`) its MinHash band keys (n x MINHASH_BANDS,
    uint64; all zero for a text too short to shingle, or without `with_bands`). Texts are gathered and
    processed CHUNK_DOCS at a time, one chunk per core (polars and the numba kernel release the GIL)."""
    perm_a, perm_b = _minhash_permutations()

    def chunk(start: int) -> tuple[ShingleSets, np.ndarray]:
        starts, h = _token_hashes(texts.gather(rows[start : start + CHUNK_DOCS]))
        indptr, indices, bands = _shingle_kernel(h, starts, perm_a, perm_b, with_bands)
        return ShingleSets(indptr, indices), bands

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        parts = list(pool.map(chunk, range(0, len(rows), CHUNK_DOCS)))
    if not parts:
        return ShingleSets(np.zeros(1, np.int64), np.empty(0, np.int32)), np.zeros((0, MINHASH_BANDS), np.uint64)
    return ShingleSets.stack([m for m, _ in parts]), np.vstack([b for _, b in parts])


def _token_hashes(bodies: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Word hashes of lowercased texts, concatenated, and where each text's words start (n + 1 offsets)."""
    tokens = bodies.str.to_lowercase().str.extract_all(r"\w+")
    starts = np.zeros(len(bodies) + 1, np.int64)
    np.cumsum(tokens.list.len().fill_null(0).to_numpy(), out=starts[1:])
    h = tokens.list.eval(pl.element().hash(seed=HASH_SEED)).explode().drop_nulls().to_numpy()
    return starts, h


def _minhash_permutations() -> tuple[np.ndarray, np.ndarray]:
    """Multipliers (odd) and offsets of the MINHASH_BANDS x MINHASH_ROWS hash permutations."""
    rng = np.random.default_rng(HASH_SEED)
    n_perm = MINHASH_BANDS * MINHASH_ROWS
    multipliers = rng.integers(1, 2**63, n_perm, dtype=np.uint64) | np.uint64(1)
    return multipliers, rng.integers(0, 2**63, n_perm, dtype=np.uint64)


@numba.njit(cache=True, nogil=True)
def _shingle_kernel(h: np.ndarray, starts: np.ndarray, perm_a: np.ndarray, perm_b: np.ndarray, with_bands: bool
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per text (words h[starts[d]:starts[d + 1]]): its sorted distinct shingle columns (CSR indptr, indices)
    and its LSH band keys from the MinHash signature (all zero for a text without shingles)."""
    n = len(starts) - 1
    mult, mix = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9)
    indptr = np.zeros(n + 1, np.int64)
    indices = np.empty(len(h), np.int32)
    bands = np.zeros((n, MINHASH_BANDS), np.uint64)
    sig = np.empty(MINHASH_BANDS * MINHASH_ROWS, np.uint64)
    longest = 0
    for d in range(n):
        longest = max(longest, starts[d + 1] - starts[d])
    sh = np.empty(longest, np.uint64)
    cols = np.empty(longest, np.int32)
    nnz = 0
    for d in range(n):
        first, m = starts[d], starts[d + 1] - starts[d] - SHINGLE_WORDS + 1
        for p in range(m):
            x = h[first + p]
            for k in range(1, SHINGLE_WORDS):
                x = x * mult + h[first + p + k]
            sh[p] = x
            cols[p] = np.int32(x >> np.uint64(34))
        if m > 0:
            cols[:m].sort()
            indices[nnz] = cols[0]
            nnz += 1
            for p in range(1, m):
                if cols[p] != cols[p - 1]:
                    indices[nnz] = cols[p]
                    nnz += 1
            if with_bands:
                for k in range(len(sig)):
                    a, b = perm_a[k], perm_b[k]
                    low = np.uint64(0xFFFFFFFFFFFFFFFF)
                    for p in range(m):
                        low = min(low, sh[p] * a + b)
                    sig[k] = low
                for band in range(MINHASH_BANDS):
                    key = np.uint64(0)
                    for r in range(MINHASH_ROWS):
                        key = (key ^ sig[band * MINHASH_ROWS + r]) * mix
                    bands[d, band] = key | np.uint64(1)  # never 0: 0 marks "no shingles"
        indptr[d + 1] = nnz
    return indptr, indices[:nnz].copy(), bands


def intersection_sizes(sets: ShingleSets, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shared shingles of sets a[k] and b[k], for each pair k (the pairs split between the cores)."""
    out = np.empty(len(a), np.int64)
    in_parallel(lambda lo, hi: _merge_count(sets.indptr, sets.indices, a[lo:hi], b[lo:hi], out[lo:hi]), len(a))
    return out


def jaccard_at_least(sets: ShingleSets, a: np.ndarray, b: np.ndarray, threshold: float) -> np.ndarray:
    """Whether sets a[k] and b[k] have a Jaccard of at least `threshold` (see `jaccard_reaches`), for each pair
    k (the pairs split between the cores)."""
    out = np.empty(len(a), np.bool_)
    in_parallel(lambda lo, hi: _reach_each(sets.indptr, sets.indices, a[lo:hi], b[lo:hi], threshold, out[lo:hi]),
                len(a))
    return out


@numba.njit(cache=True, nogil=True)
def _reach_each(indptr: np.ndarray, indices: np.ndarray, a: np.ndarray, b: np.ndarray, threshold: float,
                out: np.ndarray) -> None:
    """`jaccard_reaches` for each pair (a[k], b[k])."""
    for k in range(len(a)):
        out[k] = jaccard_reaches(indptr, indices, a[k], b[k], threshold)


def in_parallel(work: Callable[[int, int], None], n: int) -> None:
    """Run `work(lo, hi)` on consecutive ranges covering 0..n, one per core (for kernels that release the GIL)."""
    bounds = np.linspace(0, n, (os.cpu_count() or 1) + 1).astype(np.int64)
    with ThreadPoolExecutor(max_workers=len(bounds) - 1) as pool:
        list(pool.map(work, bounds[:-1], bounds[1:]))


@numba.njit(cache=True, nogil=True)
def _merge_count(indptr: np.ndarray, indices: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Common indices per row pair (a linear pass, no intermediate matrices)."""
    for p in range(len(a)):
        out[p] = _common(indptr, indices, a[p], b[p], -1)


@numba.njit(cache=True, nogil=True)
def jaccard_reaches(indptr: np.ndarray, indices: np.ndarray, a: int, b: int, threshold: float) -> bool:
    """Whether rows a and b of a set CSR have a Jaccard (computed as `intersection / max(union, 1.0)`) of at
    least `threshold`: a sorted merge that stops once the count reaches the least intersection needed or the
    rows left can no longer make it up."""
    total = (indptr[a + 1] - indptr[a]) + (indptr[b + 1] - indptr[b])
    need = max(int(threshold * total / (1.0 + threshold)) - 2, 0)
    while need <= total and need / max(total - need, 1.0) < threshold:
        need += 1
    return _common(indptr, indices, a, b, need) >= need


@numba.njit(cache=True, nogil=True)
def _common(indptr: np.ndarray, indices: np.ndarray, a: int, b: int, need: int) -> int:
    """Sorted-merge count of the indices rows a and b share; with `need` >= 0 it stops once the count reaches
    `need` or the rows left can no longer make it up (the count then says only whether it was reached)."""
    i, i_end, j, j_end = indptr[a], indptr[a + 1], indptr[b], indptr[b + 1]
    n = 0
    while i < i_end and j < j_end and (need < 0 or (n < need and n + min(i_end - i, j_end - j) >= need)):
        x, y = indices[i], indices[j]
        if x == y:
            n += 1
            i += 1
            j += 1
        elif x < y:
            i += 1
        else:
            j += 1
    return n


def rowwise_dot(x: sp.csr_matrix, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Dot products x[i[k]] . x[j[k]] for each pair k (float32 sums in the order scipy's row sums take), the
    pairs split between the cores."""
    out = np.empty(len(i), np.float64)
    longest = int(np.diff(x.indptr).max(initial=0))
    in_parallel(lambda lo, hi: _merge_dot(x.indptr, x.indices, x.data, i[lo:hi], j[lo:hi], longest, out[lo:hi]),
                len(i))
    return out


@numba.njit(cache=True, nogil=True)
def _merge_dot(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, a: np.ndarray, b: np.ndarray,
               longest: int, out: np.ndarray) -> None:
    """Sorted-merge dot product per row pair: the nonzero products in column order, summed like numpy's
    add.reduceat (first product, plus the pairwise sum of the rest)."""
    columns, products = np.empty(longest, np.int64), np.empty(longest, np.float32)
    for p in range(len(a)):
        n = shared_products(indptr, indices, data, a[p], b[p], columns, products)
        out[p] = 0.0 if n == 0 else products[0] + _pairwise_sum(products, 1, n - 1)


@numba.njit(cache=True, nogil=True)
def shared_products(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, a: int, b: int,
                    columns: np.ndarray, products: np.ndarray) -> int:
    """The columns rows a and b of a CSR (sorted columns) share with a nonzero product, in column order, written
    with those products into `columns` and `products`; returns how many."""
    i, i_end, j, j_end = indptr[a], indptr[a + 1], indptr[b], indptr[b + 1]
    n = 0
    while i < i_end and j < j_end:
        x, y = indices[i], indices[j]
        if x == y:
            v = data[i] * data[j]
            if v != 0:
                columns[n], products[n] = x, v
                n += 1
            i += 1
            j += 1
        elif x < y:
            i += 1
        else:
            j += 1
    return n


@numba.njit(cache=True, nogil=True)
def _pairwise_sum(v: np.ndarray, lo: int, n: int) -> np.float32:
    """numpy's float32 pairwise summation of v[lo:lo + n]: blocks of at most 128 halved recursively (here with
    an explicit stack: numba's cache cannot hold recursive functions)."""
    if n <= 128:
        return _block_sum(v, lo, n)
    starts, sizes, split = np.empty(64, np.int64), np.empty(64, np.int64), np.zeros(64, np.bool_)
    sums = np.empty(64, np.float32)
    starts[0], sizes[0], top, n_sums = lo, n, 1, 0
    while top:
        top -= 1
        start, size = starts[top], sizes[top]
        if size <= 128:
            sums[n_sums] = _block_sum(v, start, size)
            n_sums += 1
        elif split[top]:
            n_sums -= 1
            sums[n_sums - 1] += sums[n_sums]
        else:
            half = size // 2
            half -= half % 8
            split[top] = True
            starts[top + 1], sizes[top + 1], split[top + 1] = start + half, size - half, False
            starts[top + 2], sizes[top + 2], split[top + 2] = start, half, False
            top += 3
    return sums[0]


@numba.njit(cache=True, nogil=True)
def _block_sum(v: np.ndarray, lo: int, n: int) -> np.float32:
    """numpy's float32 sum of a block of at most 128 values: 8 running sums, or in turn below 8 values."""
    if n < 8:
        total = np.float32(-0.0)
        for k in range(n):
            total += v[lo + k]
        return total
    r0, r1, r2, r3 = v[lo], v[lo + 1], v[lo + 2], v[lo + 3]
    r4, r5, r6, r7 = v[lo + 4], v[lo + 5], v[lo + 6], v[lo + 7]
    k = 8
    while k < n - n % 8:
        r0 += v[lo + k]
        r1 += v[lo + k + 1]
        r2 += v[lo + k + 2]
        r3 += v[lo + k + 3]
        r4 += v[lo + k + 4]
        r5 += v[lo + k + 5]
        r6 += v[lo + k + 6]
        r7 += v[lo + k + 7]
        k += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while k < n:
        total += v[lo + k]
        k += 1
    return total


class FeatureCounts(NamedTuple):
    """Story feature counts of docs in CSR layout: doc r has the feature keys `keys[indptr[r]:indptr[r + 1]]`
    (ascending) with their counts in `tf`."""

    indptr: np.ndarray
    keys: np.ndarray
    tf: np.ndarray

    @classmethod
    def stack(cls, parts: list[FeatureCounts]) -> FeatureCounts:
        """The rows of `parts` one after the other."""
        if len(parts) == 1:
            return parts[0]
        return cls(stack_indptr(parts), np.concatenate([p.keys for p in parts]), np.concatenate([p.tf for p in parts]))

    @property
    def n_docs(self) -> int:
        """Number of docs (rows)."""
        return len(self.indptr) - 1


def story_features(texts: pl.Series, rows: np.ndarray, titles: pl.Series) -> tuple[FeatureCounts, pl.DataFrame]:
    """Feature counts of the texts `texts[rows]` (`titles` aligned with `rows`) and their vocabulary (key,
    feat): lowercased key terms (title + body) and '@'-prefixed named-entity words and phrases (body only:
    headlines are often Title Case); the lead's words count twice. `key` is the feature's hash with the entity
    flag in its lowest bit. Texts are processed CHUNK_DOCS at a time, one chunk per core."""

    def chunk(start: int) -> tuple[FeatureCounts, pl.DataFrame]:
        part = rows[start : start + CHUNK_DOCS]
        keyed = _features(texts.gather(part), titles.slice(start, CHUNK_DOCS)).select(
            "doc",
            key=(pl.col("feat").hash(seed=HASH_SEED) // 8 * 2).cast(pl.Int64)
            + pl.col("feat").str.starts_with("@").cast(pl.Int64),
            feat="feat",
        )
        counts = FeatureCounts(*_count_features(keyed["doc"].to_numpy(), keyed["key"].to_numpy(), len(part)))
        return counts, keyed.select("key", "feat").unique("key")

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        parts = list(pool.map(chunk, range(0, len(rows), CHUNK_DOCS)))
    if not parts:
        return (FeatureCounts(np.zeros(1, np.int64), np.empty(0, np.int64), np.empty(0, np.int32)),
                pl.DataFrame(schema={"key": pl.Int64, "feat": pl.String}))
    return FeatureCounts.stack([c for c, _ in parts]), pl.concat([v for _, v in parts]).unique("key")


@numba.njit(cache=True, nogil=True)
def _count_features(doc: np.ndarray, key: np.ndarray, n_docs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature occurrences (doc[p], key[p]) counted per doc: CSR (indptr, distinct keys ascending, counts)."""
    by_doc = np.zeros(n_docs + 1, np.int64)
    for d in doc:
        by_doc[d + 1] += 1
    by_doc = np.cumsum(by_doc)
    fill = by_doc[:-1].copy()
    grouped = np.empty(len(key), np.int64)
    for p in range(len(key)):
        grouped[fill[doc[p]]] = key[p]
        fill[doc[p]] += 1
    indptr = np.zeros(n_docs + 1, np.int64)
    keys = np.empty(len(key), np.int64)
    tf = np.empty(len(key), np.int32)
    nnz = 0
    for d in range(n_docs):
        lo, hi = by_doc[d], by_doc[d + 1]
        if hi > lo:
            grouped[lo:hi].sort()
            keys[nnz], tf[nnz] = grouped[lo], 1
            for p in range(lo + 1, hi):
                if grouped[p] == keys[nnz]:
                    tf[nnz] += 1
                else:
                    nnz += 1
                    keys[nnz], tf[nnz] = grouped[p], 1
            nnz += 1
        indptr[d + 1] = nnz
    return indptr, keys[:nnz].copy(), tf[:nnz].copy()


def _features(bodies: pl.Series, titles: pl.Series) -> pl.DataFrame:
    """Feature strings per doc (doc, feat) for one chunk of texts."""
    body = pl.col("body").fill_null("")
    text = (
        pl.LazyFrame({"body": bodies, "title": titles})
        .with_row_index("doc")
        .select(pl.col("doc").cast(pl.Int64), body=body + "\n" + body.str.slice(0, LEAD_CHARS),
                title=pl.col("title").fill_null(""))
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


def doc_frequencies(counts: FeatureCounts) -> pl.DataFrame:
    """Documents per feature key (key, df)."""
    return pl.DataFrame({"key": counts.keys}).group_by("key").agg(df=pl.len().cast(pl.Int64))


def frequencies_of(keys: np.ndarray, df: pl.DataFrame) -> np.ndarray:
    """Document frequency from `df` (key, df) of each key (0 if unknown)."""
    found = pl.DataFrame({"key": keys}).join(df, on="key", how="left", maintain_order="left")
    return found["df"].fill_null(0).to_numpy()


def list_column(indptr: np.ndarray, values: np.ndarray) -> pl.Series:
    """CSR rows as a list column (built from the offsets, not one list per row)."""
    return pl.from_arrow(pa.LargeListArray.from_arrays(pa.array(indptr), pa.array(values)))


def tfidf_matrix(counts: FeatureCounts, df: pl.DataFrame, n_docs: int) -> sp.csr_matrix:
    """Sublinear TF-IDF rows (columns: feature keys), with idf from `df` (key, df) over `n_docs` documents;
    each channel (terms, entities) L2-normalised and scaled so that a row dot product is
    ENTITY_WEIGHT * entity cosine + (1 - ENTITY_WEIGHT) * term cosine."""
    weights = _tfidf_weights(counts.indptr, counts.keys, counts.tf, frequencies_of(counts.keys, df), n_docs)
    return sp.csr_matrix((weights, counts.keys, counts.indptr), shape=(counts.n_docs, FEATURE_SPACE))


@numba.njit(cache=True, nogil=True)
def _tfidf_weights(indptr: np.ndarray, keys: np.ndarray, tf: np.ndarray, doc_freq: np.ndarray, n_docs: int
                   ) -> np.ndarray:
    """The weights of `tfidf_matrix`, per stored count."""
    out = np.empty(len(keys), np.float32)
    w = np.empty(len(keys), np.float64)
    share = (math.sqrt(1.0 - ENTITY_WEIGHT), math.sqrt(ENTITY_WEIGHT))
    for d in range(len(indptr) - 1):
        norm = np.zeros(2)
        for p in range(indptr[d], indptr[d + 1]):
            idf = math.log((n_docs + 1) / (doc_freq[p] + 1)) + IDF_FLOOR
            w[p] = (1.0 + math.log(tf[p])) * idf
            norm[keys[p] & 1] += w[p] ** 2
        for p in range(indptr[d], indptr[d + 1]):
            channel = keys[p] & 1
            out[p] = np.float32(w[p] * share[channel] / math.sqrt(norm[channel]))
    return out
