"""Counts in the sentences analysts read: "1 event", "2 events", never "1 events"."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun, singular for exactly one (``plural`` when adding "s" is wrong)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
