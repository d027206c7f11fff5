"""Argument types shared by the subcommands: a bad value is argparse's usage error (exit 2),
naming the flag."""

from __future__ import annotations

import argparse


def positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def non_negative(value: str) -> int:
    n = int(value)
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {n}")
    return n


def port(value: str) -> int:
    n = int(value)
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"must be within 0..65535, got {n}")
    return n


def seconds(value: str) -> float:
    """A duration: more than 0 and at most a day (0 would make a watcher spin)."""
    x = float(value)
    if not 0 < x <= 86_400:
        raise argparse.ArgumentTypeError(f"must be > 0 and <= 86400 seconds, got {value}")
    return x
