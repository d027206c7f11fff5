"""The demo's fictional catalogue: films and albums with natural, unique titles.

Each genre of ``demo_vocab.toml`` brings its kind ("movie" or "album"), title and description
templates, and tags. Titles are drawn without replacement from every combination of a genre's
templates, a random template at a time, so they stay unique; only when a genre has used every
combination does a sequel marker appear ("Orbit II", "Blue Moods Vol. 2").
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

ITEM_COLUMNS = ("item_id", "kind", "title", "year", "genres", "language", "tags", "description")
SECONDARY_GENRE_SHARE = 0.35
FIRST_YEAR = 1960
LAST_YEAR = 2026

_SLOT = re.compile(r"\{(\w+)\}")
_ARTICLE = re.compile(r"\b([Aa]) (?=[AEIOUaeiou])")
_ROMAN = (
    (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"),
    (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DemoGenre:
    """One genre's vocabulary; ``instrumental`` is the share of its albums without lyrics."""

    name: str
    kind: str
    instrumental: float
    vocab: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DemoVocabulary:
    """The genres in file order, and the language odds of each kind."""

    genres: tuple[DemoGenre, ...]
    languages: dict[str, dict[str, float]]


def load_vocabulary() -> DemoVocabulary:
    """Read the packaged ``demo_vocab.toml``."""
    text = resources.files(__package__).joinpath("demo_vocab.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    genres = tuple(
        DemoGenre(name, table["kind"], float(table.get("instrumental", 0.0)), table)
        for name, table in data["genres"].items()
    )
    return DemoVocabulary(genres=genres, languages=data["languages"])


def generate_items(
    rng: np.random.Generator, vocabulary: DemoVocabulary, main: npt.NDArray[np.int64]
) -> list[dict[str, str]]:
    """One row per item; ``main[i]`` is the index of item i's main genre."""
    genres = vocabulary.genres
    span = LAST_YEAR - FIRST_YEAR + 1
    years = FIRST_YEAR + np.floor(span * rng.beta(3.0, 1.5, size=len(main))).astype(int)
    language_odds = {
        kind: (list(odds), np.array(list(odds.values())) / sum(odds.values()))
        for kind, odds in vocabulary.languages.items()
    }
    queues = [_title_queues(rng, genre) for genre in genres]
    used: list[list[str]] = [[] for _ in genres]
    seen: dict[str, int] = {}  # case-folded title -> how many items carry it or a sequel of it
    rows = []
    for index, g in enumerate(main):
        genre = genres[g]
        labels = [genre.name]
        if rng.random() < SECONDARY_GENRE_SHARE:
            siblings = [o.name for o in genres if o.kind == genre.kind and o is not genre]
            labels.append(_pick(rng, siblings))
        tags = rng.choice(genre.vocab["tags"], size=int(rng.integers(2, 5)), replace=False)
        if genre.kind == "album" and rng.random() < genre.instrumental:
            language = "Instrumental"
        else:
            names, odds = language_odds[genre.kind]
            language = names[int(rng.choice(len(names), p=odds))]
        title = _next_title(rng, queues[g], used[g], genre.kind, seen)
        description = _fill(rng, _pick(rng, genre.vocab["descriptions"]), genre.vocab)
        rows.append(
            {
                "item_id": str(index + 1),
                "kind": genre.kind,
                "title": title,
                "year": str(years[index]),
                "genres": "|".join(labels),
                "language": language,
                "tags": "|".join(str(t) for t in tags),
                "description": description,
            }
        )
    return rows


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _fill(rng: np.random.Generator, template: str, vocab: dict[str, Any]) -> str:
    return _finish(_SLOT.sub(lambda m: _pick(rng, vocab[m[1]]), template))


def _finish(text: str) -> str:
    """Capitalise the first letter and fix "a" before a vowel ("A Autumn" -> "An Autumn")."""
    return _ARTICLE.sub(r"\1n ", text[:1].upper() + text[1:])


def _title_queues(rng: np.random.Generator, genre: DemoGenre) -> list[list[str]]:
    """Every title a genre's templates can make, one shuffled queue per template."""
    queues = []
    for template in genre.vocab["titles"]:
        slots = list(dict.fromkeys(_SLOT.findall(template)))
        titles = [
            _finish(template.format_map(dict(zip(slots, combo, strict=True))))
            for combo in itertools.product(*(genre.vocab[slot] for slot in slots))
        ]
        queues.append([titles[i] for i in rng.permutation(len(titles))])
    return queues


def _next_title(
    rng: np.random.Generator,
    queues: list[list[str]],
    used: list[str],
    kind: str,
    seen: dict[str, int],
) -> str:
    """A title not used yet: from a random template of the genre, a sequel once all are used."""
    while any(queues):
        queue = queues[int(rng.integers(len(queues)))]
        if queue and (title := queue.pop()).casefold() not in seen:
            seen[title.casefold()] = 1
            used.append(title)
            return title
    base = _pick(rng, used)  # every combination is taken: "Orbit II", "Blue Moods Vol. 2"
    count = seen[base.casefold()] = seen[base.casefold()] + 1
    return f"{base} Vol. {count}" if kind == "album" else f"{base} {_roman(count)}"


def _roman(n: int) -> str:
    out = []
    for value, numeral in _ROMAN:
        count, n = divmod(n, value)
        out.append(numeral * count)
    return "".join(out)
