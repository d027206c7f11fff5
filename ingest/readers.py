"""Read a catalog and an interaction log from files, validated, into the ``model`` shapes.

Every bad input raises ``InvalidInputError`` naming the file and the line (or Parquet row) and
the value. Structural problems always fail: an unreadable or empty file, a missing column, a
duplicate or empty item id, a bad catalog row. Row-level problems in the interactions file
(a malformed row, empty ids, an item not in the catalog, a bad timestamp, weight or rating)
fail too, unless ``[interactions].on_error = "skip"``: then they are counted per reason and
the row is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from tastebud.errors import InvalidInputError

from . import cells
from .config import (
    DEFAULT_FILTER_ATTRIBUTES,
    DEFAULT_TEXT_TEMPLATE,
    DEFAULT_YEAR_COLUMN,
    DatasetConfig,
    ItemsConfig,
)
from .model import Catalog, Dataset, InteractionLog, LoadReport, sorted_interaction_log
from .tabular import Table, open_table
from .template import Template

logger = logging.getLogger(__name__)


class InteractionsRead(NamedTuple):
    """``read_interactions``' result: the kept rows, skips per reason, data rows in the file."""

    log: InteractionLog
    skipped: dict[str, int]
    rows_read: int


class _RowError(Exception):
    """A row-level problem: ``reason`` is the skip-count key, ``args[0]`` the message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def load_dataset(
    items_path: Path | str, interactions_path: Path | str, config: DatasetConfig | None = None
) -> Dataset:
    """Read both files; every logged item is then guaranteed to be in the catalog."""
    config = config or DatasetConfig()
    catalog = read_catalog(items_path, config)
    log, skipped, rows_read = read_interactions(interactions_path, catalog, config)
    report = LoadReport(items_read=len(catalog), interactions_read=rows_read, skipped=skipped)
    logger.info("loaded %s", report.summary())
    return Dataset(catalog=catalog, interactions=log, report=report)


def _require(table: Table, name: str, key: str) -> None:
    if name not in table.columns:
        raise InvalidInputError(
            f"{table.path}: missing column {name!r} (set {key} if it is named otherwise);"
            f" columns found: {', '.join(table.columns)}"
        )


def read_catalog(path: Path | str, config: DatasetConfig | None = None) -> Catalog:
    """Read the items file into a ``Catalog`` in file order; any bad row fails the load."""
    items = (config or DatasetConfig()).items
    with open_table(path, encoding=items.encoding) as table:
        layout = _ItemLayout.resolve(table, items)
        seen: dict[str, str] = {}
        ids: list[str] = []
        titles: list[str] = []
        texts: list[str] = []
        years: list[int | None] = []
        attributes: dict[str, list[tuple[str, ...]]] = {name: [] for name in layout.filters}
        for record in table.records:
            where = f"{table.path}, {record.location}"
            if record.problem:
                raise InvalidInputError(f"{where}: {record.problem}")
            item_id, title, year, text, values = layout.parse(record.values, where)
            if item_id in seen:
                raise InvalidInputError(
                    f"{where}: duplicate item id {item_id!r} (first on {seen[item_id]})"
                )
            seen[item_id] = record.location
            ids.append(item_id)
            titles.append(title)
            texts.append(text)
            years.append(year)
            for name, value in zip(layout.filters, values, strict=True):
                attributes[name].append(value)
    return Catalog(item_ids=ids, titles=titles, texts=texts, years=years, attributes=attributes)


@dataclass(frozen=True, slots=True)
class _ItemLayout:
    """The ``[items]`` settings resolved once against a file's header."""

    items: ItemsConfig
    year_column: str | None
    template: Template
    default_template: bool
    filters: tuple[str, ...]

    @classmethod
    def resolve(cls, table: Table, items: ItemsConfig) -> _ItemLayout:
        """Check every configured column; defaults adapt to the columns found instead."""
        _require(table, items.id_column, "[items].id_column")
        _require(table, items.title_column, "[items].title_column")
        if items.year_column is not None:
            _require(table, items.year_column, "[items].year_column")
            year_column: str | None = items.year_column
        else:
            year_column = DEFAULT_YEAR_COLUMN if DEFAULT_YEAR_COLUMN in table.columns else None
        if items.text_template is None:  # unchecked: its absent columns just render empty
            template = Template.parse(DEFAULT_TEXT_TEMPLATE)
        else:
            template = Template.parse(items.text_template)
            template.check_columns(table.columns, source=f"{table.path} ([items].text_template)")
        if items.filter_attributes is None:
            filters = tuple(n for n in DEFAULT_FILTER_ATTRIBUTES if n in table.columns)
        else:
            for name in items.filter_attributes:
                _require(table, name, "[items].filter_attributes")
            filters = items.filter_attributes
        return cls(items, year_column, template, items.text_template is None, filters)

    def parse(
        self, row: dict[str, Any], where: str
    ) -> tuple[str, str, int | None, str, list[tuple[str, ...]]]:
        """(id, title, year, text, filter values) of one row, or an error naming ``where``."""
        items = self.items
        item_id = cells.text(row.get(items.id_column))
        if not item_id:
            raise InvalidInputError(f"{where}: empty item id (column {items.id_column!r})")
        title = cells.text(row.get(items.title_column))
        if not title:
            raise InvalidInputError(f"{where}: empty title (column {items.title_column!r})")
        try:
            year = cells.year(row.get(self.year_column)) if self.year_column else None
        except ValueError as e:
            raise InvalidInputError(f"{where}: {e} (column {self.year_column!r})") from None
        fields = {name: self._value(row, name) for name in self.template.fields}
        if self.year_column:
            fields[self.year_column] = year
        if self.default_template:  # its {title} and {year} mean the configured columns
            fields.update(title=title, year=year)
        values = [self._filter_value(row, name) for name in self.filters]
        return item_id, title, year, self.template.render(fields), values

    def _filter_value(self, row: dict[str, Any], name: str) -> tuple[str, ...]:
        value = self._value(row, name)
        if isinstance(value, tuple):
            return value
        text = cells.text(value)
        return (text,) if text else ()

    def _value(self, row: dict[str, Any], name: str) -> Any:
        """A multi-valued column (or a list cell) as a tuple of values, any other cell as is."""
        value = row.get(name)
        if name in self.items.multi_valued or isinstance(value, list | tuple):
            return cells.values(value, self.items.separator)
        return value


def read_interactions(
    path: Path | str, catalog: Catalog | Set[str], config: DatasetConfig | None = None
) -> InteractionsRead:
    """Read the interactions file against the catalog (or a set of its item ids)."""
    settings = (config or DatasetConfig()).interactions
    known = set(catalog.item_ids) if isinstance(catalog, Catalog) else catalog
    skip = settings.on_error == "skip"
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
    skipped: dict[str, int] = {}
    rows_read = 0
    with open_table(path, encoding=settings.encoding) as table:
        names = (settings.user_column, settings.item_column, settings.timestamp_column)
        for name, key in zip(
            names, ("user_column", "item_column", "timestamp_column"), strict=True
        ):
            _require(table, name, f"[interactions].{key}")
        for record in table.records:
            rows_read += 1
            try:
                row = _interaction(record.values, record.problem, names, known)
            except _RowError as e:
                if not skip:
                    raise InvalidInputError(f"{table.path}, {record.location}: {e}") from None
                if e.reason not in skipped:
                    logger.warning("%s, %s: skipped: %s", table.path, record.location, e)
                skipped[e.reason] = skipped.get(e.reason, 0) + 1
                continue
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        if not columns[0]:
            reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
            raise InvalidInputError(
                f"{table.path}: no usable rows; all {rows_read} skipped ({reasons})"
            )
    if skipped:
        logger.warning("%s: skipped %d of %d rows", path, sum(skipped.values()), rows_read)
    return InteractionsRead(sorted_interaction_log(*columns), skipped, rows_read)


def _interaction(
    row: dict[str, Any], problem: str | None, names: tuple[str, str, str], known: Set[str]
) -> tuple[str, str, float, float, str, float]:
    """(user, item, timestamp, weight, event, rating) of one row, or ``_RowError``."""
    if problem:
        raise _RowError("malformed row", problem)
    user_column, item_column, time_column = names
    user = cells.text(row.get(user_column))
    if not user:
        raise _RowError("empty user id", f"empty user id (column {user_column!r})")
    item = cells.text(row.get(item_column))
    if not item:
        raise _RowError("empty item id", f"empty item id (column {item_column!r})")
    if item not in known:
        raise _RowError("unknown item id", f"unknown item id {item!r} (not in the catalog)")
    try:
        when = cells.timestamp(row.get(time_column))
    except ValueError as e:
        raise _RowError("bad timestamp", f"{e} (column {time_column!r})") from None
    try:
        rating = cells.number(row.get("rating"), "rating")
    except ValueError as e:
        raise _RowError("bad rating", str(e)) from None
    try:
        weight = cells.number(row.get("weight"), "weight")
    except ValueError as e:
        raise _RowError("bad weight", str(e)) from None
    if weight is not None and weight < 0:
        raise _RowError("bad weight", f"weight {weight:g} is negative")
    weight = 1.0 if weight is None else weight
    rating = float("nan") if rating is None else rating
    return user, item, when, weight, cells.text(row.get("event")), rating
