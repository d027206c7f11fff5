"""The traffic mix: which RPCs a load test sends, in what shares, shaped like real traffic.

A small TOML file (``loadtest/mixes/default.toml`` is the default); every key is checked and an
unknown key or a bad value is refused with its name. Recommend users come from a Zipf law over
the served index's real user ids (a few heavy users, a long tail), and some requests carry a
filter, exclusions or diversity, as a homepage's rows do.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tastebud.errors import InvalidInputError

RPCS = ("recommend", "similar", "search", "record", "health")  # health: grpc.health.v1 Check, the gRPC floor
DEFAULT_MIX = Path(__file__).parent / "mixes" / "default.toml"


@dataclass(frozen=True, slots=True)
class RecommendShape:
    k: int = 10
    zipf_exponent: float = 1.1
    filter_share: float = 0.2
    exclude_share: float = 0.1
    diversity_share: float = 0.2
    diversity: float = 0.3


@dataclass(frozen=True, slots=True)
class ListShape:
    k: int = 10


@dataclass(frozen=True, slots=True)
class RecordShape:
    batch: int = 1


@dataclass(frozen=True, slots=True)
class TrafficMix:
    weights: dict[str, float] = field(default_factory=lambda: {"recommend": 1.0})
    recommend: RecommendShape = field(default_factory=RecommendShape)
    similar: ListShape = field(default_factory=ListShape)
    search: ListShape = field(default_factory=ListShape)
    record: RecordShape = field(default_factory=RecordShape)

    def __post_init__(self) -> None:
        for rpc, weight in self.weights.items():
            if rpc not in RPCS:
                raise InvalidInputError(f"weights.{rpc}: unknown RPC; known: {list(RPCS)}")
            if not isinstance(weight, (int, float)) or weight < 0:
                raise InvalidInputError(f"weights.{rpc}: must be a number >= 0, got {weight!r}")
        if sum(self.weights.values()) <= 0:
            raise InvalidInputError("weights: at least one RPC needs a weight > 0")
        for name in ("filter_share", "exclude_share", "diversity_share", "diversity"):
            if not 0.0 <= getattr(self.recommend, name) <= 1.0:
                raise InvalidInputError(f"recommend.{name}: must be within 0..1, got {getattr(self.recommend, name)}")
        if self.recommend.zipf_exponent < 0:
            raise InvalidInputError(f"recommend.zipf_exponent: must be >= 0, got {self.recommend.zipf_exponent}")
        for section in ("recommend", "similar", "search"):
            k = getattr(self, section).k
            if not 1 <= k <= 1000:
                raise InvalidInputError(f"{section}.k: must be within 1..1000, got {k}")
        if not 1 <= self.record.batch <= 1000:
            raise InvalidInputError(f"record.batch: must be within 1..1000, got {self.record.batch}")

    def shares(self) -> dict[str, float]:
        """Each RPC's share of requests (weights normalised, zero weights left out)."""
        total = sum(self.weights.values())
        return {rpc: w / total for rpc, w in self.weights.items() if w > 0}

    @classmethod
    def from_toml(cls, path: Path) -> "TrafficMix":
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInputError(f"{path}: {exc}") from exc
        try:
            return cls.from_dict(data)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{path}: {exc}") from exc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrafficMix":
        sections = {"recommend": RecommendShape, "similar": ListShape, "search": ListShape, "record": RecordShape}
        unknown = sorted(set(data) - {"weights", *sections})
        if unknown:
            raise InvalidInputError(f"unknown section(s) {unknown}; known: ['weights', {', '.join(map(repr, sections))}]")
        values: dict[str, Any] = {}
        if "weights" in data:
            if not isinstance(data["weights"], dict):
                raise InvalidInputError("weights: must be a table of RPC = weight")
            values["weights"] = dict(data["weights"])
        for name, shape in sections.items():
            if name not in data:
                continue
            table = data[name]
            known = {f.name: f for f in fields(shape)}
            for key, value in table.items():
                if key not in known:
                    raise InvalidInputError(f"{name}.{key}: unknown key; known: {sorted(known)}")
                expected = type(getattr(shape(), key))
                if expected is float and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                if type(value) is not expected:
                    raise InvalidInputError(f"{name}.{key}: must be {expected.__name__}, got {value!r}")
                table = {**table, key: value}
            values[name] = shape(**table)
        return cls(**values)
