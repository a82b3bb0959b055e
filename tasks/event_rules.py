"""PLOVER event cues (a curated table joined in polars), modality, and source/target choice by sentence structure."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import polars as pl

from tasks.phrases import add_phrase_keys, match_phrases, with_token_values

DATA = Path(__file__).parent / "data"

IRREGULAR = {
    "give": ["gave", "given"], "meet": ["met"], "send": ["sent"], "hold": ["held"], "fight": ["fought"],
    "shoot": ["shot"], "beat": ["beaten"], "withdraw": ["withdrew", "withdrawn"], "break": ["broke", "broken"],
    "strike": ["struck", "stricken"], "seek": ["sought"], "blow": ["blew", "blown"], "freeze": ["froze", "frozen"],
    "cut": ["cut"], "put": ["put"], "lead": ["led"], "take": ["took", "taken"], "retake": ["retook", "retaken"],
    "forgive": ["forgave", "forgiven"], "begin": ["began", "begun"], "rebuild": ["rebuilt"], "lay": ["laid"],
    "shut": ["shut"], "bring": ["brought"], "undertake": ["undertook"], "wound": ["wounded"], "sue": ["sued"],
}
POSITIVE_ACTIONS = ["AGREE", "CONSULT", "SUPPORT", "COOPERATE", "AID", "CONCEDE", "RETREAT"]
HOSTILE_ACTIONS = ["SANCTION", "COERCE", "ASSAULT", "MOBILIZE", "PROTEST"]

NEGATORS = ["not", "never", "no", "cannot", "neither", "nor", "without"]
HYPOTHETICAL = [
    "could", "might", "may", "if", "whether", "considering", "consider", "considers", "considered", "possible",
    "possibly", "potential", "potentially", "unlikely", "likely", "should", "exploring", "explore", "idea",
    "able", "unable", "permission", "scenario", "scenarios",
]
INTENT = [
    "will", "would", "shall", "ll", "plan", "plans", "planned", "planning", "intends", "intend", "intended",
    "ready", "prepared", "willing", "wants", "want", "wanted", "hopes", "hope", "expected", "aims",
    "offered", "offer", "offers", "promised", "pledged", "vowed",
]
CONTINUING = ["continue", "continues", "continued", "continuing"]
PASSIVE_AUX = ["was", "were", "been", "being", "is", "are", "be", "got"]
REPORTING = ["said", "says", "reported", "told", "according", "announced", "quoted", "reports", "added"]
CLAUSE_BREAKS = [";", ":", "(", ")", "—", "–", "that", "which", "who", "whom", "because", "while", "although", "but"]
ADJUNCT_WORDS = ["by", "after", "before", "while", "when", "without", "through", "despite"]
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
        rows += [{**r, "form": f} for f in forms]
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
    "turned the proposal down"); of several valid readings the heaviest wins.
    """
    table = cue_table()
    hits = with_token_values(match_cues_raw(tokens, table), tokens, pl.col("start") - 1, before="tok")
    hits = hits.filter(pl.col("before").fill_null("") != "-")  # inside a compound: "long-threatened"
    # a verb cue after a determiner is a noun ("holds a veto", "the scope of support"): not a verb cue
    hits = hits.filter(~((pl.col("pos") == "v") & pl.col("before").str.to_lowercase().is_in(NOUN_MARKERS).fill_null(False)))
    needs = hits.filter(pl.col("objects").list.len() > 0).explode("objects")
    window = [f"w{k}" for k in range(OBJECT_WINDOW)]
    for k, name in enumerate(window):
        needs = with_token_values(needs, tokens, pl.col("end") + k, **{name: "low"})
    found = needs.filter(pl.any_horizontal([pl.col(w) == pl.col("objects") for w in window]))
    valid_ids = found.select("sid", "start", "cue_id").unique()
    plain = hits.filter(pl.col("objects").list.len() == 0).select("sid", "start", "cue_id")
    valid = pl.concat([plain, valid_ids]).join(hits.drop("objects"), on=["sid", "start", "cue_id"])
    return (
        valid.sort("weight", descending=True)
        .unique(["sid", "start"], keep="first")
        .select(
            "sid", "start", "end", pl.col("key").alias("cue"), "event_type", "event_mode", "weight",
            (pl.col("pos") == "v").alias("is_verb"),
        )
    )


def match_cues_raw(tokens: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    """All readings of the longest cue phrase at each position (several rows when readings differ)."""
    spans = match_phrases(tokens, table.unique("key").select("key", "n", "head", pl.col("key").alias("span_key")), "low")
    return spans.join(table, left_on="span_key", right_on="key").rename({"span_key": "key"})


def token_flags(tokens: pl.DataFrame) -> pl.DataFrame:
    """Exclusive running counts (whole table) of negators, hypothetical/intent markers, continuers, breaks.

    Within one sentence, the difference of two counts is the number of markers between two positions.
    """
    prev_tok = pl.col("tok").shift(1)
    apostrophe = prev_tok.is_in(["'", "’"]) & (pl.col("sid").shift(1) == pl.col("sid"))
    flags = {
        "neg": pl.col("low").is_in(NEGATORS) | (apostrophe & (pl.col("low") == "t")),
        "hyp": pl.col("low").is_in(HYPOTHETICAL),
        "intent": pl.col("low").is_in(INTENT) | (apostrophe & (pl.col("low") == "ll")),
        "cont": pl.col("low").is_in(CONTINUING),
        "brk": pl.col("low").is_in(CLAUSE_BREAKS),
        "unless": pl.col("low") == "unless",
        "comma": pl.col("low") == ",",
    }
    t = tokens.with_columns(**{k: v.fill_null(False).cast(pl.Int64) for k, v in flags.items()})
    brk = pl.col("brk") == 1
    return t.with_columns(
        [(pl.col(k).cum_sum() - pl.col(k)).alias(f"{k}_before") for k in flags],
        # position of the last clause break at or before each token within its sentence
        last_brk=pl.when(pl.when(brk).then(pl.col("sid")).forward_fill() == pl.col("sid")).then(
            pl.when(brk).then(pl.col("ti")).forward_fill()
        ),
    ).select("sid", "ti", "low", "last_brk", *[f"{k}_before" for k in flags])


def assemble_events(tokens: pl.DataFrame, mentions: pl.DataFrame, cues: pl.DataFrame) -> pl.DataFrame:
    """One event per sentence: its leftmost cue that has a source actor.

    Source, in order: the agent of a passive ("was attacked by X"); the first actor after a "between" cue
    ("agreement between X and Y"); the nearest actor before the cue outside prepositional phrases, preferring
    one in the cue's comma segment and otherwise the sentence's first (skipping appositives); as a last resort
    an actor in a prepositional phrase ("rebels in the Ivory Coast"), with lower confidence. Target: the first
    actor after the cue (or after the passive agent) in the same clause, within 12 tokens.
    Modality comes from the words of the cue's clause before it (see `add_modality`).
    """
    flags = token_flags(tokens)
    n_tokens = tokens.group_by("sid").agg(n_tok=pl.len())
    m = with_token_values(mentions.filter(pl.col("code").is_not_null()), flags, "start", m_comma="comma_before")
    objects = m.join(attribution_mentions(tokens, m), on=["sid", "start"], how="anti")
    c = with_token_values(
        cues.rename({"start": "c_start", "end": "c_end"}), flags, "c_start", c_comma="comma_before"
    ).with_columns(between=pl.col("cue").str.ends_with(" between"))
    source = lambda frame, rank, penalty, t_from: frame.select(  # noqa: E731
        "sid", "c_start", pl.col("actor").alias("source_actor"), pl.col("code").alias("source_code"),
        t_from.alias("t_from"), pl.lit(rank).alias("rank"), pl.lit(penalty).alias("penalty"),
    )
    before = c.filter(~pl.col("between")).join(m, on="sid").filter(pl.col("end") <= pl.col("c_start"))
    same_segment = pl.col("m_comma") == pl.col("c_comma")
    # subject tiers: same comma segment outside / inside a prepositional phrase, then the sentence's first
    # actor outside one (skipping appositives); a gerund after "by/after/while ..." takes the main subject
    tier = (
        pl.when(pl.col("in_pp")).then(pl.when(same_segment).then(1).otherwise(3))
        .when(same_segment & ~pl.col("adjunct")).then(0)
        .otherwise(2)
    )
    closeness = pl.when(tier == 2).then(-pl.col("start")).otherwise(pl.col("end"))
    ranked = (
        with_token_values(before, tokens, pl.col("c_start") - 1, c_prev="low")
        .with_columns(adjunct=pl.col("c_prev").is_in(ADJUNCT_WORDS) & pl.col("cue").str.ends_with("ing"))
        .with_columns(tier=tier, closeness=closeness)
        .sort("tier", pl.col("closeness"), descending=[False, True])
        .unique(["sid", "c_start"], keep="first")
    )
    active = ranked.filter(pl.col("tier") <= 2)
    fallback = ranked.filter(pl.col("tier") == 3)
    # passive voice: "was attacked by X"
    passive = with_token_values(c, tokens, pl.col("c_start") - 1, aux="low").filter(pl.col("aux").is_in(PASSIVE_AUX))
    for k in range(3):
        passive = with_token_values(passive, tokens, pl.col("c_end") + k, **{f"b{k}": "low"})
    by_ti = pl.coalesce([pl.when(pl.col(f"b{k}") == "by").then(pl.col("c_end") + k) for k in range(3)])
    agents = (
        passive.with_columns(by_ti=by_ti).drop_nulls("by_ti")
        .join(m, on="sid").filter((pl.col("start") > pl.col("by_ti")) & (pl.col("start") <= pl.col("by_ti") + 3))
        .sort("start").unique(["sid", "c_start"], keep="first")
    )
    firsts = (
        c.filter("between").join(m, on="sid").filter(pl.col("start") >= pl.col("c_end"))
        .sort("start").unique(["sid", "c_start"], keep="first")
    )
    sources = pl.concat([
        source(agents, 0, 1.0, pl.col("end")),
        source(firsts, 1, 1.0, pl.col("end")),
        source(active, 2, 1.0, pl.col("c_end")),
        source(fallback, 3, 0.8, pl.col("c_end")),
    ])
    ev = (
        c.join(sources, on=["sid", "c_start"])
        .sort("rank").unique(["sid", "c_start"], keep="first")
        .with_columns(passive=pl.col("rank") == 0, weight=pl.col("weight") * pl.col("penalty"))
        .sort("sid", "c_start")
        .unique("sid", keep="first")
    )
    ev = add_modality(ev, flags, n_tokens)
    # a complement clause right after the cue holds the target: "demanded that the US cancel ..."
    ev = with_token_values(ev, tokens, "t_from", t_word="low").with_columns(
        t_from=pl.when(pl.col("t_word") == "that").then(pl.col("t_from") + 1).otherwise("t_from")
    )
    patient = (
        ev.filter("passive").select("sid", "c_start").join(m, on="sid").filter(pl.col("end") <= pl.col("c_start"))
        .sort("end", descending=True).unique(["sid", "c_start"], keep="first")
        .select("sid", "c_start", pl.col("actor").alias("pt_actor"), pl.col("code").alias("pt_code"))
    )
    targets = (
        ev.select("sid", "c_start", "t_from").join(objects, on="sid")
        .filter((pl.col("start") >= pl.col("t_from")) & (pl.col("start") <= pl.col("t_from") + 12))
        .pipe(with_token_values, flags, "start", brk_target="brk_before")
        .pipe(with_token_values, flags, "t_from", brk_cue="brk_before")
        .filter(pl.col("brk_target") == pl.col("brk_cue"))
        .sort("start").unique(["sid", "c_start"], keep="first")
        .select("sid", "c_start", pl.col("actor").alias("target_actor"), pl.col("code").alias("target_code"))
    )
    ev = (
        ev.join(targets, on=["sid", "c_start"], how="left")
        .join(patient, on=["sid", "c_start"], how="left")
        .with_columns(
            target_actor=pl.when("passive").then(pl.coalesce("pt_actor", "target_actor")).otherwise("target_actor"),
            target_code=pl.when("passive").then(pl.coalesce("pt_code", "target_code")).otherwise("target_code"),
        )
    )
    return ev.select(
        "sid", "cue", "c_start", "action_type", "event_type", "event_mode", "modality", "negated",
        "source_actor", "source_code", "target_actor", "target_code", "confidence",
    )


def add_modality(ev: pl.DataFrame, flags: pl.DataFrame, n_tokens: pl.DataFrame) -> pl.DataFrame:
    """Modality from markers in the cue's clause up to the cue (at most 12 tokens back), and the PLOVER type."""
    counts = ["neg_before", "hyp_before", "intent_before", "cont_before", "unless_before"]
    ev = with_token_values(ev, flags, pl.col("c_start") - 1, clause_start="last_brk")
    ev = ev.with_columns(
        w_lo=pl.max_horizontal(pl.col("clause_start").fill_null(-1) + 1, pl.col("c_start") - 12, 0)
    ).join(n_tokens, on="sid").with_columns(last_ti=pl.col("n_tok") - 1)
    for col in ("w_lo", "c_start", "last_ti"):
        ev = with_token_values(ev, flags, col, **{f"{k}@{col}": k for k in counts})
    win = {k.split("_")[0]: pl.col(f"{k}@c_start") - pl.col(f"{k}@w_lo") for k in counts}
    after_unless = pl.col("unless_before@last_ti") - pl.col("unless_before@c_start") > 0
    negated = win["neg"] > 0
    hypothetical = win["hyp"] > 0
    intent = (win["intent"] > 0) & (win["cont"] == 0)
    modality = (
        pl.when(negated).then(pl.lit("negated"))
        .when(hypothetical).then(pl.lit("hypothetical"))
        .when(intent | after_unless).then(pl.lit("intent"))
        .otherwise(pl.lit("asserted"))
    )
    action = pl.col("event_type")
    plover = (
        pl.when(pl.col("modality") != "intent").then(action)
        .when(after_unless | action.is_in(HOSTILE_ACTIONS)).then(pl.lit("THREATEN"))
        .when(action.is_in(POSITIVE_ACTIONS)).then(pl.lit("AGREE"))
        .otherwise(action)
    )
    factor = pl.col("modality").replace_strict(
        {"asserted": 1.0, "intent": 0.85, "hypothetical": 0.5, "negated": 0.6}, return_dtype=pl.Float64
    )
    return (
        ev.with_columns(modality=modality, negated=negated.fill_null(False), action_type=action)
        .with_columns(event_type=plover)
        .with_columns(
            event_mode=pl.when(pl.col("event_type") == pl.col("action_type")).then("event_mode"),
            confidence=(pl.col("weight") * factor).round(3),
        )
    )


def attribution_mentions(tokens: pl.DataFrame, mentions: pl.DataFrame) -> pl.DataFrame:
    """Mentions that only attribute the report (", the White House announced", ", a UN official said")."""
    rep = tokens.filter(pl.col("low").is_in(REPORTING)).select("sid", pl.col("ti").alias("r_ti"))
    comma = tokens.filter(pl.col("low") == ",").select("sid", pl.col("ti").alias("k_ti"))
    return (
        mentions.select("sid", "start", "end")
        .join(rep, on="sid").filter((pl.col("r_ti") >= pl.col("end")) & (pl.col("r_ti") <= pl.col("end") + 3))
        .join(comma, on="sid").filter((pl.col("k_ti") < pl.col("start")) & (pl.col("k_ti") >= pl.col("start") - 4))
        .select("sid", "start").unique()
    )
