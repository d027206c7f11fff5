"""Item text from a template such as ``"{title} ({year}). Genres: {genres}. {description}"``.

The text is what gets embedded, so a missing value must not leave debris such as "()" or
"Genres: ." that the encoder would read as content. Placeholders are column names (no format
specs or conversions; ``{{`` and ``}}`` are literal braces). A value renders as its text; a
multi-valued one (a tuple or list) as its values joined with ", "; ``None`` or "" as empty.

Tidy-up rules, applied only around empty values and to the template's own text, never inside
a value:

1. Brackets holding nothing but empty values go, with the space before them:
   ``"Toy Story ({year})"`` -> ``"Toy Story"``.
2. A label whose value is empty goes: the template text from the previous sentence end
   (``. ; ! ?``), filled value or start of text up to a colon before the empty value:
   ``"Toy Story. Genres: {genres}."`` -> ``"Toy Story."``.
3. In the template text left over, a run of punctuation marks collapses to its strongest
   (``. ! ?`` over ``;`` over ``:`` over ``,``): ``"Toy Story. ."`` -> ``"Toy Story."``;
   spaces before punctuation or a closing bracket go.
4. The text loses leading punctuation and trailing commas, semicolons and colons, and every
   run of whitespace (newlines included) becomes one space.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tastebud.errors import InvalidInputError

Value = str | int | float | Sequence[str] | None
"""What a placeholder may be bound to; ``render`` formats each as described above."""

_EMPTY, _OPEN, _CLOSE = "\x00", "\x01", "\x02"
_MARKERS = re.compile("[\x00-\x02]")
_EMPTY_BRACKETS = re.compile(r"\s*(?:\(\s*(?:\x00\s*)+\)|\[\s*(?:\x00\s*)+\])")
_EMPTY_LABEL = re.compile(r"(?:^|(?<=[.;!?\x02]))[^\x00\x01\x02.;!?]*?:\s*\x00")
_VALUE = re.compile(r"(\x01[^\x02]*\x02)")
_PUNCT_RUN = re.compile(r"[.,;:!?](?:\s*[.,;:!?])+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+(?=[.,;:!?)\]])")
_STRENGTH = {".": 3, "!": 3, "?": 3, ";": 2, ":": 1, ",": 0}


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text alternating with placeholder names."""

    text: str
    parts: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        """Parse once; a malformed template or placeholder raises ``InvalidInputError``."""
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as e:
            raise InvalidInputError(f"malformed template {text!r}: {e}") from None
        parts: list[tuple[str, str | None]] = []
        for literal, name, spec, conversion in parsed:
            if name is not None:
                name = name.strip()
                if not name or any(c in name for c in ".[]"):
                    raise InvalidInputError(
                        f"template {text!r}: placeholder {{{name}}} must be a plain column name"
                    )
                if spec or conversion:
                    raise InvalidInputError(
                        f"template {text!r}: placeholder {{{name}}} has a format spec or"
                        " conversion; only plain {column} placeholders are supported"
                    )
            parts.append((literal, name))
        return cls(text=text, parts=tuple(parts))

    @property
    def fields(self) -> tuple[str, ...]:
        """Placeholder names in order of first appearance."""
        return tuple(dict.fromkeys(name for _, name in self.parts if name is not None))

    def check_columns(self, columns: Iterable[str], *, source: str) -> None:
        """Fail once, before any row, if a placeholder names no column of ``source``."""
        known = set(columns)
        for name in self.fields:
            if name not in known:
                raise InvalidInputError(
                    f"{source}: text_template placeholder {{{name}}} is not a column"
                    f" (columns: {', '.join(sorted(known))})"
                )

    def render(self, row: Mapping[str, Value]) -> str:
        """Fill the placeholders from ``row`` (absent keys are empty) and tidy the result."""
        pieces: list[str] = []
        for literal, name in self.parts:
            pieces.append(literal)
            if name is not None:
                value = format_value(row.get(name))
                pieces.append(f"{_OPEN}{value}{_CLOSE}" if value else _EMPTY)
        return _tidy("".join(pieces))


def render_text(template: str, row: Mapping[str, Value]) -> str:
    """One-off rendering; readers parse the template once with ``Template.parse`` instead."""
    return Template.parse(template).render(row)


def format_value(value: Value) -> str:
    """A value as template text: sequences joined with ", ", integral floats as integers."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _MARKERS.sub("", value).strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return ", ".join(v for v in (format_value(x) for x in value) if v)


def _tidy(marked: str) -> str:
    marked = _EMPTY_BRACKETS.sub("", marked)
    marked = _EMPTY_LABEL.sub("", marked)
    parts = _VALUE.split(marked.replace(_EMPTY, ""))
    for i in range(0, len(parts), 2):  # even positions are template text, odd ones values
        literal = _PUNCT_RUN.sub(_strongest, parts[i])
        parts[i] = _SPACE_BEFORE_PUNCT.sub("", literal)
    for i in range(1, len(parts), 2):
        parts[i] = parts[i][1:-1]
    parts[0] = parts[0].lstrip(" \t\r\n.,;:!?")
    parts[-1] = parts[-1].rstrip(" \t\r\n,;:")
    return " ".join("".join(parts).split())


def _strongest(match: re.Match[str]) -> str:
    marks = [c for c in match.group(0) if c in _STRENGTH]
    return max(marks, key=lambda c: _STRENGTH[c])
