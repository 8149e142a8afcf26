"""Prompt strings -> (text, weight, stop). Pure functions, no models.

The format is the VQGAN+CLIP one, "text:weight:stop", read from the right so that URLs
("https://x/y.png:0.5") and Windows paths ("C:\\art\\a.png:2") keep their colons.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, TypeVar

from clipgan.errors import ClipganError

T = TypeVar("T")


@dataclass(frozen=True)
class Prompt:
    text: str
    weight: float = 1.0  # negative pushes away from the prompt
    stop: float = -math.inf  # the loss is not pushed below this distance


def _looks_numeric(tail: str) -> bool:
    """A tail meant as a number: one bare token (not part of a path or URL), or a number
    with spaces around it ("a cat: 2"); "a note: sunset" stays text."""
    token = tail.strip()
    if not token or any(c in "/\\" for c in token):
        return False
    if not any(c.isspace() for c in tail):
        return True
    if any(c.isspace() for c in token):
        return False
    try:
        float(token)
    except ValueError:
        return False
    return True


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
        numbers.insert(0, tail.strip())
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


_AT_STEP = re.compile(r"^\s*@(\d+)\s+(.*)$", re.S)


def part_at(story: Iterable[tuple[int, T]], step: int) -> T | None:
    """The part of a story (start, part), sorted by start, in force at `step`: the latest start not after it."""
    current = None
    for start, part in story:
        if start <= step:
            current = part
    return current


def story_parts(spec: str, total: int, every: int = 0, unit: str = "step") -> list[tuple[int, str]]:
    """'a forest ^ a city ^ @250 the sea' -> [(start, text)], sorted by start: the one story parser,
    for a run's steps (parse_story) and an animation's frames (animate.prompt_schedule).

    A part's '@k ' prefix fixes its start; the others start every `every` units, or are spread
    evenly over the `total` when `every` is 0 (part j at round(j * total / parts)).
    """
    segments = [s for s in (part.strip() for part in spec.split("^")) if s]
    if not segments:
        raise ClipganError(f"empty prompt {spec!r}")
    out = []
    for j, segment in enumerate(segments):
        m = _AT_STEP.match(segment)
        if m:
            if len(m.group(1)) > 18:  # int() refuses thousands of digits; no run has that many steps
                raise ClipganError(f"{unit} number @{m.group(1)[:8]}... in prompt is too large")
            start, segment = int(m.group(1)), m.group(2).strip()
        else:
            start = j * every if every else round(j * total / len(segments))
        out.append((start, segment))
    return sorted(out, key=lambda item: item[0])


def parse_story(spec: str, iterations: int, every: int = 0) -> list[tuple[int, Prompt]]:
    """'a forest ^ a city ^ @250 the sea' -> [(start step, Prompt)], sorted by start (story_parts)."""
    return [(start, parse_prompt(text)) for start, text in story_parts(spec, iterations, every)]


def _whole_word(word: str) -> re.Pattern:
    return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.I)


def contrast_lanes(story: list[tuple[int, Prompt]], words: tuple[str, ...],
                   weight: float, shared: bool = True) -> list[list[tuple[int, Prompt | None]]]:
    """A story and its contrasts, as parallel stories ("lanes") with the same starts.

    Where a part pulls (weight w > 0) and names exactly one of `words` (whole word, any case), lane 0
    holds it at w * (1 + weight) and lane j the same text with the j-th other word at
    -w * weight / (len(words) - 1). The weights still sum to w, so what the texts share (colours,
    style) pulls as before, and what is added is the named word's difference from the others: the
    picture is pushed towards a circle *rather than* a square, not towards whatever all of them share.
    Other parts stay as they are in lane 0; the other lanes hold None there. With `shared` False
    only the contrast is left: lane 0 holds the part at w * weight, and the other parts are None
    (for a CLIP that pulls the named word's difference alone, Settings.contrast_clip).
    """
    lanes: list[list[tuple[int, Prompt | None]]] = [[] for _ in words]
    for start, p in story:
        named = [w for w in words if _whole_word(w).search(p.text)]
        if weight <= 0 or p.weight <= 0 or len(named) != 1:
            lanes[0].append((start, p if shared else None))
            for lane in lanes[1:]:
                lane.append((start, None))
            continue
        pattern = _whole_word(named[0])
        others = [w for w in words if w.lower() != named[0].lower()]
        lanes[0].append((start, Prompt(p.text, p.weight * (int(shared) + weight), p.stop)))
        for lane, other in zip(lanes[1:], others):
            lane.append((start, Prompt(pattern.sub(other, p.text), -p.weight * weight / len(others))))
    return [lane for lane in lanes if any(p is not None for _, p in lane)]
