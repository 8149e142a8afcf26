"""Prompt strings -> (text, weight, stop). Pure functions, no models.

The format is the VQGAN+CLIP one, "text:weight:stop", read from the right so that URLs
("https://x/y.png:0.5") and Windows paths ("C:\\art\\a.png:2") keep their colons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from clipgan.errors import ClipganError


@dataclass(frozen=True)
class Prompt:
    text: str
    weight: float = 1.0  # negative pushes away from the prompt
    stop: float = -math.inf  # the loss is not pushed below this distance


def _looks_numeric(tail: str) -> bool:
    """A tail meant as a number: one bare token, not part of a path or URL."""
    return bool(tail) and not any(c.isspace() or c in "/\\" for c in tail)


def _number(token: str, what: str, prompt: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise ClipganError(f"{what} {token!r} in prompt {prompt!r} is not a number") from None
    if not math.isfinite(value):
        raise ClipganError(f"{what} {token!r} in prompt {prompt!r} must be finite")
    return value


def parse_prompt(spec: str) -> Prompt:
    """'a cat:1.5:-0.2' -> Prompt('a cat', 1.5, -0.2); missing parts take their defaults."""
    if not isinstance(spec, str):
        raise ClipganError(f"a prompt must be a string, got {spec!r}")
    numbers: list[str] = []
    text = spec
    while len(numbers) < 2 and ":" in text:
        head, tail = text.rsplit(":", 1)
        if not _looks_numeric(tail) or not head.strip():
            break
        numbers.insert(0, tail)
        text = head
    text = text.strip()
    if not text:
        raise ClipganError(f"empty prompt {spec!r}")
    weight = _number(numbers[0], "weight", spec) if numbers else 1.0
    stop = _number(numbers[1], "stop", spec) if len(numbers) > 1 else -math.inf
    return Prompt(text, weight, stop)


def split_prompts(args: Iterable[str]) -> list[str]:
    """Each argument may hold several prompts separated by '|'."""
    out = [part.strip() for arg in args for part in arg.split("|")]
    return [p for p in out if p]


def parse_prompts(args: Iterable[str]) -> list[Prompt]:
    return [parse_prompt(p) for p in split_prompts(args)]
