"""MovieLens folders, as GroupLens ships them, into a ``Dataset``.

Two layouts are recognised:

* 100K (``ml-100k``): ``u.data`` (user, item, rating, Unix time; tab-separated, no header),
  ``u.item`` (Latin-1, 24 ``|``-separated fields: id, title, release date, video release
  date, IMDb URL and 19 genre flags) and optionally ``u.genre`` (``name|index``).
* latest / 25M / 32M: ``movies.csv`` (movieId, title, genres joined by ``|``), ``ratings.csv``
  (userId, movieId, rating, timestamp), optionally ``tags.csv`` (userId, movieId, tag,
  timestamp), whose tags become each movie's ``tags`` attribute, most used first.

Titles lose their trailing year ("Toy Story (1995)" -> "Toy Story", year 1995); 100K falls back
on the release date for the year. Ids stay the strings in the files. Every rating becomes an
event "rating" of weight 1.0; ratings files are read column-wise (``ratings_file``).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import NamedTuple

from tastebud.errors import InvalidInputError

from .model import Catalog, Dataset, InteractionLog, LoadReport
from .ratings_file import read_ratings_log
from .tabular import open_table
from .template import Template

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
TEXT_TEMPLATE = "{title} ({year}). Genres: {genres}. Tags: {tags}."
TAGS_PER_MOVIE = 10
NO_GENRES = "(no genres listed)"
_TITLE_YEAR = re.compile(r"^(?P<title>.*\S)\s*\((?P<year>\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")
_DATE_YEAR = re.compile(r"(\d{4})\s*$")


def load_movielens(folder: Path | str) -> Dataset:
    """Load whichever MovieLens layout ``folder`` holds; an error lists what was looked for."""
    folder = Path(folder)
    if (folder / "u.data").is_file() and (folder / "u.item").is_file():
        return _load_100k(folder)
    if (folder / "movies.csv").is_file() and (folder / "ratings.csv").is_file():
        return _load_latest(folder)
    raise InvalidInputError(
        f"{folder}: not a MovieLens folder: looked for u.data and u.item (100K) or"
        " movies.csv and ratings.csv (latest, 25M, 32M)"
    )


def split_title(title: str) -> tuple[str, int | None]:
    """``"Toy Story (1995)"`` -> ``("Toy Story", 1995)``; a title without a year is kept whole."""
    match = _TITLE_YEAR.match(title)
    if match is None:
        return title.strip(), None
    return match["title"], int(match["year"])


class _Movie(NamedTuple):
    item_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]
    tags: tuple[str, ...]
    location: str


def _load_100k(folder: Path) -> Dataset:
    genre_names = _read_100k_genres(folder / "u.genre")
    path = folder / "u.item"
    movies: list[_Movie] = []
    with path.open(encoding="latin-1", newline="") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("|")
            if len(fields) != 5 + len(genre_names):
                raise InvalidInputError(
                    f"{path}, line {number}: has {len(fields)} fields, expected"
                    f" {5 + len(genre_names)} (id|title|release date|video date|URL|genre flags)"
                )
            title, year = split_title(fields[1])
            if year is None and (date := _DATE_YEAR.search(fields[2])):
                year = int(date[1])
            genres = tuple(
                g for g, flag in zip(genre_names, fields[5:], strict=True) if flag.strip() == "1"
            )
            movies.append(_Movie(fields[0].strip(), title, year, genres, (), f"line {number}"))
    catalog = _catalog(movies, path, with_tags=False)
    names = ["user_id", "item_id", "rating", "timestamp"]
    log = read_ratings_log(folder / "u.data", names, catalog.item_ids, delimiter="\t", header=False)
    return _dataset(catalog, log)


def _read_100k_genres(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        return ML100K_GENRES
    by_index: dict[int, str] = {}
    with path.open(encoding="latin-1") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            name, sep, index = line.strip().rpartition("|")
            if not sep or not index.isdigit():
                raise InvalidInputError(f"{path}, line {number}: expected name|index, got {line!r}")
            by_index[int(index)] = name
    if sorted(by_index) != list(range(len(by_index))):
        raise InvalidInputError(f"{path}: genre indexes are not 0..{len(by_index) - 1}")
    return tuple(by_index[i] for i in range(len(by_index)))


def _load_latest(folder: Path) -> Dataset:
    tags_path = folder / "tags.csv"
    tags, tag_locations = _read_tags(tags_path) if tags_path.is_file() else ({}, {})
    movies: list[_Movie] = []
    with open_table(folder / "movies.csv") as table:
        _check_columns(table.path, table.columns, ("movieId", "title", "genres"))
        for record in table.records:
            if record.problem:
                raise InvalidInputError(f"{table.path}, {record.location}: {record.problem}")
            movie = record.values["movieId"].strip()
            title, year = split_title(record.values["title"])
            genres = tuple(g for g in record.values["genres"].split("|") if g and g != NO_GENRES)
            top = tags.get(movie, ())
            movies.append(_Movie(movie, title, year, genres, top, record.location))
    catalog = _catalog(movies, table.path, with_tags=tags_path.is_file())
    known = set(catalog.item_ids)
    for movie, location in tag_locations.items():  # file order, so the first bad line is named
        if movie not in known:
            raise InvalidInputError(
                f"{tags_path}, {location}: unknown movieId {movie!r} (not in movies.csv)"
            )
    names = ["userId", "movieId", "rating", "timestamp"]
    log = read_ratings_log(
        folder / "ratings.csv", names, catalog.item_ids, delimiter=",", header=True
    )
    return _dataset(catalog, log)


def _read_tags(path: Path) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Each movie's most used tags (counted case-insensitively), and where its first tag is."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    spelling: dict[str, str] = {}  # the first spelling seen of each case-folded tag
    first: dict[str, str] = {}
    with open_table(path) as table:
        _check_columns(path, table.columns, ("movieId", "tag"))
        for record in table.records:
            if record.problem:
                raise InvalidInputError(f"{path}, {record.location}: {record.problem}")
            tag = " ".join(record.values["tag"].split())
            if tag:
                movie = record.values["movieId"].strip()
                key = tag.casefold()
                spelling.setdefault(key, tag)
                counts[movie][key] += 1
                first.setdefault(movie, record.location)
    top: dict[str, tuple[str, ...]] = {}
    for movie, counter in counts.items():
        ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:TAGS_PER_MOVIE]
        top[movie] = tuple(spelling[key] for key, _ in ranked)
    return top, first


def _check_columns(path: Path, found: tuple[str, ...], wanted: tuple[str, ...]) -> None:
    for name in wanted:
        if name not in found:
            raise InvalidInputError(
                f"{path}: missing column {name!r}; columns found: {', '.join(found)}"
            )


def _catalog(movies: list[_Movie], path: Path, *, with_tags: bool) -> Catalog:
    if not movies:
        raise InvalidInputError(f"{path}: the file has no movies")
    seen: dict[str, str] = {}
    for movie in movies:
        if not movie.item_id:
            raise InvalidInputError(f"{path}, {movie.location}: empty movie id")
        if movie.item_id in seen:
            raise InvalidInputError(
                f"{path}, {movie.location}: duplicate movie id {movie.item_id!r}"
                f" (first on {seen[movie.item_id]})"
            )
        seen[movie.item_id] = movie.location
    template = Template.parse(TEXT_TEMPLATE)
    attributes = {"genres": [m.genres for m in movies]}
    if with_tags:
        attributes["tags"] = [m.tags for m in movies]
    return Catalog(
        item_ids=[m.item_id for m in movies],
        titles=[m.title for m in movies],
        texts=[template.render(m._asdict()) for m in movies],
        years=[m.year for m in movies],
        attributes=attributes,
    )


def _dataset(catalog: Catalog, log: InteractionLog) -> Dataset:
    report = LoadReport(items_read=len(catalog), interactions_read=len(log))
    return Dataset(catalog=catalog, interactions=log, report=report)
