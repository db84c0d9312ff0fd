"""Counts in words: "1 registry", "2 registries", "1,000 groups"."""
from __future__ import annotations



def plural(count: int, noun: str, many: str | None = None) -> str:
    """`count` and the noun in the number it takes, counts with separators:
    a noun ending in a consonant and y takes -ies ("registry"), any other -s."""
    if count == 1:
        return f"1 {noun}"
    if many is None:
        many = noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" \
            else noun + "s"
    return f"{count:,} {many}"
