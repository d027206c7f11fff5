"""The words the site uses for its catalog: movies are "watched", albums "listened to".

One small configuration, from ``--label watched|listened`` or a TOML file (``--labels``)::

    preset = "listened"        # start from these words, then override any of them:
    verb = "listened to"       # reads after "Because you"
    action = "Mark listened"   # the button on each card
    done = "Listened"          # what the page says after the button
    event = "play"             # the interaction event the button records
    noun = "album"             # one item ("Search albums")
    nouns = "albums"
    [kinds]                    # optional: a preset per item kind (the catalog's "kind" attribute)
    movie = "watched"
    album = "listened"

A card whose item has a ``kind`` listed under ``[kinds]`` uses that kind's preset words for
its button; everything else uses the top-level words.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping


@dataclass(frozen=True, slots=True)
class Words:
    verb: str  # "watched" / "listened to": reads after "Because you"
    action: str  # the card's button
    done: str  # shown after the button was pressed ("Watched")
    event: str  # the RecordInteractions event of the button
    noun: str
    nouns: str


PRESETS: Mapping[str, Words] = {
    "watched": Words(verb="watched", action="Mark watched", done="Watched", event="view", noun="title",
                     nouns="titles"),
    "listened": Words(verb="listened to", action="Mark listened", done="Listened", event="play", noun="album",
                      nouns="albums"),
}
KEYS = ("verb", "action", "done", "event", "noun", "nouns")


@dataclass(frozen=True, slots=True)
class Labels:
    words: Words = PRESETS["watched"]
    kinds: Mapping[str, Words] = field(default_factory=dict)

    def for_kind(self, kind: str) -> Words:
        return self.kinds.get(kind, self.words)

    @classmethod
    def preset(cls, name: str) -> "Labels":
        if name not in PRESETS:
            raise ValueError(f"--label must be one of {', '.join(PRESETS)}, got {name!r}")
        return cls(PRESETS[name])

    @classmethod
    def from_toml(cls, path: Path, base: str = "watched") -> "Labels":
        with open(path, "rb") as f:
            data = tomllib.load(f)
        return cls.from_mapping(data, base, str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], base: str = "watched", where: str = "labels") -> "Labels":
        preset = str(data.get("preset", base))
        if preset not in PRESETS:
            raise ValueError(f"{where}: preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        unknown = set(data) - set(KEYS) - {"preset", "kinds"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: preset, kinds, "
                             f"{', '.join(KEYS)})")
        words = _words(PRESETS[preset], data, where)
        kinds_data = data.get("kinds", {})
        if not isinstance(kinds_data, dict):
            raise ValueError(f"{where}: kinds must be a table of kind = \"watched\" | \"listened\"")
        kinds = {}
        for kind, value in kinds_data.items():
            if value not in PRESETS:
                raise ValueError(f"{where}: kinds.{kind} must be one of {', '.join(PRESETS)}, got {value!r}")
            kinds[str(kind)] = PRESETS[value]
        return cls(words, kinds)


def _words(base: Words, data: Mapping[str, object], where: str) -> Words:
    values = {}
    for key in KEYS:
        if key in data:
            if not isinstance(data[key], str) or not data[key].strip():
                raise ValueError(f"{where}: {key} must be a non-empty string")
            values[key] = data[key].strip()
    return replace(base, **values)
