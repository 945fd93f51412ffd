"""The toy-data generators: text in the languages of lexicons/ (see lexicon.py), assembled with exact character
offsets, as a Wikipedia-format corpus and records of the four tasks in the formats of their real sources: SQuAD
v1.1 for QA, WikiANN tokens + IOB2 tags for NER, XNLI premise/hypothesis/label for NLI, MultiClaim-style rows for
check-worthiness. Deterministic: every split draws from a random.Random seeded with its language, task and split.

The tasks are made learnable by the tiny backbone within a CPU budget, not hard: a QA context is about one
person, and an NLI contradiction denies a clause of the premise. `fresh_records` draws any number of further
records, never equal to a bundled one, for the tiny backbone's pre-training.
"""

from __future__ import annotations

import random
import re
from typing import Iterable, Sequence

from softprompt_xl.toy.lexicon import LANGUAGES, City, Language, Value

# ---------------------------------------------------------------------------
# Sizes and knobs
# ---------------------------------------------------------------------------

QA_SIZES = {"train": 400, "validation": 50, "test": 100}
EVAL_SPLITS = ("validation", "test")
WIKI_SIZE = 150
# Contexts are kept short so the whole bundle stays small and a tiny model can
# fit them in a short input window.
MAX_CONTEXT_CHARS = 350
# Share of validation/test items that carry two gold answers (SQuAD-style
# multi-reference evaluation); train keeps a single answer like SQuAD train.
MULTI_ANSWER_RATE = 0.1

# Fact types a person can have.  QA questions cycle through them evenly, and
# future tasks (NER, NLI, claim detection) can reuse the same clauses.
FACTS = ("city", "job", "food", "pet", "born", "colour")
# Fact types for which a second, natural gold answer exists.
MULTI_FACTS = ("city", "born")


# ---------------------------------------------------------------------------
# Text assembly with span tracking
# ---------------------------------------------------------------------------


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


class _Doc:
    """Accumulates sentences and remembers where tagged pieces landed.

    QA answers (and later NER spans) need exact character offsets, which are
    recorded while the text is built instead of being searched for afterwards,
    so repeated or overlapping strings can never yield a wrong offset.
    """

    def __init__(self, sentence_sep: str) -> None:
        self.text = ""
        self.sentence_sep = sentence_sep

    def add_sentence(self, pieces: Sequence[tuple[str, object]]) -> dict[object, int]:
        if self.text:
            self.text += self.sentence_sep
        offsets: dict[object, int] = {}
        first = True
        for piece, tag in pieces:
            if first and piece:
                # Upper-casing the first letter never changes string length for
                # the scripts used here, so recorded offsets stay valid.
                piece, first = _cap(piece), False
            if tag is not None:
                offsets[tag] = len(self.text)
            self.text += piece
        return offsets


def _subject(lang: Language, name: str, gender: str) -> str:
    """A name as the subject of a sentence: with the article where the language puts one there (Greek)."""
    return lang.name_article[gender] + name


def _clause(lang: Language, fact: str, value: Value, gender: str, overrides: dict, tag: object):
    pre, post = (overrides.get(fact) or lang.clauses[fact])[gender].split("{v}")
    return [(pre, None), (value.text(gender), tag), (post, None)]


def _person_pieces(lang: Language, subject: str, gender: str, facts: Sequence[tuple[str, Value]], tag_prefix=()):
    """One sentence: subject + clauses joined as "A, B and C".

    An empty subject means a pro-drop sentence ("Bydlí v Praze."), where the
    first clause is in its non-initial form and gets capitalised.
    """
    pieces: list[tuple[str, object]] = [(subject + lang.word_sep, None)] if subject else []
    for i, (fact, value) in enumerate(facts):
        if i:
            pieces.append((lang.conj if i == len(facts) - 1 else lang.sep, None))
        after_pause = (i == 0 and not subject) or 0 < i < len(facts) - 1  # sentence start or sep, not conj
        overrides = lang.subject_clauses if i == 0 and subject else lang.pause_clauses if after_pause else {}
        pieces += _clause(lang, fact, value, gender, overrides, tag=(*tag_prefix, fact))
    pieces.append((lang.full_stop, None))
    return pieces


def _city_pieces(template: str, city: City, tag: object = None, **extra: str):
    """Split a city template so the nominative mention is tagged."""
    pre, post = template.split("{nom}") if "{nom}" in template else (template, None)
    fill = dict(loc=city.loc, region=city.region, **extra)
    if post is None:
        return [(pre.format(**fill), None)]
    return [(pre.format(**fill), None), (city.nom, tag), (post.format(**fill), None)]


def _compatible(names: Iterable[str]) -> bool:
    # Disallow "Martin"/"Martina" in one text: a name that is a prefix of
    # another makes string-level checks and model answers needlessly ambiguous.
    names = list(names)
    return not any(a != b and b.startswith(a) for a in names for b in names) and len(set(names)) == len(names)


class _Bag:
    """Draws items in shuffled rounds so every lexicon entry gets used."""

    def __init__(self, items: Sequence, rng: random.Random) -> None:
        self.items, self.rng, self.pool = list(items), rng, []

    def draw(self):
        if not self.pool:
            self.pool = list(self.items)
            self.rng.shuffle(self.pool)
        return self.pool.pop()


# ---------------------------------------------------------------------------
# Wikipedia-format corpus
# ---------------------------------------------------------------------------


def make_wiki(lang: Language) -> list[dict]:
    """~150 short articles about people and cities, covering the whole lexicon."""
    rng = random.Random(f"{lang.code}/wiki")
    bags = {fact: _Bag(lang.values(fact), rng) for fact in FACTS}
    names = _Bag(lang.names(), rng)
    city_values = {v.nom: v for v in lang.values("city")}

    full_names = [(lang.full_name(first, g, k), first, g)
                  for first, g in lang.names() for k in range(len(lang.surnames))]
    rng.shuffle(full_names)
    n_people = WIKI_SIZE - len(lang.cities)
    assert n_people <= len(full_names), lang.code

    articles: list[tuple[str, str]] = []
    for full, first, g in full_names[:n_people]:
        pron = lang.pronoun[g]
        p1, p2, p3 = (_Doc(lang.sentence_sep) for _ in range(3))
        p1.add_sentence(_person_pieces(lang, _subject(lang, full, g), g, [("born", bags["born"].draw())]))
        p1.add_sentence(_person_pieces(lang, pron, g, [("city", bags["city"].draw()), ("job", bags["job"].draw())]))
        extras = rng.sample(("food", "pet", "colour"), rng.randint(1, 3))
        p2.add_sentence(_person_pieces(lang, pron, g, [(f, bags[f].draw()) for f in extras]))
        if rng.random() < 0.6:
            sib, sib_g = names.draw()
            while not _compatible([first, sib]):
                sib, sib_g = names.draw()
            facts = rng.sample(FACTS, rng.randint(1, 2))
            p3.add_sentence(_person_pieces(lang, f"{lang.sibling[(g, sib_g)]}{lang.word_sep}{sib}", sib_g,
                                           [(f, bags[f].draw()) for f in facts]))
        articles.append((full, "\n".join(p.text for p in (p1, p2, p3) if p.text)))

    for city in lang.cities:
        p1, p2, p3 = (_Doc(lang.sentence_sep) for _ in range(3))
        p1.add_sentence(_city_pieces(lang.city_intro, city))
        p1.add_sentence(_city_pieces(lang.city_many, city))
        p2.add_sentence(_city_pieces(lang.city_feature, city, feature=rng.choice(lang.features)))
        p2.add_sentence(_city_pieces(lang.city_beautiful, city))
        residents: list[str] = []
        for _ in range(rng.randint(1, 2)):
            name, g = names.draw()
            while not _compatible(residents + [name]):
                name, g = names.draw()
            residents.append(name)
            other = rng.choice([f for f in FACTS if f != "city"])
            p3.add_sentence(_person_pieces(lang, _subject(lang, name, g), g,
                                           [("city", city_values[city.nom]), (other, bags[other].draw())]))
        articles.append((city.nom, "\n".join(p.text for p in (p1, p2, p3))))

    rng.shuffle(articles)
    return [
        {
            "id": str(i + 1),
            # A deliberately non-resolvable host: these articles are synthetic.
            "url": f"https://{lang.code}.wikipedia.invalid/wiki/{title.replace(' ', '_')}",
            "title": title,
            "text": text,
        }
        for i, (title, text) in enumerate(articles)
    ]


# ---------------------------------------------------------------------------
# Extractive QA (SQuAD v1.1 schema)
# ---------------------------------------------------------------------------


def _qa_item(lang: Language, rng: random.Random, fact: str, multi: bool) -> dict:
    """A context about one person (2-3 facts, sometimes a sentence about their city) and a question on one fact.

    One person, not several: telling apart whose fact is asked takes the 3-layer tiny backbone far more steps
    than a CPU budget allows (measured from scratch: exact match ~10% after 1,000 steps with a second person
    in the context, even one without the asked kind of fact, against ~40% with one person), and the toy data
    is there to make component differences measurable, not to be hard.
    """
    name, g = rng.choice(lang.names())
    facts = [fact] + rng.sample([f for f in FACTS if f != fact], rng.choice((1, 2)))
    rng.shuffle(facts)
    values = {f: rng.choice(lang.values(f)) for f in facts}
    doc = _Doc(lang.sentence_sep)
    offsets = doc.add_sentence(_person_pieces(lang, _subject(lang, name, g), g, [(f, values[f]) for f in facts]))
    # A sentence on the person's city gives a city question a second gold answer, so outside multi-answer items
    # it only follows when the question is about something else.
    if "city" in facts and (multi if fact == "city" else rng.random() < 0.2):
        city = next(c for c in lang.cities if c.nom == values["city"].nom)
        offsets.update(doc.add_sentence(_city_pieces(lang.city_beautiful, city, tag="desc")))

    value = values[fact]
    slot = offsets[(fact,)]
    answer = value.answer(g)
    texts = [answer]
    starts = [slot + value.text(g).index(answer)]
    if multi and fact == "city":
        texts.append(value.nom)
        starts.append(offsets["desc"])
    elif multi and fact == "born":
        texts.append(value.text(g))  # "in 1990" next to "1990"
        starts.append(slot)
    for t, s in zip(texts, starts):
        assert doc.text[s:s + len(t)] == t, (lang.code, doc.text, t, s)
    statement = _Doc(lang.sentence_sep)
    statement.add_sentence(_person_pieces(lang, _subject(lang, name, g), g, [(fact, value)]))
    return {
        "title": name,
        "context": doc.text,
        "question": lang.questions[fact][g].format(name=name),
        "answers": {"text": texts, "answer_start": starts},
        "statement": statement.text,  # the answer as a sentence: a pre-training target only (not in SQuAD)
    }


def make_qa(lang: Language, sizes: dict[str, int] = QA_SIZES) -> dict[str, list[dict]]:
    """Train/validation/test splits with evenly cycled fact types."""
    seen: set[tuple[str, str]] = set()
    splits: dict[str, list[dict]] = {}
    for split, size in sizes.items():
        rng = random.Random(f"{lang.code}/qa/{split}")
        facts = [FACTS[i % len(FACTS)] for i in range(size)]
        rng.shuffle(facts)
        multi: set[int] = set()
        if split in EVAL_SPLITS:
            candidates = [i for i, f in enumerate(facts) if f in MULTI_FACTS]
            multi = set(rng.sample(candidates, round(MULTI_ANSWER_RATE * size)))
        items = []
        for i, fact in enumerate(facts):
            # Re-draw on the rare exact repeat so no split leaks into another.
            while True:
                item = _qa_item(lang, rng, fact, i in multi)
                key = (item["context"], item["question"])
                if key not in seen:
                    seen.add(key)
                    break
            if split in QA_SIZES:
                del item["statement"]
            items.append({"id": f"{lang.code}-{split}-{i:04d}", **item})
        splits[split] = items
    return splits


# ---------------------------------------------------------------------------
# Named entities (WikiANN schema: tokens, IOB2 tag ids, langs, spans)
# ---------------------------------------------------------------------------

NER_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")  # WikiANN's ner_tags ids

_PUNCT = ".,?!،۔"  # Arabic-script comma and Urdu full stop too: WikiANN splits them off as tokens


def _entity_part(phrase: str, adpositions: Sequence[str] = ()) -> tuple[int, str]:
    """(offset, text) of the name inside a place phrase: leading lower-case words ("in the", "v", "na") are
    prepositions and articles; Telugu has no case, and its suffixed token is the entity, as in WikiANN.
    Arabic and Urdu have no case either but a separate preposition ("في القاهرة") or postposition ("کراچی میں"),
    which WikiANN leaves outside the entity: their lexicons list those words (adpositions), stripped at either end."""
    words = phrase.split(" ")
    k, end = 0, len(words)
    if adpositions:
        while k < end - 1 and words[k] in adpositions:
            k += 1
        while end > k + 1 and words[end - 1] in adpositions:
            end -= 1
    else:
        while k < len(words) - 1 and words[k] == words[k].lower() and words[k] != words[k].upper():
            k += 1
    rest = " ".join(words[k:end])
    return sum(len(w) + 1 for w in words[:k]), rest


def _tokens_and_tags(text: str, entities: list[tuple[int, int, str]], by_character: bool = False):
    """Tokens, their IOB2 tag ids and the entities as WikiANN's `spans` (each "TYPE: " + its tokens joined by
    spaces), tagged from character spans. Tokens are whitespace words with trailing punctuation split off, or,
    `by_character` (a script written without spaces), every character but a space, as in WikiANN's zh split."""
    tokens, starts = [], []
    for match in re.finditer(r"\S" if by_character else r"\S+", text):
        word, start = match.group(), match.start()
        core = word.rstrip(_PUNCT)
        if core:
            tokens.append(core)
            starts.append(start)
        for i, ch in enumerate(word[len(core):]):
            tokens.append(ch)
            starts.append(start + len(core) + i)
    tags = [0] * len(tokens)
    spans = []
    for begin, end, kind in entities:
        inside = [i for i, s in enumerate(starts) if begin <= s < end]
        assert inside and text[starts[inside[0]]:].startswith(tokens[inside[0]]), (text, begin, end)
        for j, i in enumerate(inside):
            tags[i] = NER_TAGS.index(("B-" if j == 0 else "I-") + kind)
        spans.append(f"{kind}: {' '.join(tokens[i] for i in inside)}")
    return tokens, tags, spans


def _ner_sentence(lang: Language, rng: random.Random, bags: dict, names: _Bag) -> tuple[str, list]:
    """One sentence and its (start, end, type) entities; about one in eight has none."""
    kind = rng.choices(("person", "org", "city", "feature", "none"), weights=(4, 2, 1, 1, 1))[0]
    name, g = names.draw()
    if rng.random() < 0.5:  # full name
        k = rng.randrange(len(lang.surnames))
        name = lang.full_name(name, g, k)
    if kind == "org":
        org = rng.choice(lang.organisations)
        pre, rest = lang.org_sentence[g].split("{per}")
        mid, post = rest.split("{org}")
        text = _cap(pre) + name + mid + org + post
        return text, [(len(pre), len(pre) + len(name), "PER"), (len(pre + name + mid), len(pre + name + mid + org), "ORG")]
    if kind in ("city", "feature"):
        city = rng.choice(lang.cities)
        if kind == "city":
            template = rng.choice((lang.city_intro, lang.city_beautiful))
            doc = _Doc(lang.sentence_sep)
            offsets = doc.add_sentence(_city_pieces(template, city, tag="city"))
            entities = [(offsets["city"], offsets["city"] + len(city.nom), "LOC")]
            if "{region}" in template:
                at = doc.text.index(city.region, offsets["city"] + len(city.nom))
                skip, region = _entity_part(city.region, lang.adpositions)
                entities.append((at + skip, at + skip + len(region), "LOC"))
            return doc.text, entities
        doc = _Doc(lang.sentence_sep)
        doc.add_sentence(_city_pieces(lang.city_feature, city, feature=rng.choice(lang.features)))
        skip, place = _entity_part(city.loc, lang.adpositions)
        at = doc.text.lower().index(city.loc.lower())
        return doc.text, [(at + skip, at + skip + len(place), "LOC")]
    facts = rng.sample([f for f in FACTS if kind == "person" or f != "city"], rng.randint(1, 2))
    if kind == "person" and "city" not in facts and rng.random() < 0.5:
        facts[0] = "city"
    subject = _subject(lang, name, g) if kind == "person" else lang.pronoun[g]
    doc = _Doc(lang.sentence_sep)
    offsets = doc.add_sentence(_person_pieces(lang, subject, g, [(f, bags[f].draw()) for f in facts], tag_prefix=("x",)))
    article = len(lang.name_article[g])
    entities = [(article, article + len(name), "PER")] if kind == "person" else []
    if ("x", "city") in offsets:
        at = offsets[("x", "city")]
        loc = doc.text[at:at + len(next(v for v in lang.values("city") if doc.text.startswith(v.text_m, at)).text_m)]
        skip, place = _entity_part(loc, lang.adpositions)
        entities.append((at + skip, at + skip + len(place), "LOC"))
    return doc.text, sorted(entities)


def make_ner(lang: Language, sizes: dict[str, int] = QA_SIZES) -> dict[str, list[dict]]:
    seen: set[str] = set()
    splits: dict[str, list[dict]] = {}
    for split, size in sizes.items():
        rng = random.Random(f"{lang.code}/ner/{split}")
        bags = {fact: _Bag(lang.values(fact), rng) for fact in FACTS}
        names = _Bag(lang.names(), rng)
        rows = []
        while len(rows) < size:
            text, entities = _ner_sentence(lang, rng, bags, names)
            if text in seen:
                continue
            seen.add(text)
            tokens, tags, spans = _tokens_and_tags(text, entities, by_character=lang.spaceless)
            rows.append({"tokens": tokens, "ner_tags": tags, "langs": [lang.code] * len(tokens), "spans": spans})
        splits[split] = rows
    return splits


# ---------------------------------------------------------------------------
# Natural language inference (XNLI schema: premise, hypothesis, label)
# ---------------------------------------------------------------------------


def _nli_item(lang: Language, rng: random.Random, label: int) -> dict:
    """A premise about one person's facts and a hypothesis of one fact: a clause of the premise (entailment),
    that clause denied (contradiction), or a fact the premise does not mention, stated or denied (neutral).

    A contradiction denies the premise's own clause rather than giving another value ("lives in Leeds" against
    "lives in Bristol"): telling values apart takes the tiny backbone far beyond a CPU budget (measured: chance
    after 2,000 steps from scratch), while a denial is visible in the hypothesis's own words.
    """
    name, g = rng.choice(lang.names())
    facts = rng.sample(FACTS, rng.randint(2, 3))
    values = {f: rng.choice(lang.values(f)) for f in facts}
    premise = _Doc(lang.sentence_sep)
    premise.add_sentence(_person_pieces(lang, _subject(lang, name, g), g, [(f, values[f]) for f in facts]))
    if label == 1:
        fact = rng.choice([f for f in FACTS if f not in facts])
        value, denied = rng.choice(lang.values(fact)), rng.random() < 0.5
    else:
        fact = rng.choice(facts)
        value, denied = values[fact], label == 2
    hypothesis = _Doc(lang.sentence_sep)
    if denied:
        pre, post = lang.negated[fact][g].split("{v}")
        hypothesis.add_sentence([(f"{_subject(lang, name, g)}{lang.word_sep}{pre}", None), (value.text(g), None),
                                 (f"{post}{lang.full_stop}", None)])
    else:
        hypothesis.add_sentence(_person_pieces(lang, _subject(lang, name, g), g, [(fact, value)]))
    return {"premise": premise.text, "hypothesis": hypothesis.text, "label": label}


def make_nli(lang: Language, sizes: dict[str, int] = QA_SIZES) -> dict[str, list[dict]]:
    """Balanced entailment / neutral / contradiction pairs about one person's facts."""
    seen: set[tuple[str, str]] = set()
    splits: dict[str, list[dict]] = {}
    for split, size in sizes.items():
        rng = random.Random(f"{lang.code}/nli/{split}")
        labels = [i % 3 for i in range(size)]
        rng.shuffle(labels)
        rows = []
        for label in labels:
            while True:
                item = _nli_item(lang, rng, label)
                if (item["premise"], item["hypothesis"]) not in seen:
                    seen.add((item["premise"], item["hypothesis"]))
                    break
            rows.append(item)
        splits[split] = rows
    return splits


# ---------------------------------------------------------------------------
# Check-worthiness (MultiClaim-style CSV: id, text, label)
# ---------------------------------------------------------------------------

VERIFIABLE_FACTS = ("born", "city", "job")  # a named person's birth year, home and job can be checked
PREFERENCES = ("food", "pet", "colour")


def _claim(lang: Language, rng: random.Random, checkworthy: bool) -> str:
    """A verifiable statement about a named person or a place, or an opinion, preference or question."""
    doc = _Doc(lang.sentence_sep)
    name, g = rng.choice(lang.names())
    if checkworthy:
        if rng.random() < 0.2:
            doc.add_sentence(_city_pieces(lang.city_intro, rng.choice(lang.cities)))
            return doc.text
        k = rng.randrange(len(lang.surnames))
        full = lang.full_name(name, g, k)
        facts = rng.sample(VERIFIABLE_FACTS, rng.randint(1, 2))
        doc.add_sentence(_person_pieces(lang, _subject(lang, full, g), g,
                                        [(f, rng.choice(lang.values(f))) for f in facts]))
        return doc.text
    style = rng.choices(("preference", "beautiful", "question"), weights=(3, 1, 1))[0]
    if style == "beautiful":
        doc.add_sentence(_city_pieces(lang.city_beautiful, rng.choice(lang.cities)))
        return doc.text
    if style == "question":
        return lang.questions[rng.choice(FACTS)][g].format(name=name)
    subject = rng.choice((_subject(lang, name, g), lang.pronoun[g]))
    facts = rng.sample(PREFERENCES, rng.randint(1, 2))
    doc.add_sentence(_person_pieces(lang, subject, g, [(f, rng.choice(lang.values(f))) for f in facts]))
    return doc.text


def make_checkworthy(lang: Language, sizes: dict[str, int] = QA_SIZES) -> dict[str, list[dict]]:
    seen: set[str] = set()
    splits: dict[str, list[dict]] = {}
    for split, size in sizes.items():
        rng = random.Random(f"{lang.code}/checkworthy/{split}")
        labels = [i % 2 for i in range(size)]
        rng.shuffle(labels)
        rows = []
        for i, label in enumerate(labels):
            text = _claim(lang, rng, bool(label))
            while text in seen:
                text = _claim(lang, rng, bool(label))
            seen.add(text)
            rows.append({"id": f"{lang.code}-{split}-{i:04d}", "text": text, "label": label})
        splits[split] = rows
    return splits


# ---------------------------------------------------------------------------
# Fresh records for pre-training the tiny backbone
# ---------------------------------------------------------------------------

MAKERS = {"qa": make_qa, "ner": make_ner, "nli": make_nli, "checkworthy": make_checkworthy}


def fresh_records(task: str, lang_code: str, size: int) -> list[dict]:
    """`size` records of `task` in the bundled format, drawn like the bundled splits but from a split of their
    own ("pretrain") and never equal to a bundled record: pre-training on them teaches the skill, where the
    400 training records of a split would only be memorised."""
    return MAKERS[task](LANGUAGES[lang_code], {**QA_SIZES, "pretrain": size})["pretrain"]
