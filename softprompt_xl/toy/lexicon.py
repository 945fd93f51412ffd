"""The toy-data generator's lexicons: what it takes to write simple text about people and cities in one
language (names, cities, professions, clause and question templates, ...), read from lexicons/<code>.yaml.

A value in a lexicon file is a string (the same in every clause, and its own QA answer), {text, answer} (the
answer a shorter span of the text: "a teacher" -> "teacher"), or {f, m} (agreeing with the subject's gender,
each form its own answer). A template is a string, or {f, m} where the verb agrees.

A script written without spaces (Chinese) sets `word_sep: ""` and `sentence_sep: ""`, its own `full_stop`
("。") and `name_order: surname_first` (王芳); the defaults are those of the languages written with spaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LEXICONS = Path(__file__).resolve().parent / "lexicons"
YEARS = tuple(range(1950, 2006))  # birth years: every language writes them with its year_phrase


@dataclass(frozen=True)
class Value:
    """A lexicon item as it fills the ``{v}`` slot of a clause.

    ``text`` is what is inserted (already inflected for the clause), ``answer``
    the short span a QA answer uses; it must be a substring of ``text`` so its
    offset can be derived from the slot offset.  Both depend on the gender of
    the subject because professions agree with it in most of the languages.
    """

    text_f: str
    text_m: str
    answer_f: str
    answer_m: str
    nom: str = ""  # nominative name, for cities only

    def text(self, gender: str) -> str:
        return self.text_f if gender == "f" else self.text_m

    def answer(self, gender: str) -> str:
        return self.answer_f if gender == "f" else self.answer_m

    @property
    def key(self) -> str:
        return self.text_m


@dataclass(frozen=True)
class City:
    nom: str  # nominative, e.g. "Praha"
    loc: str  # "lives in X" phrase incl. preposition/postposition, e.g. "v Praze"
    region: str  # "is a city <region>" phrase, e.g. "v České republice"


@dataclass
class Language:
    """Everything needed to write text in one language: lexicon + templates.

    Clause templates follow the subject and contain one ``{v}`` slot; they are
    given per gender as ``{"f": ..., "m": ...}``.  ``subject_clauses`` overrides
    a clause when it directly follows an explicit subject, which is needed where
    word order depends on it (Czech/Slovak reflexive clitic: "Jana se narodila"
    but "..., narodila se"); ``pause_clauses`` one after a pause, opening a sentence
    without a subject or after ``sep`` (a Bulgarian clitic cannot follow a pause:
    "Родена е ...", "..., родена е ..." but "... и е родена ...").
    """

    code: str
    female: tuple[str, ...]
    male: tuple[str, ...]
    surnames: tuple[tuple[str, str], ...]  # (female form, male form)
    cities: tuple[City, ...]
    jobs: tuple[Value, ...]
    foods: tuple[Value, ...]
    pets: tuple[Value, ...]
    colours: tuple[Value, ...]
    year_phrase: str  # e.g. "in {y}"; the QA answer is the bare year inside it
    city_answer: str  # "nom": answer "Praha"-style; "loc": answer "v Praze"-style
    clauses: dict[str, dict[str, str]]
    questions: dict[str, dict[str, str]]
    pronoun: dict[str, str]  # "" for pro-drop languages
    sibling: dict[tuple[str, str], str]  # (owner gender, sibling gender) -> "Her brother"
    sep: str
    conj: str
    city_intro: str  # "{nom} is a city {region}."
    city_beautiful: str  # "{nom} is a beautiful city."
    city_many: str  # "Many people live {loc}."
    city_feature: str  # "{loc} there is {feature}."
    features: tuple[str, ...]
    # The clause denied, right after an explicit subject ("does not live {v}"): NLI contradictions.
    negated: dict[str, dict[str, str]]
    org_sentence: dict[str, str]  # "{per} works for {org}." (NER)
    organisations: tuple[str, ...]  # names that need no inflection after org_sentence's preposition
    subject_clauses: dict[str, dict[str, str]] = field(default_factory=dict)
    pause_clauses: dict[str, dict[str, str]] = field(default_factory=dict)
    # Written before a name as subject ("η Μαρία": Greek names take the article), not before a pronoun.
    name_article: dict[str, str] = field(default_factory=lambda: {"f": "", "m": ""})
    # Words of a place phrase that are not the name ("في", "میں"), for scripts without case, where the name
    # cannot be told from a preposition by its capital (generate._entity_part).
    adpositions: tuple[str, ...] = ()
    word_sep: str = " "  # between a subject and its clause, a sibling phrase and the name
    sentence_sep: str = " "  # between the sentences of a paragraph
    full_stop: str = "."  # ends a person's sentence (templates carry their own; Urdu "۔", Chinese "。")
    name_order: str = "given_first"  # or "surname_first"

    @property
    def spaceless(self) -> bool:
        """Written without spaces between words: WikiANN tokenises such a language (zh) per character."""
        return self.word_sep == ""

    def full_name(self, first: str, gender: str, surname: int) -> str:
        family = self.surnames[surname][0 if gender == "f" else 1]
        parts = (family, first) if self.name_order == "surname_first" else (first, family)
        return self.word_sep.join(parts)

    def names(self) -> list[tuple[str, str]]:
        return [(n, "f") for n in self.female] + [(n, "m") for n in self.male]

    def values(self, fact: str) -> list[Value]:
        if fact == "city":
            return [
                Value(c.loc, c.loc, *(2 * [c.nom if self.city_answer == "nom" else c.loc]), nom=c.nom)
                for c in self.cities
            ]
        if fact == "born":
            return [_value({"text": self.year_phrase.format(y=y), "answer": str(y)}) for y in YEARS]
        return list({"job": self.jobs, "food": self.foods, "pet": self.pets, "colour": self.colours}[fact])


def load(path: Path) -> Language:
    """The lexicon in `path` (lexicons/<code>.yaml)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if raw.get("name_order", "given_first") not in ("given_first", "surname_first"):
        raise ValueError(f"{path}: name_order is {raw['name_order']!r}, not given_first or surname_first")
    templates = {key: {k: _by_gender(v) for k, v in (raw.get(key) or {}).items()}
                 for key in ("clauses", "questions", "negated", "subject_clauses", "pause_clauses")}
    return Language(
        code=path.stem,
        female=tuple(raw["female"]),
        male=tuple(raw["male"]),
        surnames=tuple((s["f"], s["m"]) for s in map(_by_gender, raw["surnames"])),
        cities=tuple(City(**c) for c in raw["cities"]),
        **{kind: tuple(map(_value, raw[kind])) for kind in ("jobs", "foods", "pets", "colours")},
        year_phrase=raw["year_phrase"],
        city_answer=raw["city_answer"],
        **templates,
        pronoun=_by_gender(raw["pronoun"]),
        sibling={(owner, other): text for owner, by in raw["sibling"].items() for other, text in by.items()},
        sep=raw["sep"],
        conj=raw["conj"],
        **{key: raw[key] for key in ("city_intro", "city_beautiful", "city_many", "city_feature")},
        features=tuple(raw["features"]),
        org_sentence=_by_gender(raw["org_sentence"]),
        organisations=tuple(raw["organisations"]),
        name_article=_by_gender(raw.get("name_article", "")),
        adpositions=tuple(raw.get("adpositions", ())),
        **{key: raw[key] for key in ("word_sep", "sentence_sep", "full_stop", "name_order") if key in raw},
    )


def _value(item: Any) -> Value:
    if isinstance(item, str):
        return Value(item, item, item, item)
    if "text" in item:
        return Value(item["text"], item["text"], item["answer"], item["answer"])
    return Value(item["f"], item["m"], item["f"], item["m"])


def _by_gender(item: Any) -> dict[str, str]:
    return {"f": item, "m": item} if isinstance(item, str) else {"f": item["f"], "m": item["m"]}


LANGUAGES: dict[str, Language] = {path.stem: load(path) for path in sorted(LEXICONS.glob("*.yaml"))}
