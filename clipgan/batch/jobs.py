"""A jobs file -> a list of `Job`s, each with a concrete seed and a unique name.

Three formats, told apart by extension: `.jsonl` (one JSON object a line), `.csv` (a header row of
field names) and anything else as text (one job a line in the usual prompt syntax, `#` comments).
A JSONL or CSV job is `kind` (generate, morph or zoom; default generate), `prompts`, an optional
`name`, and any `Settings` field or option of its kind's dataclass in clipgan.animate. The flags
of `clipgan batch` give the defaults; a job's own fields win.

A structurally bad file (not JSON, unknown field or kind) is a ClipganError naming the line; a bad
value (a prompt that does not parse, a size of 0) fails only its job, when the job runs.

No torch here: the CLI imports this module.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from clipgan.animate import MorphOptions, ZoomOptions
from clipgan.config import Settings
from clipgan.errors import ClipganError

OPTIONS = {"generate": None, "morph": MorphOptions, "zoom": ZoomOptions}
EXTENSIONS = {"generate": ".png", "morph": ".mp4", "zoom": ".mp4"}
SETTING_NAMES = frozenset(f.name for f in dataclasses.fields(Settings))
JOB_NAMES = frozenset({"kind", "name", "prompts", "fps"})
MAX_SEEDS = 100_000  # a sweep larger than this is surely a typo


@dataclass
class Job:
    """One picture or video to make: everything a worker needs, as plain data (it travels to Ray)."""

    name: str  # slug, unique in the batch; with the seed it names the output
    kind: str
    prompts: list[str]
    seed: int
    settings: dict = field(default_factory=dict)  # Settings fields that differ from the defaults
    options: dict = field(default_factory=dict)  # MorphOptions / ZoomOptions fields
    fps: float | None = None  # videos

    @property
    def id(self) -> str:
        return f"{self.name}-s{self.seed}"

    @property
    def output(self) -> str:
        return self.id + EXTENSIONS[self.kind]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Job":
        return cls(**data)


def slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-") or "job"


def parse_seeds(text: str) -> list[int]:
    """'1-8' -> 1..8; '1,5,10-12' -> 1, 5, 10, 11, 12."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ClipganError(f"--seeds {text!r}: write numbers and ranges such as 1-8 or 1,5,10-12")
        low, high = int(m.group(1)), int(m.group(2) or m.group(1))
        if high < low or high - low + len(seeds) >= MAX_SEEDS or high >= 2**63:
            raise ClipganError(f"--seeds {text!r}: {part.strip()} is not a usable range")
        seeds.extend(range(low, high + 1))
    return list(dict.fromkeys(seeds))


def read_rows(path: Path) -> list[tuple[int, dict]]:
    """(line number, raw job fields) for each job in the file."""
    if not path.is_file():
        raise ClipganError(f"jobs file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ClipganError(f"cannot read jobs file {path} ({getattr(e, 'strerror', None) or e})") from None
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = _jsonl(path, text)
    elif suffix == ".csv":
        rows = _csv(path, text)
    else:
        rows = [(n, {"prompts": [line.strip()]}) for n, line in enumerate(text.splitlines(), 1)
                if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        raise ClipganError(f"{path} holds no jobs")
    return rows


def _jsonl(path: Path, text: str) -> list[tuple[int, dict]]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except (ValueError, RecursionError):
            raise ClipganError(f"{path}:{n}: not valid JSON") from None
        if not isinstance(data, dict):
            raise ClipganError(f"{path}:{n}: a job must be a JSON object")
        rows.append((n, data))
    return rows


def _csv(path: Path, text: str) -> list[tuple[int, dict]]:
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or any(not (f or "").strip() for f in reader.fieldnames):
        raise ClipganError(f"{path}: the first row must name every column")
    rows = []
    for row in reader:
        if None in row:
            raise ClipganError(f"{path}:{reader.line_num}: more cells than columns")
        values = {k.strip(): _cell(k.strip(), v) for k, v in row.items() if v is not None and v.strip()}
        if values:
            rows.append((reader.line_num, values))
    return rows


def _cell(name: str, value: str):
    """A CSV cell as the value the field takes: JSON where it parses (numbers, lists, true/false),
    'W x H' for size, and the raw text for prompts and other strings."""
    value = value.strip()
    if name == "size":
        m = re.fullmatch(r"(\d+)\s*[x, ]\s*(\d+)", value)
        if m:
            return [int(m.group(1)), int(m.group(2))]
    if name in ("prompts", "name", "kind") and not value.startswith("["):
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return value


def check_names(names, where: str) -> None:
    """Every default or job field must belong to some kind (or the job itself)."""
    known = SETTING_NAMES | JOB_NAMES | {f.name for o in OPTIONS.values() if o for f in dataclasses.fields(o)}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ClipganError(f"{where}: unknown field(s): {', '.join(map(str, unknown))}")


def make_jobs(path: Path, defaults: dict | None = None, seeds: list[int] | None = None, repeat: int = 1) -> list[Job]:
    """The batch: each row of the file with the defaults under it, once per seed of the sweep.

    Seeds: `seeds` when given; otherwise `repeat` seeds from the row's own seed (or the defaults'),
    or from one derived from the job's name, so that running the same batch again names the same
    outputs and skips the finished ones.
    """
    defaults = dict(defaults or {})
    check_names(defaults, "defaults")
    if repeat < 1:
        raise ClipganError(f"--repeat must be at least 1, got {repeat}")
    if seeds and repeat != 1:
        raise ClipganError("give --seeds or --repeat, not both")
    jobs, taken = [], set()
    for n, row in read_rows(path):
        jobs.extend(_row_jobs(f"{path}:{n}", row, defaults, seeds, repeat, taken))
    return jobs


def _row_jobs(where: str, row: dict, defaults: dict, seeds, repeat: int, taken: set) -> list[Job]:
    check_names(row, where)
    data = {**defaults, **row}
    kind = data.pop("kind", "generate")
    if kind not in OPTIONS:
        raise ClipganError(f"{where}: unknown kind {kind!r}; choose from {', '.join(OPTIONS)}")
    prompts = data.pop("prompts", [])
    prompts = [prompts] if isinstance(prompts, str) else prompts
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise ClipganError(f"{where}: prompts must be a string or a list of strings")
    if not prompts and not data.get("image_prompts"):
        raise ClipganError(f"{where}: the job has no prompts")
    name = _unique(slug(str(data.pop("name", None) or (prompts[0] if prompts else "image"))), taken)
    option_names = {f.name for f in dataclasses.fields(OPTIONS[kind])} if OPTIONS[kind] else set()
    options = {k: data.pop(k) for k in list(data) if k in option_names}
    fps = data.pop("fps", None)
    stray = sorted((set(data) - SETTING_NAMES) & set(row))  # a default that is another kind's option is fine
    if stray:
        raise ClipganError(f"{where}: {kind} has no field(s) {', '.join(stray)}")
    settings = {k: v for k, v in data.items() if k in SETTING_NAMES}
    base = settings.pop("seed", None)
    if base is not None and (isinstance(base, bool) or not isinstance(base, int) or not 0 <= base < 2**63):
        raise ClipganError(f"{where}: seed must be an integer from 0, got {base!r}")
    if base is None:
        base = zlib.crc32(name.encode())  # stable across runs of the same file
    return [Job(name, kind, list(prompts), seed, dict(settings), dict(options), fps)
            for seed in seeds or [base + k for k in range(repeat)]]


def _unique(name: str, taken: set) -> str:
    """Two rows with the same prompt get name, name-2, name-3... in file order."""
    candidate, k = name, 2
    while candidate in taken:
        candidate, k = f"{name}-{k}", k + 1
    taken.add(candidate)
    return candidate
