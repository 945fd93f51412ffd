"""Generate the small bundled toy datasets in ``softprompt_xl/data/toy``.

For six languages (en, de, es, cs, sk, te) this writes a Wikipedia-format corpus (``<lang>/wiki.jsonl.gz``,
for span corruption and the tiny model's tokenizer) and train/validation/test splits of the four tasks in the
native formats of their real sources: SQuAD-v1.1 JSONL for QA, WikiANN tokens + IOB2 tags for NER, XNLI
premise/hypothesis/label for NLI, MultiClaim-style CSV for check-worthiness. The text is real, grammatical
text assembled from hand-written per-language lexicons and templates, so the framework runs and is tested
offline through the same ``datasets.load_dataset`` code path that real hub data takes. Output is
deterministic: ``python -m softprompt_xl.toy.make_toy`` regenerates identical files.

The tasks are made learnable by the tiny backbone within a CPU budget, not hard: a QA context is about one
person, and an NLI contradiction denies a clause of the premise. ``fresh_records`` draws any number of
further records, never equal to a bundled one, for the tiny backbone's pre-training.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

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
YEARS = tuple(range(1950, 2006))

# Fact types a person can have.  QA questions cycle through them evenly, and
# future tasks (NER, NLI, claim detection) can reuse the same clauses.
FACTS = ("city", "job", "food", "pet", "born", "colour")
# Fact types for which a second, natural gold answer exists.
MULTI_FACTS = ("city", "born")

GENDERS = ("f", "m")


# ---------------------------------------------------------------------------
# Lexicon data structures
# ---------------------------------------------------------------------------


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


def V(text: str, answer: str | None = None) -> Value:
    """A gender-invariant value."""
    return Value(text, text, answer or text, answer or text)


def GV(female: str, male: str, answer_f: str | None = None, answer_m: str | None = None) -> Value:
    """A value whose form agrees with the subject's gender."""
    return Value(female, male, answer_f or female, answer_m or male)


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
    but "..., narodila se").
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
    subject_clauses: dict[str, dict[str, str]] = field(default_factory=dict)
    # The clause denied, right after an explicit subject ("does not live {v}"): NLI contradictions.
    negated: dict[str, dict[str, str]] = field(default_factory=dict)

    def names(self) -> list[tuple[str, str]]:
        return [(n, "f") for n in self.female] + [(n, "m") for n in self.male]

    def values(self, fact: str) -> list[Value]:
        if fact == "city":
            return [
                Value(c.loc, c.loc, *(2 * [c.nom if self.city_answer == "nom" else c.loc]), nom=c.nom)
                for c in self.cities
            ]
        if fact == "born":
            return [V(self.year_phrase.format(y=y), str(y)) for y in YEARS]
        return list({"job": self.jobs, "food": self.foods, "pet": self.pets, "colour": self.colours}[fact])


def both(text: str) -> dict[str, str]:
    return {"f": text, "m": text}


def gen(female: str, male: str) -> dict[str, str]:
    return {"f": female, "m": male}


# ---------------------------------------------------------------------------
# Languages
# ---------------------------------------------------------------------------


def _en_job(article: str, noun: str) -> Value:
    return V(f"{article} {noun}", noun)


EN = Language(
    code="en",
    female=("Emma", "Olivia", "Sophie", "Grace", "Hannah", "Lucy", "Chloe", "Amelia", "Ruby", "Ella"),
    male=("James", "Oliver", "Jack", "Harry", "Thomas", "George", "Daniel", "Samuel", "William", "Henry"),
    surnames=tuple((s, s) for s in ("Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Walker", "Wright")),
    cities=(
        City("London", "in London", "in England"),
        City("Manchester", "in Manchester", "in England"),
        City("Leeds", "in Leeds", "in England"),
        City("Bristol", "in Bristol", "in England"),
        City("Liverpool", "in Liverpool", "in England"),
        City("Edinburgh", "in Edinburgh", "in Scotland"),
        City("Glasgow", "in Glasgow", "in Scotland"),
        City("Cardiff", "in Cardiff", "in Wales"),
        City("Dublin", "in Dublin", "in Ireland"),
        City("Boston", "in Boston", "in the United States"),
        City("Chicago", "in Chicago", "in the United States"),
        City("Seattle", "in Seattle", "in the United States"),
        City("Toronto", "in Toronto", "in Canada"),
        City("Sydney", "in Sydney", "in Australia"),
    ),
    jobs=(
        _en_job("a", "teacher"), _en_job("a", "doctor"), _en_job("a", "nurse"), _en_job("an", "engineer"),
        _en_job("a", "baker"), _en_job("a", "chef"), _en_job("a", "lawyer"), _en_job("a", "journalist"),
        _en_job("an", "architect"), _en_job("a", "bus driver"), _en_job("a", "carpenter"),
        _en_job("a", "hairdresser"), _en_job("a", "programmer"), _en_job("an", "accountant"),
        _en_job("a", "police officer"), _en_job("a", "farmer"),
    ),
    foods=tuple(V(f) for f in (
        "pizza", "pancakes", "sushi", "apple pie", "fish and chips", "spaghetti", "curry",
        "roast chicken", "tomato soup", "chocolate cake", "porridge", "lasagne",
    )),
    pets=tuple(V(a) for a in (
        "dog", "cat", "rabbit", "parrot", "hamster", "tortoise", "horse", "goldfish", "guinea pig", "ferret",
    )),
    colours=tuple(V(c) for c in (
        "red", "blue", "green", "yellow", "purple", "orange", "pink", "black", "white", "grey", "brown",
        "turquoise",
    )),
    year_phrase="in {y}",
    city_answer="nom",
    negated={
        "city": both("does not live {v}"),
        "job": both("does not work as {v}"),
        "food": both("does not love {v}"),
        "pet": both("does not have a pet {v}"),
        "born": both("was not born {v}"),
        "colour": both("does not like the colour {v} best"),
    },
    clauses={
        "city": both("lives {v}"),
        "job": both("works as {v}"),
        "food": both("loves {v}"),
        "pet": both("has a pet {v}"),
        "born": both("was born {v}"),
        "colour": both("likes the colour {v} best"),
    },
    questions={
        "city": both("Where does {name} live?"),
        "job": both("What does {name} do for a living?"),
        "food": both("What food does {name} love?"),
        "pet": both("What pet does {name} have?"),
        "born": both("In which year was {name} born?"),
        "colour": both("Which colour does {name} like best?"),
    },
    pronoun=gen("She", "He"),
    sibling={("f", "f"): "Her sister", ("f", "m"): "Her brother", ("m", "f"): "His sister", ("m", "m"): "His brother"},
    sep=", ",
    conj=" and ",
    city_intro="{nom} is a city {region}.",
    city_beautiful="{nom} is a beautiful city.",
    city_many="Many people live {loc}.",
    city_feature="{loc} there is {feature}.",
    features=("a big park", "an old church", "a public library", "a museum", "a railway station",
              "a market square", "a hospital"),
)


DE = Language(
    code="de",
    female=("Anna", "Lena", "Laura", "Julia", "Sarah", "Lea", "Marie", "Sophie", "Katharina", "Hannah"),
    male=("Lukas", "Jonas", "Felix", "Paul", "Maximilian", "Leon", "Tobias", "Jan", "Niklas", "Florian"),
    surnames=tuple((s, s) for s in ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker")),
    cities=(
        City("Berlin", "in Berlin", "in Deutschland"),
        City("Hamburg", "in Hamburg", "in Deutschland"),
        City("München", "in München", "in Deutschland"),
        City("Köln", "in Köln", "in Deutschland"),
        City("Frankfurt", "in Frankfurt", "in Deutschland"),
        City("Stuttgart", "in Stuttgart", "in Deutschland"),
        City("Leipzig", "in Leipzig", "in Deutschland"),
        City("Dresden", "in Dresden", "in Deutschland"),
        City("Bremen", "in Bremen", "in Deutschland"),
        City("Freiburg", "in Freiburg", "in Deutschland"),
        City("Wien", "in Wien", "in Österreich"),
        City("Graz", "in Graz", "in Österreich"),
        City("Salzburg", "in Salzburg", "in Österreich"),
        City("Zürich", "in Zürich", "in der Schweiz"),
        City("Basel", "in Basel", "in der Schweiz"),
    ),
    jobs=tuple(GV(f, m) for f, m in (
        ("Lehrerin", "Lehrer"), ("Ärztin", "Arzt"), ("Köchin", "Koch"), ("Bäckerin", "Bäcker"),
        ("Ingenieurin", "Ingenieur"), ("Programmiererin", "Programmierer"), ("Journalistin", "Journalist"),
        ("Architektin", "Architekt"), ("Verkäuferin", "Verkäufer"), ("Anwältin", "Anwalt"),
        ("Friseurin", "Friseur"), ("Tischlerin", "Tischler"), ("Buchhalterin", "Buchhalter"),
        ("Gärtnerin", "Gärtner"), ("Busfahrerin", "Busfahrer"), ("Polizistin", "Polizist"),
    )),
    foods=tuple(V(f) for f in (
        "Pizza", "Spaghetti", "Schnitzel", "Apfelstrudel", "Kartoffelsalat", "Käsespätzle", "Bratwurst",
        "Gulasch", "Pfannkuchen", "Linsensuppe", "Sauerbraten", "Brezeln",
    )),
    # Accusative indefinite article agrees with the noun's gender.
    pets=tuple(V(f"{art} {noun}", noun) for art, noun in (
        ("einen", "Hund"), ("eine", "Katze"), ("ein", "Kaninchen"), ("einen", "Papagei"),
        ("einen", "Hamster"), ("eine", "Schildkröte"), ("ein", "Pferd"), ("einen", "Goldfisch"),
        ("ein", "Meerschweinchen"), ("einen", "Wellensittich"),
    )),
    colours=tuple(V(c) for c in (
        "Blau", "Rot", "Grün", "Gelb", "Schwarz", "Weiß", "Lila", "Orange", "Rosa", "Grau", "Braun", "Türkis",
    )),
    year_phrase="im Jahr {y}",
    city_answer="nom",
    negated={
        "city": both("wohnt nicht {v}"),
        "job": both("arbeitet nicht als {v}"),
        "food": both("isst nicht am liebsten {v}"),
        "pet": both("hat k{v}"),  # einen/eine/ein Hund -> keinen/keine/kein
        "born": both("wurde nicht {v} geboren"),
        "colour": both("trägt nicht gern {v}"),
    },
    clauses={
        "city": both("wohnt {v}"),
        "job": both("arbeitet als {v}"),
        "food": both("isst am liebsten {v}"),
        "pet": both("hat {v}"),
        "born": both("wurde {v} geboren"),
        "colour": both("trägt gern {v}"),
    },
    questions={
        "city": both("Wo wohnt {name}?"),
        "job": both("Was ist {name} von Beruf?"),
        "food": both("Was isst {name} am liebsten?"),
        "pet": both("Welches Haustier hat {name}?"),
        "born": both("In welchem Jahr wurde {name} geboren?"),
        "colour": both("Welche Farbe trägt {name} gern?"),
    },
    pronoun=gen("Sie", "Er"),
    sibling={("f", "f"): "Ihre Schwester", ("f", "m"): "Ihr Bruder",
             ("m", "f"): "Seine Schwester", ("m", "m"): "Sein Bruder"},
    sep=", ",
    conj=" und ",
    city_intro="{nom} ist eine Stadt {region}.",
    city_beautiful="{nom} ist eine schöne Stadt.",
    city_many="{loc} leben viele Menschen.",
    city_feature="{loc} gibt es {feature}.",
    features=("einen großen Park", "eine alte Kirche", "eine Stadtbibliothek", "ein Museum", "einen Bahnhof",
              "einen Marktplatz", "ein Krankenhaus"),
)


ES = Language(
    code="es",
    female=("Lucía", "María", "Carmen", "Sofía", "Elena", "Laura", "Paula", "Marta", "Isabel", "Ana"),
    male=("Pablo", "Javier", "Carlos", "Miguel", "Diego", "Antonio", "Jorge", "Alejandro", "Manuel", "Hugo"),
    surnames=tuple((s, s) for s in ("García", "Martínez", "López", "Sánchez", "Romero", "Navarro", "Torres", "Ruiz")),
    cities=(
        City("Madrid", "en Madrid", "de España"),
        City("Sevilla", "en Sevilla", "de España"),
        City("Valencia", "en Valencia", "de España"),
        City("Bilbao", "en Bilbao", "de España"),
        City("Granada", "en Granada", "de España"),
        City("Málaga", "en Málaga", "de España"),
        City("Zaragoza", "en Zaragoza", "de España"),
        City("Salamanca", "en Salamanca", "de España"),
        City("Barcelona", "en Barcelona", "de España"),
        City("Toledo", "en Toledo", "de España"),
        City("Córdoba", "en Córdoba", "de España"),
        City("Lima", "en Lima", "de Perú"),
        City("Bogotá", "en Bogotá", "de Colombia"),
        City("Quito", "en Quito", "de Ecuador"),
        City("Montevideo", "en Montevideo", "de Uruguay"),
    ),
    jobs=tuple(GV(f, m) for f, m in (
        ("profesora", "profesor"), ("médica", "médico"), ("enfermera", "enfermero"), ("cocinera", "cocinero"),
        ("panadera", "panadero"), ("ingeniera", "ingeniero"), ("programadora", "programador"),
        ("periodista", "periodista"), ("arquitecta", "arquitecto"), ("dependienta", "dependiente"),
        ("abogada", "abogado"), ("peluquera", "peluquero"), ("carpintera", "carpintero"),
        ("jardinera", "jardinero"), ("conductora de autobús", "conductor de autobús"), ("policía", "policía"),
    )),
    foods=tuple(V(f) for f in (
        "paella", "tortilla de patatas", "cocido", "pizza", "empanadas", "churros", "arroz con pollo",
        "lentejas", "croquetas", "ensalada", "pescado", "tacos",
    )),
    pets=tuple(V(f"{art} {noun}", noun) for art, noun in (
        ("un", "perro"), ("un", "gato"), ("un", "conejo"), ("un", "loro"), ("un", "hámster"),
        ("una", "tortuga"), ("un", "caballo"), ("un", "pez"), ("una", "cobaya"), ("un", "canario"),
    )),
    colours=tuple(V(c) for c in (
        "azul", "rojo", "verde", "amarillo", "negro", "blanco", "morado", "naranja", "rosa", "gris",
        "marrón", "turquesa",
    )),
    year_phrase="en {y}",
    city_answer="nom",
    negated={
        "city": both("no vive {v}"),
        "job": both("no trabaja como {v}"),
        "food": both("no suele comer {v}"),
        "pet": both("no tiene {v}"),
        "born": both("no nació {v}"),
        "colour": both("no prefiere el color {v}"),
    },
    clauses={
        "city": both("vive {v}"),
        "job": both("trabaja como {v}"),
        # "suele comer" keeps the person as grammatical subject; "le encanta"
        # would be ungrammatical right after a bare name ("*Ana le encanta").
        "food": both("suele comer {v}"),
        "pet": both("tiene {v}"),
        "born": both("nació {v}"),
        "colour": both("prefiere el color {v}"),
    },
    questions={
        "city": both("¿Dónde vive {name}?"),
        "job": both("¿En qué trabaja {name}?"),
        "food": both("¿Qué suele comer {name}?"),
        "pet": both("¿Qué mascota tiene {name}?"),
        "born": both("¿En qué año nació {name}?"),
        "colour": both("¿Qué color prefiere {name}?"),
    },
    pronoun=gen("", ""),
    sibling={("f", "f"): "Su hermana", ("f", "m"): "Su hermano", ("m", "f"): "Su hermana", ("m", "m"): "Su hermano"},
    sep=", ",
    conj=" y ",
    city_intro="{nom} es una ciudad {region}.",
    city_beautiful="{nom} es una ciudad muy bonita.",
    city_many="{loc} viven muchas personas.",
    city_feature="{loc} hay {feature}.",
    features=("un gran parque", "una iglesia antigua", "una biblioteca pública", "un museo",
              "una estación de tren", "una plaza mayor", "un hospital"),
)


CS = Language(
    code="cs",
    female=("Jana", "Eva", "Lucie", "Tereza", "Petra", "Kateřina", "Veronika", "Markéta", "Hana", "Klára"),
    male=("Petr", "Vojtěch", "Tomáš", "Martin", "Jakub", "Lukáš", "Ondřej", "Pavel", "David", "Jiří"),
    surnames=(
        ("Nováková", "Novák"), ("Svobodová", "Svoboda"), ("Dvořáková", "Dvořák"), ("Černá", "Černý"),
        ("Procházková", "Procházka"), ("Kučerová", "Kučera"), ("Veselá", "Veselý"), ("Horáková", "Horák"),
    ),
    # Locatives are listed rather than derived: Czech stems alternate (Praha ->
    # v Praze, Brno -> v Brně) and the preposition itself varies (ve Zlíně).
    # Only singular city names, so "X je krásné město" agrees.
    cities=tuple(City(nom, loc, "v České republice") for nom, loc in (
        ("Praha", "v Praze"), ("Brno", "v Brně"), ("Ostrava", "v Ostravě"), ("Plzeň", "v Plzni"),
        ("Olomouc", "v Olomouci"), ("Liberec", "v Liberci"), ("Zlín", "ve Zlíně"), ("Jihlava", "v Jihlavě"),
        ("Kolín", "v Kolíně"), ("Tábor", "v Táboře"), ("Opava", "v Opavě"), ("Kladno", "v Kladně"),
        ("Písek", "v Písku"), ("Hradec Králové", "v Hradci Králové"), ("Třebíč", "v Třebíči"),
    )),
    jobs=tuple(GV(f, m) for f, m in (
        ("učitelka", "učitel"), ("lékařka", "lékař"), ("kuchařka", "kuchař"), ("pekařka", "pekař"),
        ("inženýrka", "inženýr"), ("programátorka", "programátor"), ("novinářka", "novinář"),
        ("architektka", "architekt"), ("prodavačka", "prodavač"), ("právnička", "právník"),
        ("kadeřnice", "kadeřník"), ("truhlářka", "truhlář"), ("účetní", "účetní"), ("zahradnice", "zahradník"),
        ("řidička autobusu", "řidič autobusu"), ("policistka", "policista"),
    )),
    # Accusative forms: they fill the object slot of "ráda jí ...".
    foods=tuple(V(f) for f in (
        "svíčkovou", "guláš", "řízek", "knedlíky", "bramboráky", "palačinky", "koláče", "smažený sýr",
        "pizzu", "bramboračku", "vepřovou pečeni", "ovocné knedlíky",
    )),
    pets=tuple(V(a) for a in (
        "psa", "kočku", "králíka", "papouška", "křečka", "želvu", "koně", "andulku", "morče", "fretku",
    )),
    # Feminine accusative adjectives agreeing with "barvu".
    colours=tuple(V(c) for c in (
        "modrou", "zelenou", "červenou", "žlutou", "černou", "bílou", "fialovou", "oranžovou", "růžovou",
        "šedou", "hnědou", "tyrkysovou",
    )),
    year_phrase="v roce {y}",
    city_answer="loc",
    negated={
        "city": both("nebydlí {v}"),
        "job": both("nepracuje jako {v}"),
        "food": gen("nejí ráda {v}", "nejí rád {v}"),
        "pet": both("nechová {v}"),
        "born": gen("se nenarodila {v}", "se nenarodil {v}"),
        "colour": both("nemá nejraději {v} barvu"),
    },
    clauses={
        "city": both("bydlí {v}"),
        "job": both("pracuje jako {v}"),
        "food": gen("ráda jí {v}", "rád jí {v}"),
        "pet": both("chová {v}"),
        "born": gen("narodila se {v}", "narodil se {v}"),
        "colour": both("má nejraději {v} barvu"),
    },
    subject_clauses={"born": gen("se narodila {v}", "se narodil {v}")},
    questions={
        "city": both("Kde bydlí {name}?"),
        "job": both("Jaké povolání má {name}?"),
        "food": gen("Co {name} ráda jí?", "Co {name} rád jí?"),
        "pet": both("Jaké zvíře chová {name}?"),
        "born": gen("Ve kterém roce se {name} narodila?", "Ve kterém roce se {name} narodil?"),
        "colour": both("Jakou barvu má {name} nejraději?"),
    },
    pronoun=gen("", ""),
    sibling={("f", "f"): "Její sestra", ("f", "m"): "Její bratr", ("m", "f"): "Jeho sestra", ("m", "m"): "Jeho bratr"},
    sep=", ",
    conj=" a ",
    city_intro="{nom} je město {region}.",
    city_beautiful="{nom} je krásné město.",
    city_many="{loc} žije mnoho lidí.",
    city_feature="{loc} je {feature}.",
    features=("velký park", "starý kostel", "městská knihovna", "muzeum", "nádraží", "náměstí", "nemocnice"),
)


SK = Language(
    code="sk",
    female=("Zuzana", "Katarína", "Lucia", "Barbora", "Mária", "Veronika", "Martina", "Simona", "Petra", "Eva"),
    male=("Peter", "Martin", "Ján", "Tomáš", "Michal", "Lukáš", "Marek", "Juraj", "Jakub", "Andrej"),
    surnames=(
        ("Kováčová", "Kováč"), ("Horváthová", "Horváth"), ("Vargová", "Varga"), ("Tóthová", "Tóth"),
        ("Balážová", "Baláž"), ("Molnárová", "Molnár"), ("Lukáčová", "Lukáč"), ("Poláková", "Polák"),
    ),
    # Singular city names only (no Košice), and no "Martin", which is also a name.
    cities=tuple(City(nom, loc, "na Slovensku") for nom, loc in (
        ("Bratislava", "v Bratislave"), ("Žilina", "v Žiline"), ("Nitra", "v Nitre"), ("Trnava", "v Trnave"),
        ("Banská Bystrica", "v Banskej Bystrici"), ("Prešov", "v Prešove"), ("Trenčín", "v Trenčíne"),
        ("Poprad", "v Poprade"), ("Zvolen", "vo Zvolene"), ("Komárno", "v Komárne"), ("Lučenec", "v Lučenci"),
        ("Ružomberok", "v Ružomberku"), ("Senica", "v Senici"), ("Púchov", "v Púchove"),
    )),
    jobs=tuple(GV(f, m) for f, m in (
        ("učiteľka", "učiteľ"), ("lekárka", "lekár"), ("kuchárka", "kuchár"), ("pekárka", "pekár"),
        ("inžinierka", "inžinier"), ("programátorka", "programátor"), ("novinárka", "novinár"),
        ("architektka", "architekt"), ("predavačka", "predavač"), ("právnička", "právnik"),
        ("kaderníčka", "kaderník"), ("stolárka", "stolár"), ("účtovníčka", "účtovník"),
        ("záhradníčka", "záhradník"), ("vodička autobusu", "vodič autobusu"), ("policajtka", "policajt"),
    )),
    foods=tuple(V(f) for f in (
        "bryndzové halušky", "pirohy", "kapustnicu", "guláš", "rezeň", "palacinky", "lokše", "pizzu",
        "strapačky", "buchty", "vyprážaný syr", "zemiakové placky",
    )),
    pets=tuple(V(a) for a in (
        "psa", "mačku", "králika", "papagája", "škrečka", "korytnačku", "koňa", "andulku", "morča", "fretku",
    )),
    colours=tuple(V(c) for c in (
        "modrú", "zelenú", "červenú", "žltú", "čiernu", "bielu", "fialovú", "oranžovú", "ružovú", "sivú",
        "hnedú", "tyrkysovú",
    )),
    year_phrase="v roku {y}",
    city_answer="loc",
    negated={
        "city": both("nebýva {v}"),
        "job": both("nepracuje ako {v}"),
        "food": gen("nejedáva rada {v}", "nejedáva rád {v}"),
        "pet": both("nechová {v}"),
        "born": gen("sa nenarodila {v}", "sa nenarodil {v}"),
        "colour": both("nemá najradšej {v} farbu"),
    },
    clauses={
        "city": both("býva {v}"),
        "job": both("pracuje ako {v}"),
        "food": gen("rada jedáva {v}", "rád jedáva {v}"),
        "pet": both("chová {v}"),
        "born": gen("narodila sa {v}", "narodil sa {v}"),
        "colour": both("má najradšej {v} farbu"),
    },
    subject_clauses={"born": gen("sa narodila {v}", "sa narodil {v}")},
    questions={
        "city": both("Kde býva {name}?"),
        "job": both("Aké povolanie má {name}?"),
        "food": gen("Čo {name} rada jedáva?", "Čo {name} rád jedáva?"),
        "pet": both("Aké zviera chová {name}?"),
        "born": gen("V ktorom roku sa {name} narodila?", "V ktorom roku sa {name} narodil?"),
        "colour": both("Akú farbu má {name} najradšej?"),
    },
    pronoun=gen("", ""),
    sibling={("f", "f"): "Jej sestra", ("f", "m"): "Jej brat", ("m", "f"): "Jeho sestra", ("m", "m"): "Jeho brat"},
    sep=", ",
    conj=" a ",
    city_intro="{nom} je mesto {region}.",
    city_beautiful="{nom} je krásne mesto.",
    city_many="{loc} žije veľa ľudí.",
    city_feature="{loc} je {feature}.",
    features=("veľký park", "starý kostol", "mestská knižnica", "múzeum", "železničná stanica", "námestie",
              "nemocnica"),
)


_ZWNJ = "\u200c"


def _te(word: str, suffix: str) -> str:
    """Attach a Telugu case suffix.

    After a word-final virama the suffix is joined with ZWNJ, as Telugu
    Wikipedia writes loanwords ("డాక్టర్‌గా"), so the bare word stays a visible
    prefix and can serve as the answer span.
    """
    return word + (_ZWNJ if word.endswith("\u0c4d") else "") + suffix


def _te_acc(noun: str) -> str:
    # Accusative: -ని after i/ī, -ను otherwise (for the nouns used here).
    return noun + ("ని" if noun.endswith(("ి", "ీ")) else "ను")


TE = Language(
    code="te",
    female=("అనూష", "లక్ష్మి", "ప్రియ", "కావ్య", "దివ్య", "స్వాతి", "రమ్య", "పద్మ", "సౌమ్య", "మాధవి"),
    male=("రవి", "కిరణ్", "సురేష్", "రాము", "వెంకట్", "శ్రీనివాస్", "అర్జున్", "మహేష్", "కృష్ణ", "రాజు"),
    surnames=tuple((s, s) for s in ("రెడ్డి", "రావు", "నాయుడు", "శర్మ", "చౌదరి", "వర్మ", "గౌడ్", "శాస్త్రి")),
    cities=tuple(City(nom, _te(nom, "లో"), region) for nom, region in (
        ("హైదరాబాద్", "తెలంగాణలోని"), ("వరంగల్", "తెలంగాణలోని"), ("ఖమ్మం", "తెలంగాణలోని"),
        ("నిజామాబాద్", "తెలంగాణలోని"), ("కరీంనగర్", "తెలంగాణలోని"),
        ("విజయవాడ", "ఆంధ్రప్రదేశ్\u200cలోని"), ("విశాఖపట్నం", "ఆంధ్రప్రదేశ్\u200cలోని"),
        ("తిరుపతి", "ఆంధ్రప్రదేశ్\u200cలోని"), ("గుంటూరు", "ఆంధ్రప్రదేశ్\u200cలోని"),
        ("నెల్లూరు", "ఆంధ్రప్రదేశ్\u200cలోని"), ("కర్నూలు", "ఆంధ్రప్రదేశ్\u200cలోని"),
        ("కాకినాడ", "ఆంధ్రప్రదేశ్\u200cలోని"), ("రాజమండ్రి", "ఆంధ్రప్రదేశ్\u200cలోని"),
        ("బెంగళూరు", "కర్ణాటకలోని"), ("చెన్నై", "తమిళనాడులోని"),
    )),
    # Professions take the essive "-గా" ("as a ..."); gender-neutral forms are
    # chosen so the bare noun stays a prefix of the inflected word.
    jobs=tuple(V(_te(j, "గా"), j) for j in (
        "డాక్టర్", "టీచర్", "ఇంజనీర్", "లాయర్", "నర్సు", "రైతు", "జర్నలిస్ట్", "డ్రైవర్", "దర్జీ",
        "ప్రోగ్రామర్", "ఆర్కిటెక్ట్", "అకౌంటెంట్", "పోలీసు అధికారి", "వ్యాపారి", "శాస్త్రవేత్త",
    )),
    foods=tuple(V(f) for f in (
        "బిర్యానీ", "దోసె", "ఇడ్లీ", "పులిహోర", "పెసరట్టు", "ఉప్మా", "పూరీ", "చపాతీ", "గారెలు", "వడ",
        "పొంగలి", "చికెన్ కూర",
    )),
    pets=tuple(V(_te_acc(a), a) for a in (
        "కుక్క", "పిల్లి", "కుందేలు", "చిలుక", "ఆవు", "మేక", "తాబేలు", "గొర్రె", "బాతు", "కోడి",
    )),
    colours=tuple(V(c) for c in (
        "ఎరుపు", "నీలం", "ఆకుపచ్చ", "పసుపు", "నలుపు", "తెలుపు", "ఊదా", "గులాబీ", "నారింజ", "బూడిద",
    )),
    year_phrase="{y}లో",
    city_answer="nom",
    # Verbs agree with the subject: -తుంది (feminine) / -తాడు (masculine).
    negated={  # the negative habitual: stem + -దు (f) / -డు (m); "was not born": జన్మించలేదు
        "city": gen("{v} నివసించదు", "{v} నివసించడు"),
        "job": gen("{v} పనిచేయదు", "{v} పనిచేయడు"),
        "food": gen("ఎక్కువగా {v} తినదు", "ఎక్కువగా {v} తినడు"),
        "pet": gen("ఒక {v} పెంచదు", "ఒక {v} పెంచడు"),
        "born": both("{v} జన్మించలేదు"),
        "colour": gen("{v} రంగును ఇష్టపడదు", "{v} రంగును ఇష్టపడడు"),
    },
    clauses={
        "city": gen("{v} నివసిస్తుంది", "{v} నివసిస్తాడు"),
        "job": gen("{v} పనిచేస్తుంది", "{v} పనిచేస్తాడు"),
        "food": gen("ఎక్కువగా {v} తింటుంది", "ఎక్కువగా {v} తింటాడు"),
        "pet": gen("ఒక {v} పెంచుతుంది", "ఒక {v} పెంచుతాడు"),
        "born": gen("{v} జన్మించింది", "{v} జన్మించాడు"),
        "colour": gen("{v} రంగును ఇష్టపడుతుంది", "{v} రంగును ఇష్టపడతాడు"),
    },
    questions={
        "city": gen("{name} ఎక్కడ నివసిస్తుంది?", "{name} ఎక్కడ నివసిస్తాడు?"),
        "job": both("{name} వృత్తి ఏమిటి?"),
        "food": gen("{name} ఎక్కువగా ఏం తింటుంది?", "{name} ఎక్కువగా ఏం తింటాడు?"),
        "pet": gen("{name} ఏ జంతువును పెంచుతుంది?", "{name} ఏ జంతువును పెంచుతాడు?"),
        "born": gen("{name} ఏ సంవత్సరంలో జన్మించింది?", "{name} ఏ సంవత్సరంలో జన్మించాడు?"),
        "colour": gen("{name} ఏ రంగును ఇష్టపడుతుంది?", "{name} ఏ రంగును ఇష్టపడతాడు?"),
    },
    pronoun=gen("ఆమె", "అతను"),
    sibling={("f", "f"): "ఆమె సోదరి", ("f", "m"): "ఆమె సోదరుడు", ("m", "f"): "అతని సోదరి", ("m", "m"): "అతని సోదరుడు"},
    sep=", ",
    conj=" మరియు ",
    city_intro="{nom} {region} ఒక నగరం.",
    city_beautiful="{nom} ఒక అందమైన నగరం.",
    city_many="{loc} చాలా మంది ప్రజలు నివసిస్తున్నారు.",
    city_feature="{loc} {feature} ఉంది.",
    features=("ఒక పెద్ద పార్కు", "ఒక పాత దేవాలయం", "ఒక గ్రంథాలయం", "ఒక మ్యూజియం", "ఒక రైల్వే స్టేషన్",
              "ఒక పెద్ద మార్కెట్", "ఒక ఆసుపత్రి"),
)


LANGUAGES: dict[str, Language] = {lang.code: lang for lang in (EN, DE, ES, CS, SK, TE)}


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

    def __init__(self, sentence_sep: str = " ") -> None:
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


def _clause(lang: Language, fact: str, value: Value, gender: str, after_subject: bool, tag: object):
    templates = lang.subject_clauses.get(fact) if after_subject else None
    pre, post = (templates or lang.clauses[fact])[gender].split("{v}")
    return [(pre, None), (value.text(gender), tag), (post, None)]


def _person_pieces(lang: Language, subject: str, gender: str, facts: Sequence[tuple[str, Value]], tag_prefix=()):
    """One sentence: subject + clauses joined as "A, B and C".

    An empty subject means a pro-drop sentence ("Bydlí v Praze."), where the
    first clause is in its non-initial form and gets capitalised.
    """
    pieces: list[tuple[str, object]] = [(subject + " ", None)] if subject else []
    for i, (fact, value) in enumerate(facts):
        if i:
            pieces.append((lang.conj if i == len(facts) - 1 else lang.sep, None))
        pieces += _clause(lang, fact, value, gender, after_subject=(i == 0 and bool(subject)),
                          tag=(*tag_prefix, fact))
    pieces.append((".", None))
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

    full_names = [(f"{first} {lang.surnames[k][0 if g == 'f' else 1]}", first, g)
                  for first, g in lang.names() for k in range(len(lang.surnames))]
    rng.shuffle(full_names)
    n_people = WIKI_SIZE - len(lang.cities)
    assert n_people <= len(full_names), lang.code

    articles: list[tuple[str, str]] = []
    for full, first, g in full_names[:n_people]:
        pron = lang.pronoun[g]
        p1, p2, p3 = _Doc(), _Doc(), _Doc()
        p1.add_sentence(_person_pieces(lang, full, g, [("born", bags["born"].draw())]))
        p1.add_sentence(_person_pieces(lang, pron, g, [("city", bags["city"].draw()), ("job", bags["job"].draw())]))
        extras = rng.sample(("food", "pet", "colour"), rng.randint(1, 3))
        p2.add_sentence(_person_pieces(lang, pron, g, [(f, bags[f].draw()) for f in extras]))
        if rng.random() < 0.6:
            sib, sib_g = names.draw()
            while not _compatible([first, sib]):
                sib, sib_g = names.draw()
            facts = rng.sample(FACTS, rng.randint(1, 2))
            p3.add_sentence(_person_pieces(lang, f"{lang.sibling[(g, sib_g)]} {sib}", sib_g,
                                           [(f, bags[f].draw()) for f in facts]))
        articles.append((full, "\n".join(p.text for p in (p1, p2, p3) if p.text)))

    for city in lang.cities:
        p1, p2, p3 = _Doc(), _Doc(), _Doc()
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
            p3.add_sentence(_person_pieces(lang, name, g, [("city", city_values[city.nom]),
                                                           (other, bags[other].draw())]))
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
    doc = _Doc()
    offsets = doc.add_sentence(_person_pieces(lang, name, g, [(f, values[f]) for f in facts]))
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
    statement = _Doc()
    statement.add_sentence(_person_pieces(lang, name, g, [(fact, value)]))
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

# "{per} works for {org}." per language (gendered where the verb agrees) and organisations whose names
# need no inflection after the template's preposition.
ORG_SENTENCES = {
    "en": (both("{per} works for {org}."),
           ("Google", "Microsoft", "Siemens", "Unilever", "Barclays", "Tesco", "Oxfam", "Vodafone")),
    "de": (both("{per} arbeitet bei {org}."),
           ("Siemens", "Bosch", "Lufthansa", "Adidas", "Porsche", "Allianz", "SAP", "Google")),
    "es": (both("{per} trabaja para {org}."),
           ("Telefónica", "Iberdrola", "Santander", "Repsol", "Inditex", "Mercadona", "Google", "Seat")),
    "cs": (both("{per} pracuje ve firmě {org}."),
           ("Škoda Auto", "Avast", "Kofola", "ČEZ", "Tatra", "Budvar", "Google", "Siemens")),
    "sk": (both("{per} pracuje vo firme {org}."),
           ("ESET", "Slovnaft", "Tatravagónka", "Kofola", "Orange", "Matador", "Google", "Siemens")),
    "te": (gen("{per} {org} సంస్థలో పనిచేస్తుంది.", "{per} {org} సంస్థలో పనిచేస్తాడు."),
           ("ఇన్ఫోసిస్", "విప్రో", "టాటా మోటార్స్", "గూగుల్", "మైక్రోసాఫ్ట్", "ఇస్రో", "రిలయన్స్", "ఎయిర్ ఇండియా")),
}
_PUNCT = ".,?!"


def _entity_part(phrase: str) -> tuple[int, str]:
    """(offset, text) of the name inside a place phrase: leading lower-case words ("in the", "v", "na") are
    prepositions and articles; Telugu has no case, and its suffixed token is the entity, as in WikiANN."""
    words = phrase.split(" ")
    k = 0
    while k < len(words) - 1 and words[k] == words[k].lower() and words[k] != words[k].upper():
        k += 1
    rest = " ".join(words[k:])
    return len(phrase) - len(rest), rest


def _tokens_and_tags(text: str, entities: list[tuple[int, int, str]]) -> tuple[list[str], list[int]]:
    """Whitespace tokens with trailing punctuation split off, tagged from character spans."""
    tokens, starts = [], []
    for match in re.finditer(r"\S+", text):
        word, start = match.group(), match.start()
        core = word.rstrip(_PUNCT)
        if core:
            tokens.append(core)
            starts.append(start)
        for i, ch in enumerate(word[len(core):]):
            tokens.append(ch)
            starts.append(start + len(core) + i)
    tags = [0] * len(tokens)
    for begin, end, kind in entities:
        inside = [i for i, s in enumerate(starts) if begin <= s < end]
        assert inside and text[starts[inside[0]]:].startswith(tokens[inside[0]]), (text, begin, end)
        for j, i in enumerate(inside):
            tags[i] = NER_TAGS.index(("B-" if j == 0 else "I-") + kind)
    return tokens, tags


def _ner_sentence(lang: Language, rng: random.Random, bags: dict, names: _Bag) -> tuple[str, list]:
    """One sentence and its (start, end, type) entities; about one in eight has none."""
    kind = rng.choices(("person", "org", "city", "feature", "none"), weights=(4, 2, 1, 1, 1))[0]
    name, g = names.draw()
    if rng.random() < 0.5:  # full name
        k = rng.randrange(len(lang.surnames))
        name = f"{name} {lang.surnames[k][0 if g == 'f' else 1]}"
    if kind == "org":
        templates, orgs = ORG_SENTENCES[lang.code]
        org = rng.choice(orgs)
        pre, rest = templates[g].split("{per}")
        mid, post = rest.split("{org}")
        text = _cap(pre) + name + mid + org + post
        return text, [(len(pre), len(pre) + len(name), "PER"), (len(pre + name + mid), len(pre + name + mid + org), "ORG")]
    if kind in ("city", "feature"):
        city = rng.choice(lang.cities)
        if kind == "city":
            template = rng.choice((lang.city_intro, lang.city_beautiful))
            doc = _Doc()
            offsets = doc.add_sentence(_city_pieces(template, city, tag="city"))
            entities = [(offsets["city"], offsets["city"] + len(city.nom), "LOC")]
            if "{region}" in template:
                at = doc.text.index(city.region, offsets["city"] + len(city.nom))
                skip, region = _entity_part(city.region)
                entities.append((at + skip, at + skip + len(region), "LOC"))
            return doc.text, entities
        doc = _Doc()
        doc.add_sentence(_city_pieces(lang.city_feature, city, feature=rng.choice(lang.features)))
        skip, place = _entity_part(city.loc)
        at = doc.text.lower().index(city.loc.lower())
        return doc.text, [(at + skip, at + skip + len(place), "LOC")]
    facts = rng.sample([f for f in FACTS if kind == "person" or f != "city"], rng.randint(1, 2))
    if kind == "person" and "city" not in facts and rng.random() < 0.5:
        facts[0] = "city"
    subject = name if kind == "person" else lang.pronoun[g]
    doc = _Doc()
    offsets = doc.add_sentence(_person_pieces(lang, subject, g, [(f, bags[f].draw()) for f in facts], tag_prefix=("x",)))
    entities = [(0, len(name), "PER")] if kind == "person" else []
    if ("x", "city") in offsets:
        at = offsets[("x", "city")]
        loc = doc.text[at:at + len(next(v for v in lang.values("city") if doc.text.startswith(v.text_m, at)).text_m)]
        skip, place = _entity_part(loc)
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
            tokens, tags = _tokens_and_tags(text, entities)
            spans = [f"{kind}: {text[b:e]}" for b, e, kind in entities]
            rows.append({"tokens": tokens, "ner_tags": tags, "langs": [lang.code] * len(tokens), "spans": spans})
        splits[split] = rows
    return splits


# ---------------------------------------------------------------------------
# Natural language inference (XNLI schema: premise, hypothesis, label)
# ---------------------------------------------------------------------------

NLI_LABELS = ("entailment", "neutral", "contradiction")  # XNLI's label ids


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
    premise = _Doc()
    premise.add_sentence(_person_pieces(lang, name, g, [(f, values[f]) for f in facts]))
    if label == 1:
        fact = rng.choice([f for f in FACTS if f not in facts])
        value, denied = rng.choice(lang.values(fact)), rng.random() < 0.5
    else:
        fact = rng.choice(facts)
        value, denied = values[fact], label == 2
    hypothesis = _Doc()
    if denied:
        pre, post = lang.negated[fact][g].split("{v}")
        hypothesis.add_sentence([(f"{name} {pre}", None), (value.text(g), None), (f"{post}.", None)])
    else:
        hypothesis.add_sentence(_person_pieces(lang, name, g, [(fact, value)]))
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
    doc = _Doc()
    name, g = rng.choice(lang.names())
    if checkworthy:
        if rng.random() < 0.2:
            doc.add_sentence(_city_pieces(lang.city_intro, rng.choice(lang.cities)))
            return doc.text
        k = rng.randrange(len(lang.surnames))
        full = f"{name} {lang.surnames[k][0 if g == 'f' else 1]}"
        facts = rng.sample(VERIFIABLE_FACTS, rng.randint(1, 2))
        doc.add_sentence(_person_pieces(lang, full, g, [(f, rng.choice(lang.values(f))) for f in facts]))
        return doc.text
    style = rng.choices(("preference", "beautiful", "question"), weights=(3, 1, 1))[0]
    if style == "beautiful":
        doc.add_sentence(_city_pieces(lang.city_beautiful, rng.choice(lang.cities)))
        return doc.text
    if style == "question":
        return lang.questions[rng.choice(FACTS)][g].format(name=name)
    subject = rng.choice((name, lang.pronoun[g]))
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


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

DEFAULT_OUT = Path(__file__).resolve().parent / "data"


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    _write_gzip(path, "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows))


def _write_gzip(path: Path, text: str) -> None:
    # Gzipped (datasets reads .jsonl.gz / .csv.gz as they are): plain text would be 3x larger, mostly 3-byte
    # Telugu characters. mtime=0 and no file name in the header keep the bytes reproducible.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fh:
        fh.write(text.encode("utf-8"))


def _write_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_gzip(path, buffer.getvalue())


def write_all(out: Path = DEFAULT_OUT) -> list[Path]:
    out = Path(out)
    written = []
    for code, lang in LANGUAGES.items():
        path = out / code / "wiki.jsonl.gz"
        _write_jsonl(path, make_wiki(lang))
        written.append(path)
        for task, make in MAKERS.items():
            ext = "csv" if task == "checkworthy" else "jsonl"
            for split, rows in make(lang).items():
                path = out / code / task / f"{split}.{ext}.gz"
                (_write_jsonl if ext == "jsonl" else _write_csv)(path, rows)
                written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)
    paths = write_all(args.out)
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files, {total} bytes, under {args.out}")


if __name__ == "__main__":
    main()
