"""Raw cell values (strings from CSV, typed values from JSONL/Parquet) to typed fields.

Each parser raises ``ValueError`` with a short reason; the readers add the file and line.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any


def text(value: Any) -> str:
    """A cell as stripped text; ``None`` is "", an integral float prints as an integer ("3")."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ", ".join(t for t in (text(v) for v in value) if t)
    return str(value).strip()


def values(value: Any, separator: str) -> tuple[str, ...]:
    """A multi-valued cell: a list as is, text split on ``separator``; no blanks, no repeats."""
    if value is None:
        return ()
    parts = value if isinstance(value, list | tuple) else str(value).split(separator)
    return tuple(dict.fromkeys(t for t in (text(p) for p in parts) if t))


def year(value: Any) -> int | None:
    """A release year, ``None`` when empty; "1995" and 1995.0 are fine, "1995a" is not."""
    raw = text(value)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"year {raw!r} is not a whole number") from None


def number(value: Any, what: str) -> float | None:
    """A finite number, ``None`` when empty; NaN, infinities and non-numbers are errors."""
    if isinstance(value, bool):
        raise ValueError(f"{what} {value!r} is not a number")
    if isinstance(value, int | float):
        result = float(value)
    else:
        raw = text(value)
        if not raw:
            return None
        try:
            result = float(raw)
        except ValueError:
            raise ValueError(f"{what} {raw!r} is not a number") from None
    if not math.isfinite(result):
        raise ValueError(f"{what} {value!r} is not finite")
    return result


def timestamp(value: Any) -> float:
    """Seconds since the Unix epoch from a number, a numeric string or ISO-8601 text.

    Naive ISO times (no offset) are taken as UTC; a plain date is midnight UTC. Numbers win
    over ISO, so "2024" means 2024 seconds after the epoch, not the year 2024.
    """
    if isinstance(value, datetime | date):
        return _epoch(value)
    raw = text(value)
    if not raw:
        raise ValueError("timestamp is empty")
    try:
        seconds = number(value, "timestamp")
    except ValueError:
        seconds = None
    if seconds is not None:
        return seconds
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f"timestamp {raw!r} is neither Unix seconds nor ISO-8601 (e.g. 2024-05-01T12:00:00Z)"
        ) from None
    return _epoch(parsed)


def _epoch(value: datetime | date) -> float:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
