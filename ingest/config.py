"""How to read a data set: column names, the text template, filters, and what to do with bad rows.

Loaded from TOML (``DatasetConfig.from_toml``) or a plain dict; every key has a default, so no
file is needed for files that use the default column names. The file has two tables::

    [items]
    id_column = "item_id"
    title_column = "title"
    year_column = "year"
    text_template = "{title} ({year}). Genres: {genres}. {description}"
    filter_attributes = ["genres", "language"]
    multi_valued = ["genres", "tags"]
    separator = "|"
    encoding = "utf-8"

    [interactions]
    user_column = "user_id"
    item_column = "item_id"
    timestamp_column = "timestamp"
    on_error = "fail"        # or "skip": count bad rows per reason and carry on
    encoding = "utf-8"

Explicit settings are checked against the file's header when it is read; the defaults of
``year_column``, ``text_template`` and ``filter_attributes`` adapt to the columns found instead
(``None`` here means "the default, for whichever of its columns exist").
"""

from __future__ import annotations

import codecs
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tastebud.errors import InvalidInputError

from .template import Template

DEFAULT_YEAR_COLUMN = "year"
DEFAULT_TEXT_TEMPLATE = "{title} ({year}). Genres: {genres}. {description}"
DEFAULT_FILTER_ATTRIBUTES = ("genres", "language")
ON_ERROR_CHOICES = ("fail", "skip")
_LIST_KEYS = frozenset({"filter_attributes", "multi_valued"})


@dataclass(frozen=True, slots=True)
class ItemsConfig:
    """The ``[items]`` table: how to turn the items file into a ``Catalog``."""

    id_column: str = "item_id"
    title_column: str = "title"
    year_column: str | None = None
    text_template: str | None = None
    filter_attributes: tuple[str, ...] | None = None
    multi_valued: tuple[str, ...] = ("genres", "tags")
    separator: str = "|"
    encoding: str = "utf-8"


@dataclass(frozen=True, slots=True)
class InteractionsConfig:
    """The ``[interactions]`` table: required column names and the bad-row policy."""

    user_column: str = "user_id"
    item_column: str = "item_id"
    timestamp_column: str = "timestamp"
    on_error: str = "fail"
    encoding: str = "utf-8"


@dataclass(frozen=True, slots=True)
class DatasetConfig:
    """A whole data set's reading configuration; ``DatasetConfig()`` is the all-defaults one."""

    items: ItemsConfig = field(default_factory=ItemsConfig)
    interactions: InteractionsConfig = field(default_factory=InteractionsConfig)

    @classmethod
    def from_toml(cls, path: Path | str) -> DatasetConfig:
        """Read and validate a TOML file; syntax errors keep tomllib's line and column."""
        path = Path(path)
        try:
            with path.open("rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise InvalidInputError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as e:
            raise InvalidInputError(f"{path}: not valid TOML: {e}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<config>") -> DatasetConfig:
        """Validate a parsed config; every message names ``source`` and the offending key."""
        _reject_unknown(data, {"items", "interactions"}, source, "")
        tables: dict[str, dict[str, Any]] = {}
        for name in ("items", "interactions"):
            table = data.get(name, {})
            if not isinstance(table, Mapping):
                raise InvalidInputError(f"{source}: [{name}] must be a table, got {table!r}")
            tables[name] = dict(table)
        items = _build(ItemsConfig, tables["items"], source, "items")
        interactions = _build(InteractionsConfig, tables["interactions"], source, "interactions")
        _check_items(items, source)
        _check_interactions(interactions, source)
        return cls(items=items, interactions=interactions)


def _reject_unknown(data: Mapping[str, Any], known: set[str], source: str, table: str) -> None:
    where = f"[{table}]." if table else ""
    for key in data:
        if key not in known:
            allowed = ", ".join(sorted(known))
            raise InvalidInputError(f"{source}: unknown key {where}{key} (allowed: {allowed})")


def _build(cls: type, table: dict[str, Any], source: str, name: str) -> Any:
    """Type-check each key of ``table`` against the dataclass ``cls`` and construct it."""
    specs = {f.name: f for f in fields(cls)}
    _reject_unknown(table, set(specs), source, name)
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in _LIST_KEYS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidInputError(f"{source}: [{name}].{key} must be a list of strings")
            values[key] = tuple(value)
        elif not isinstance(value, str):
            raise InvalidInputError(f"{source}: [{name}].{key} must be a string, got {value!r}")
        else:
            values[key] = value
    return cls(**values)


def _check_encoding(encoding: str, source: str, table: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InvalidInputError(
            f"{source}: [{table}].encoding: unknown encoding {encoding!r}"
        ) from None


def _check_items(items: ItemsConfig, source: str) -> None:
    for key in ("id_column", "title_column", "year_column", "separator"):
        if getattr(items, key) == "":
            raise InvalidInputError(f"{source}: [items].{key} must not be empty")
    if items.text_template is not None:
        try:
            Template.parse(items.text_template)
        except InvalidInputError as e:
            raise InvalidInputError(f"{source}: [items].text_template: {e}") from None
    year = items.year_column or DEFAULT_YEAR_COLUMN
    for name in items.filter_attributes or ():
        if name in (items.id_column, items.title_column, year):
            raise InvalidInputError(
                f"{source}: [items].filter_attributes: {name!r} is the id, title or year column"
                " (years are always range-filterable; ids and titles are not attributes)"
            )
    _check_encoding(items.encoding, source, "items")


def _check_interactions(interactions: InteractionsConfig, source: str) -> None:
    if interactions.on_error not in ON_ERROR_CHOICES:
        raise InvalidInputError(
            f"{source}: [interactions].on_error must be one of {', '.join(ON_ERROR_CHOICES)},"
            f" got {interactions.on_error!r}"
        )
    for key in ("user_column", "item_column", "timestamp_column"):
        if getattr(interactions, key) == "":
            raise InvalidInputError(f"{source}: [interactions].{key} must not be empty")
    _check_encoding(interactions.encoding, source, "interactions")
