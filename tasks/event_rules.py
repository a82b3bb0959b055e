"""PLOVER event cues (a curated table joined in polars), modality, and source/target choice by sentence structure."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import polars as pl

from tasks.dates import MONTHS, WEEKDAYS
from tasks.phrases import PhraseIndex, add_phrase_keys, match_phrases, phrase_index, with_token_values, with_tokens_at
from tasks.places import locate

DATA = Path(__file__).parent / "data"

IRREGULAR = {
    "give": ["gave", "given"], "meet": ["met"], "send": ["sent"], "hold": ["held"], "fight": ["fought"],
    "shoot": ["shot"], "beat": ["beaten"], "withdraw": ["withdrew", "withdrawn"], "break": ["broke", "broken"],
    "strike": ["struck", "stricken"], "seek": ["sought"], "blow": ["blew", "blown"], "freeze": ["froze", "frozen"],
    "cut": ["cut"], "put": ["put"], "lead": ["led"], "take": ["took", "taken"], "retake": ["retook", "retaken"],
    "forgive": ["forgave", "forgiven"], "begin": ["began", "begun"], "lay": ["laid"], "shut": ["shut"],
    "bring": ["brought"],
}  # fmt: skip
POSITIVE_ACTIONS = ["AGREE", "CONSULT", "SUPPORT", "COOPERATE", "AID", "CONCEDE", "RETREAT"]
HOSTILE_ACTIONS = ["SANCTION", "COERCE", "ASSAULT", "MOBILIZE", "PROTEST"]

NEGATORS = ["not", "never", "no", "cannot", "neither", "nor"]
# "without" negates only within its comma segment: "left without signing it" is no signing, but "Without warning,
# Russia attacked" is an attack
NEGATORS_IN_SEGMENT = ["without"]
HYPOTHETICAL = [
    "could", "might", "may", "if", "whether", "considering", "consider", "considers", "considered", "possible",
    "possibly", "potential", "potentially", "unlikely", "likely", "exploring", "explore", "idea", "able", "unable",
    "permission", "scenario", "scenarios",
]  # fmt: skip
INTENT = [
    "will", "would", "shall", "ll", "plan", "plans", "planned", "planning", "intends", "intend", "intended",
    "ready", "prepared", "willing", "wants", "want", "wanted", "hopes", "hope", "expected", "aims", "offered",
    "offer", "offers", "promised", "pledged", "vowed", "vow", "vows", "sworn", "swore",
]  # fmt: skip
DEONTIC = ["must", "should", "ought"]
CONTINUING = ["continue", "continues", "continued", "continuing"]
PASSIVE_AUX = ["was", "were", "been", "being", "is", "are", "be", "got", "get"]
SPEECH = [
    "said", "says", "say", "announced", "announces", "told", "stated", "insisted", "added", "warned", "declared",
    "urged", "demanded", "argued", "stressed", "reiterated", "concluded",
]  # fmt: skip
REPORTING = ["said", "says", "reported", "told", "according", "announced", "quoted", "reports", "added"]
CLAUSE_BREAKS = [";", ":", "(", ")", "—", "–", "that", "which", "who", "whom", "because", "while", "although", "but"]
LIGHT_VERBS = [
    "staged", "stage", "stages", "staging", "held", "hold", "holds", "holding", "launched", "launch", "launches",
    "mounted", "mount", "began", "begin", "begins", "started", "start", "announced", "announce", "announces",
    "completed", "complete", "continued", "continue", "continuing", "conducted", "conduct", "carried", "made",
    "make", "makes", "ordered", "declared", "organized", "organised", "led", "resumed", "ended", "called",
]  # fmt: skip
ADJUNCT_WORDS = ["by", "after", "before", "while", "when", "without", "through", "despite"]
SAME_PAST = ["beat", "cut", "put", "hit", "shut", "set", "spread", "cast", "burst"]  # past tense = base form
VERBAL_CONTEXT = [
    *[
        "to",
        "will",
        "would",
        "could",
        "should",
        "must",
        "can",
        "may",
        "might",
        "not",
        "never",
        "also",
        "they",
        "we",
        "i",
        "you",
        "did",
        "do",
        "does",
        "t",
        "ll",
    ],
    *["and", "or", "jointly", "formally", "officially", "publicly", "repeatedly", "again"],
]
MARKER_WORDS = {  # lower-case words counted by `token_flags`, by flag
    "neg": NEGATORS, "hyp": HYPOTHETICAL, "intent": INTENT, "cont": CONTINUING, "brk": CLAUSE_BREAKS,
    "unless": ["unless"], "deontic": DEONTIC, "speech": SPEECH, "comma": [","], "segneg": NEGATORS_IN_SEGMENT,
}  # fmt: skip
# an `objects` entry met by any direct object: a name or a definite determiner right after the verb
DIRECT_OBJECT = "@object"
OBJECT_DETERMINERS = ["the", "its", "their", "his", "her"]
# what one strikes without attacking it ("struck the deal", "struck their first agreement")
STRUCK_AGREEMENTS = ["deal", "deals", "agreement", "agreements", "accord", "pact", "bargain", "compromise", "balance",
                     "tone", "note", "chord"]
NOUN_MARKERS = ["a", "an", "the", "its", "their", "his", "her", "our", "of", "this", "that", "any", "such"]
OBJECT_WINDOW = 8


def inflect(verb: str) -> list[str]:
    """Regular and irregular forms of an English verb (over-generation is harmless for matching)."""
    forms = {verb, *IRREGULAR.get(verb, [])}
    if verb.endswith(("s", "sh", "ch", "x", "z")):
        forms.add(verb + "es")
    elif verb.endswith("y") and verb[-2:-1] not in "aeiou":
        forms.add(verb[:-1] + "ies")
    else:
        forms.add(verb + "s")
    if verb.endswith("e"):
        forms |= {verb + "d", verb[:-1] + "ing"}
    elif verb.endswith("y") and verb[-2:-1] not in "aeiou":
        forms |= {verb[:-1] + "ied", verb + "ing"}
    else:
        forms |= {verb + "ed", verb + "ing"}
        if len(verb) >= 3 and verb[-1] not in "aeiouwxy" and verb[-2] in "aeiou" and verb[-3] not in "aeiou":
            forms |= {verb + verb[-1] + "ed", verb + verb[-1] + "ing"}
    return sorted(forms)


@lru_cache(maxsize=1)
def cue_table() -> pl.DataFrame:
    """Cue phrases (verbs inflected) with event_type, event_mode, objects (list) and weight, keyed for matching."""
    raw = pl.read_csv(DATA / "event_cues.csv", schema_overrides={"event_mode": pl.String, "objects": pl.String})
    rows = []
    for r in raw.iter_rows(named=True):
        forms = inflect(r["phrase"]) if r["pos"] == "v" else [r["phrase"]]
        base = r["pos"] == "v" and r["phrase"] not in SAME_PAST
        rows += [{**r, "form": f, "base": base and f == r["phrase"]} for f in forms]
    table = (
        pl.DataFrame(rows)
        .with_columns(
            objects=pl.col("objects").fill_null("").str.split("|").list.eval(pl.element().filter(pl.element() != "")),
            cue_id=pl.int_range(pl.len(), dtype=pl.Int64),
        )
        .drop("phrase")
        .rename({"form": "phrase"})
    )
    return add_phrase_keys(table)


def match_cues(tokens: pl.DataFrame) -> pl.DataFrame:
    """Valid cue matches: sid, start, end, cue, event_type, event_mode, weight, is_verb.

    A cue with `objects` is valid only if one of them occurs within 8 tokens after it ("give ... arms",
    "turned the proposal down") or, for DIRECT_OBJECT, a direct object follows it ("struck Gaza", "struck the
    city"; a capitalised name counts only after a lower-case cue, not in a title-case headline, and not a day or
    month); of several valid readings the heaviest wins.
    """
    table = cue_table()
    hits = with_tokens_at(
        match_cues_raw(tokens, table),
        tokens,
        before=(pl.col("start") - 1, "tok"),
        before2=(pl.col("start") - 2, "low"),
        after=("end", "tok"),
        cue_text=("start", "tok"),
    )
    compound = pl.col("before").fill_null("") == "-"  # inside a compound: "long-threatened"
    # a verb cue after a determiner is a noun ("holds a veto", "the scope of support"): not a verb cue
    # "a car bombing" is a noun; "a declaration demanding ..." (after a statement noun) a participle
    gerund_noun = (
        pl.col("key").str.ends_with("ing")
        & pl.col("before2").is_in(NOUN_MARKERS)
        & ~pl.col("before").str.contains(r"(?:tion|ment|ence|ance|ure|ter)$")
    )
    noun_use = pl.col("before").str.to_lowercase().is_in(NOUN_MARKERS) | gerund_noun
    verb_as_noun = (pl.col("pos") == "v") & noun_use.fill_null(False)
    # a bare verb form is a verb only after a subject, modal, adverb or "to" ("they demand", "to supply"),
    # not after a lower-case modifier ("strong demand", "money supply")
    before = pl.col("before").str.to_lowercase()
    verbal = (
        pl.col("before").is_null()
        | before.is_in(VERBAL_CONTEXT)
        | pl.col("before").str.contains(r"^\p{Lu}")
        | before.str.contains(r"[^s]s$|ly$")
    )
    # a capitalised cue inside a sentence is a name ("Royal Dutch Shell") unless the text is title case
    name_like = (
        (pl.col("start") > 0) & pl.col("cue_text").str.contains(r"^\p{Lu}") & ~pl.col("after").str.contains(r"^\p{Lu}")
    )
    hits = hits.filter(~compound & ~verb_as_noun & (~pl.col("base") | verbal) & ~name_like.fill_null(False))
    needs = hits.filter(pl.col("objects").list.len() > 0).explode("objects")
    window = [f"w{k}" for k in range(OBJECT_WINDOW)]
    needs = with_tokens_at(needs, tokens, **{name: (pl.col("end") + k, "low") for k, name in enumerate(window)})
    named_object = (
        pl.col("after").str.contains(r"^\p{Lu}")
        & ~pl.col("cue_text").str.contains(r"^\p{Lu}")
        & ~pl.col("w0").is_in([*MONTHS, *WEEKDAYS])
    )
    determined = pl.col("w0").is_in(OBJECT_DETERMINERS) & ~pl.any_horizontal(
        pl.col(w).is_in(STRUCK_AGREEMENTS) for w in ("w1", "w2")).fill_null(False)
    direct_object = (pl.col("objects") == DIRECT_OBJECT) & (named_object | determined)
    found = needs.filter(pl.any_horizontal([pl.col(w) == pl.col("objects") for w in window]) | direct_object)
    valid_ids = found.select("sid", "start", "cue_id").unique()
    plain = hits.filter(pl.col("objects").list.len() == 0).select("sid", "start", "cue_id")
    valid = pl.concat([plain, valid_ids]).join(hits.drop("objects"), on=["sid", "start", "cue_id"])
    return (
        valid.sort("weight", descending=True)
        .unique(["sid", "start"], keep="first")
        .select(
            "sid",
            "start",
            "end",
            pl.col("key").alias("cue"),
            "event_type",
            "event_mode",
            "weight",
            (pl.col("pos") == "v").alias("is_verb"),
        )
    )


@lru_cache(maxsize=1)
def cue_spans() -> PhraseIndex:
    """The distinct cue phrases of `cue_table` indexed for phrase matching, each with its key as `span_key`."""
    keys = cue_table().unique("key").select("key", "n", "head", pl.col("key").alias("span_key"))
    return phrase_index(keys)


def match_cues_raw(tokens: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    """All readings (rows of `table`) of the longest cue phrase at each position (several when readings differ)."""
    spans = match_phrases(tokens, cue_spans(), "low")
    return spans.join(table, left_on="span_key", right_on="key").rename({"span_key": "key"})


@lru_cache(maxsize=1)
def marker_masks() -> tuple[pl.Enum, pl.Series]:
    """Enum of the MARKER_WORDS words and, per word, the bit mask of the lists holding it (bit i: i-th list)."""
    masks: dict[str, int] = {}
    for bit, words in enumerate(MARKER_WORDS.values()):
        for word in words:
            masks[word] = masks.get(word, 0) | 1 << bit
    return pl.Enum(list(masks)), pl.Series(list(masks.values()), dtype=pl.Int64)


def token_flags(tokens: pl.DataFrame) -> pl.DataFrame:
    """Exclusive running counts (whole table) of negators, hypothetical, intent, deontic and speech words,
    continuers, clause breaks and commas, plus the position of the last clause break.

    Within one sentence, the difference of two counts is the number of markers between two positions.
    """
    enum, masks = marker_masks()  # one lookup per token for all the word lists
    word_mask = pl.lit(masks).gather(pl.col("low").cast(enum, strict=False).to_physical()).fill_null(0)
    t = tokens.with_columns(mask=word_mask)
    flags = {name: (pl.col("mask") & 1 << bit) != 0 for bit, name in enumerate(MARKER_WORDS)}
    prev_tok = pl.col("tok").shift(1)
    apostrophe = prev_tok.is_in(["'", "’"]) & (pl.col("sid").shift(1) == pl.col("sid"))
    flags["neg"] = flags["neg"] | (apostrophe & (pl.col("low") == "t"))
    flags["intent"] = flags["intent"] | (apostrophe & (pl.col("low") == "ll"))
    t = t.with_columns(**{k: v.fill_null(False).cast(pl.Int64) for k, v in flags.items()})
    def last(at: pl.Expr) -> pl.Expr:  # position of the last token `at` at or before each token, in its sentence
        return pl.when(pl.when(at).then(pl.col("sid")).forward_fill() == pl.col("sid")).then(
            pl.when(at).then(pl.col("ti")).forward_fill()
        )

    return t.with_columns(
        [(pl.col(k).cum_sum() - pl.col(k)).alias(f"{k}_before") for k in flags],
        last_brk=last(pl.col("brk") == 1),
        last_comma=last(pl.col("comma") == 1),
    ).select("sid", "ti", "low", "last_brk", "last_comma", *[f"{k}_before" for k in flags])


def assemble_events(
    tokens: pl.DataFrame, mentions: pl.DataFrame, cues: pl.DataFrame, places: pl.DataFrame
) -> pl.DataFrame:
    """One event per sentence: its leftmost cue that has a source actor (see `choose_sources`).

    Target: the first coded actor after the cue (or after a passive agent) in the same clause, within 12
    tokens; failing that a named place ("shelled Jericho") or an uncoded domestic group ("dispersed the
    demonstrators"), coded by the sentence's location or else as the source's country (not for a retreat:
    "X resigned" has no patient).
    Modality comes from the words of the cue's clause before it (see `add_modality`); a demand reported with
    "must"/"should" ("Russia said Sudan must return ...") becomes the speaker's REQUEST to the clause subject.
    """
    flags = token_flags(tokens)
    n_tokens = tokens.group_by("sid").agg(n_tok=pl.len())
    location = locate(places)
    coded = (
        with_sentence_country(mentions)
        .filter(pl.col("code").is_not_null() & (pl.col("kind") != "generic"))
        .join(location, on="sid", how="left")
        .with_columns(code=pl.when(pl.col("ethnic")).then(pl.coalesce("location_code", "code")).otherwise("code"))
        .drop("location", "location_code")
    )
    m = with_token_values(coded, flags, "start", m_comma="comma_before")
    c = with_token_values(
        cues.rename({"start": "c_start", "end": "c_end"}), flags, "c_start", c_comma="comma_before"
    ).with_columns(between=pl.col("cue").str.ends_with(" between"))
    located_groups = (
        mentions.filter(pl.col("kind") == "generic")
        .drop("code")
        .join(location, on="sid")
        .filter(pl.col("location_code").is_not_null())
        .rename({"location_code": "code"})
    )
    ev = choose_sources(supported_nouns(c, m, tokens), m, tokens, located_groups)
    ev = add_modality(ev, flags, n_tokens)
    ev = reported_demands(ev, m, flags)
    # a complement clause right after the cue holds the target: "demanded that the US cancel ..."
    ev = with_token_values(ev, tokens, "t_from", t_word="low").with_columns(
        t_from=pl.when(pl.col("t_word") == "that").then(pl.col("t_from") + 1).otherwise("t_from")
    )
    objects = pl.concat(
        [
            coded.filter(~pl.col("modifier"))
            .join(attribution_mentions(tokens, coded), on=["sid", "start"], how="anti")
            .select("sid", "start", "actor", "code", rank=pl.lit(0)),
            mentions.filter(pl.col("kind") == "generic").select("sid", "start", "actor", "code", rank=pl.lit(1)),
            places.select("sid", "start", "actor", "code", rank=pl.lit(1)),
        ]
    )
    targets = (
        ev.filter(pl.col("target_code").is_null())
        .select("sid", "t_from", "source_code", "action_type")
        .join(objects, on="sid")
        .filter((pl.col("start") >= pl.col("t_from")) & (pl.col("start") <= pl.col("t_from") + 12))
        # a retreat (resign, surrender, withdraw) has no patient besides a named actor
        .filter((pl.col("rank") == 0) | (pl.col("action_type") != "RETREAT"))
        .pipe(with_tokens_at, flags, brk_target=("start", "brk_before"), brk_cue=("t_from", "brk_before"))
        .filter(pl.col("brk_target") == pl.col("brk_cue"))
        .sort("rank", "start")
        .unique("sid", keep="first")
        .join(location, on="sid", how="left")
        .select(
            "sid",
            pl.col("actor").alias("t_actor"),
            pl.coalesce("code", "location_code", "source_code").alias("t_code"),
        )
    )
    ev = (
        ev.join(targets, on="sid", how="left")
        .join(location, on="sid", how="left")
        .with_columns(
            target_actor=pl.coalesce("target_actor", "t_actor"), target_code=pl.coalesce("target_code", "t_code")
        )
    )
    return ev.select(
        "sid",
        "cue",
        "c_start",
        "action_type",
        "event_type",
        "event_mode",
        "modality",
        "negated",
        "source_actor",
        "source_code",
        "target_actor",
        "target_code",
        "location",
        "confidence",
    )


def supported_nouns(c: pl.DataFrame, m: pl.DataFrame, tokens: pl.DataFrame) -> pl.DataFrame:
    """Drop bare event nouns that no one is said to carry out.

    A one-word noun cue ("bombing", "invasion", "demonstrations") reports an act of an actor only after a
    light verb within six tokens ("staged demonstrations", "mounted its invasion"), a possessive ("Israel's
    invasion") or an actor adjective ("Palestinian riots"); otherwise ("killed in a bombing") it has no source.
    """
    bare = pl.col("is_verb").not_() & ~pl.col("cue").str.contains(" ")
    nouns = c.filter(bare)
    nouns = with_tokens_at(nouns, tokens, **{f"p{k}": (pl.col("c_start") - k, "low") for k in range(1, 7)})
    light = pl.any_horizontal([pl.col(f"p{k}").is_in(LIGHT_VERBS) for k in range(1, 7)])
    owned = pl.col("p1").is_in(["s", "its", "their", "his", "her"])
    adjective = nouns.join(m.select("sid", pl.col("end").alias("c_start")), on=["sid", "c_start"], how="semi")
    kept = pl.concat(
        [
            nouns.filter(light.fill_null(False) | owned.fill_null(False)).select(c.columns),
            adjective.select(c.columns),
        ]
    ).unique(["sid", "c_start"])
    return pl.concat([c.filter(~bare), kept])


def with_sentence_country(mentions: pl.DataFrame) -> pl.DataFrame:
    """Titled people of unknown country ("President Omar al-Bashir") take the sentence's only country."""
    country = (
        mentions.filter(pl.col("kind").is_in(["country", "metonym", "government", "legislature"]))
        .group_by("sid")
        .agg(only=pl.col("code").unique())
        .filter(pl.col("only").list.len() == 1)
        .select("sid", pl.col("only").list.first())
    )
    return (
        mentions.join(country, on="sid", how="left")
        .with_columns(code=pl.when(pl.col("titled")).then(pl.coalesce("code", "only")).otherwise("code"))
        .drop("only")
    )


def choose_sources(c: pl.DataFrame, m: pl.DataFrame, tokens: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """The event cue of each sentence with its source (and, for passives, its target).

    Source, in order: the agent of a passive ("was attacked by X"); the first actor after a "between" cue
    ("agreement between X and Y"); the nearest actor before the cue outside prepositional phrases, preferring
    one in the cue's comma segment and otherwise the sentence's first (skipping appositives); as a last resort
    an actor in a prepositional phrase ("rebels in the Ivory Coast"), with lower confidence, then an uncoded
    group coded by the sentence's location (`groups`: "prisoners rioted at a jail in Dili"). An actor after a
    verb cue that found no source is that cue's object, never a later cue's subject.
    """
    source = lambda frame, rank, penalty, t_from: frame.select(  # noqa: E731
        "sid",
        "c_start",
        pl.col("actor").alias("source_actor"),
        pl.col("code").alias("source_code"),
        pl.col("start").alias("s_start"),
        t_from.alias("t_from"),
        pl.lit(rank).alias("rank"),
        pl.lit(penalty).alias("penalty"),
    )
    before = c.filter(~pl.col("between")).join(m, on="sid").filter(pl.col("end") <= pl.col("c_start"))
    # passive voice: "was attacked by X"
    passive = with_token_values(c, tokens, pl.col("c_start") - 1, aux="low").filter(
        pl.col("aux").is_in(PASSIVE_AUX) & pl.col("is_verb") & ~pl.col("cue").str.ends_with("ing")
    )
    passive = with_tokens_at(passive, tokens, **{f"b{k}": (pl.col("c_end") + k, "low") for k in range(3)})
    by_ti = pl.coalesce([pl.when(pl.col(f"b{k}") == "by").then(pl.col("c_end") + k) for k in range(3)])
    agents = (
        passive.with_columns(by_ti=by_ti)
        .drop_nulls("by_ti")
        .join(m, on="sid")
        .filter((pl.col("start") > pl.col("by_ti")) & (pl.col("start") <= pl.col("by_ti") + 3))
        .sort("start")
        .unique(["sid", "c_start"], keep="first")
    )
    firsts = (
        c.filter("between")
        .join(m, on="sid")
        .filter(pl.col("start") >= pl.col("c_end"))
        .sort("start")
        .unique(["sid", "c_start"], keep="first")
    )
    orphan = (
        c.filter(pl.col("is_verb") & ~pl.col("between") & ~pl.col("cue").str.ends_with("ing"))
        .join(
            pl.concat([before.select("sid", "c_start"), agents.select("sid", "c_start")]),
            on=["sid", "c_start"],
            how="anti",
        )
        .group_by("sid")
        .agg(block=pl.col("c_start").min())
    )
    same_segment = pl.col("m_comma") == pl.col("c_comma")
    # subject tiers: same comma segment outside / inside a prepositional phrase, then the sentence's first
    # actor outside one (skipping appositives); a gerund after "by/after/while ..." takes the main subject
    tier = (
        pl.when(pl.col("in_pp"))
        .then(pl.when(same_segment).then(1).otherwise(3))
        .when(same_segment & ~pl.col("adjunct"))
        .then(0)
        .otherwise(2)
    )
    closeness = pl.when(tier == 2).then(-pl.col("start")).otherwise(pl.col("end"))
    ranked = (
        with_token_values(before, tokens, pl.col("c_start") - 1, c_prev="low")
        .join(orphan, on="sid", how="left")
        .filter(pl.col("block").is_null() | (pl.col("start") < pl.col("block")))
        .with_columns(adjunct=pl.col("c_prev").is_in(ADJUNCT_WORDS) & pl.col("cue").str.ends_with("ing"))
        .with_columns(tier=tier, closeness=closeness)
        .sort("tier", pl.col("closeness"), descending=[False, True])
        .unique(["sid", "c_start"], keep="first")
    )
    sources = pl.concat(
        [
            source(agents, 0, 1.0, pl.col("end")),
            source(firsts, 1, 1.0, pl.col("end")),
            source(ranked.filter(pl.col("tier") <= 2), 2, 1.0, pl.col("c_end")),
            source(ranked.filter(pl.col("tier") == 3), 3, 0.8, pl.col("c_end")),
            source(
                c.join(groups, on="sid")
                .filter(pl.col("end") <= pl.col("c_start"))
                .sort("end", descending=True)
                .unique(["sid", "c_start"], keep="first"),
                4,
                0.7,
                pl.col("c_end"),
            ),
        ]
    )
    # a passive without an agent ("civilians were killed") names only the target: no source, no event
    # (an adjectival "is committed to" is no passive)
    agentless = (
        passive.filter(pl.col("b0") != "to")
        .join(agents.select("sid", "c_start"), on=["sid", "c_start"], how="anti")
        .select("sid", "c_start")
    )
    ev = (
        c.join(agentless, on=["sid", "c_start"], how="anti")
        .join(sources, on=["sid", "c_start"])
        .sort("rank")
        .unique(["sid", "c_start"], keep="first")
        .with_columns(weight=pl.col("weight") * pl.col("penalty"))
        .sort("sid", "c_start")
        .unique("sid", keep="first")
    )
    patient = (
        ev.filter(pl.col("rank") == 0)
        .select("sid", "c_start")
        .join(m, on="sid")
        .filter(pl.col("end") <= pl.col("c_start"))
        .sort("end", descending=True)
        .unique("sid", keep="first")
        .select("sid", pl.col("actor").alias("target_actor"), pl.col("code").alias("target_code"))
    )
    return ev.join(patient, on="sid", how="left")


def reported_demands(ev: pl.DataFrame, m: pl.DataFrame, flags: pl.DataFrame) -> pl.DataFrame:
    """'X said Y must/should do Z' is X's REQUEST to Y; without a speaker it stays hypothetical.

    The speaker is the nearest actor before the clause's subject with a speech verb between them.
    """
    speakers = (
        ev.filter("deontic")
        .select("sid", "s_start")
        .join(m.filter(~pl.col("in_pp")), on="sid")
        .filter(pl.col("end") <= pl.col("s_start"))
        .pipe(with_tokens_at, flags, speech_from=("end", "speech_before"), speech_to=("s_start", "speech_before"))
        .filter(pl.col("speech_to") > pl.col("speech_from"))
        .sort("end", descending=True)
        .unique("sid", keep="first")
        .select("sid", pl.col("actor").alias("speaker"), pl.col("code").alias("speaker_code"))
    )
    demand = pl.col("speaker_code").is_not_null()
    return (
        ev.join(speakers, on="sid", how="left")
        .with_columns(
            target_actor=pl.when(demand).then(pl.col("source_actor")).otherwise("target_actor"),
            target_code=pl.when(demand).then(pl.col("source_code")).otherwise("target_code"),
            t_from=pl.when(demand).then(None).otherwise("t_from"),
        )
        .with_columns(
            source_actor=pl.when(demand).then(pl.col("speaker")).otherwise("source_actor"),
            source_code=pl.when(demand).then(pl.col("speaker_code")).otherwise("source_code"),
            event_type=pl.when(demand).then(pl.lit("REQUEST")).otherwise("event_type"),
            event_mode=pl.when(demand).then(None).otherwise("event_mode"),
            modality=pl.when(demand & ~pl.col("negated"))
            .then(pl.lit("asserted"))
            .when(pl.col("deontic") & (pl.col("modality") == "asserted"))
            .then(pl.lit("hypothetical"))
            .otherwise("modality"),
        )
        .drop("speaker", "speaker_code")
        .with_columns(confidence=confidence())
    )


def confidence() -> pl.Expr:
    """Cue weight scaled down for modalities other than an asserted fact."""
    factor = pl.col("modality").replace_strict(
        {"asserted": 1.0, "intent": 0.85, "hypothetical": 0.5, "negated": 0.6}, return_dtype=pl.Float64
    )
    return (pl.col("weight") * factor).round(3)


def add_modality(ev: pl.DataFrame, flags: pl.DataFrame, n_tokens: pl.DataFrame) -> pl.DataFrame:
    """Modality from markers in the cue's clause up to the cue (at most 12 tokens back), and the PLOVER type."""
    counts = ["neg_before", "hyp_before", "intent_before", "cont_before", "unless_before", "deontic_before"]
    ev = with_tokens_at(ev, flags, clause_start=(pl.col("c_start") - 1, "last_brk"),
                        segment_start=(pl.col("c_start") - 1, "last_comma"))
    ev = (
        ev.with_columns(w_lo=pl.max_horizontal(pl.col("clause_start").fill_null(-1) + 1, pl.col("c_start") - 12, 0))
        .with_columns(seg_lo=pl.max_horizontal(pl.col("segment_start").fill_null(-1) + 1, "w_lo"))
        .join(n_tokens, on="sid")
        .with_columns(last_ti=pl.col("n_tok") - 1)
    )
    ev = with_tokens_at(ev, flags, **{f"{k}@{col}": (col, k) for col in ("w_lo", "c_start", "last_ti") for k in counts},
                        **{f"segneg_before@{col}": (col, "segneg_before") for col in ("seg_lo", "c_start")})
    win = {k.split("_")[0]: pl.col(f"{k}@c_start") - pl.col(f"{k}@w_lo") for k in counts}
    after_unless = pl.col("unless_before@last_ti") - pl.col("unless_before@c_start") > 0
    negated = (win["neg"] > 0) | (pl.col("segneg_before@c_start") - pl.col("segneg_before@seg_lo") > 0)
    deontic = win["deontic"] > 0
    hypothetical = win["hyp"] > 0
    intent = (win["intent"] > 0) & (win["cont"] == 0)
    modality = (
        pl.when(negated)
        .then(pl.lit("negated"))
        .when(hypothetical)
        .then(pl.lit("hypothetical"))
        .when(intent | after_unless)
        .then(pl.lit("intent"))
        .otherwise(pl.lit("asserted"))
    )
    action = pl.col("event_type")
    plover = (
        pl.when(pl.col("modality") != "intent")
        .then(action)
        .when(after_unless | action.is_in(HOSTILE_ACTIONS))
        .then(pl.lit("THREATEN"))
        .when(action.is_in(POSITIVE_ACTIONS))
        .then(pl.lit("AGREE"))
        .otherwise(action)
    )
    return (
        ev.with_columns(modality=modality, negated=negated.fill_null(False), deontic=deontic, action_type=action)
        .with_columns(event_type=plover)
        .with_columns(
            event_mode=pl.when(pl.col("event_type") == pl.col("action_type")).then("event_mode"),
            confidence=confidence(),
        )
    )


def attribution_mentions(tokens: pl.DataFrame, mentions: pl.DataFrame) -> pl.DataFrame:
    """Mentions that only attribute the report (", the White House announced", ", a UN official said")."""
    rep = tokens.filter(pl.col("low").is_in(REPORTING)).select("sid", pl.col("ti").alias("r_ti"))
    comma = tokens.filter(pl.col("low") == ",").select("sid", pl.col("ti").alias("k_ti"))
    return (
        mentions.select("sid", "start", "end")
        .join(rep, on="sid")
        .filter((pl.col("r_ti") >= pl.col("end")) & (pl.col("r_ti") <= pl.col("end") + 3))
        .join(comma, on="sid")
        .filter((pl.col("k_ti") < pl.col("start")) & (pl.col("k_ti") >= pl.col("start") - 4))
        .select("sid", "start")
        .unique()
    )
