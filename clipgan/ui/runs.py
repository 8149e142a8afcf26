"""Runs for the web app, on the public API and free of gradio: loaded models kept between runs,
a run streamed as events from a worker thread (so the page can show previews), Stop flags per
browser session, and results saved as clipgan PNGs (settings inside).
"""

from __future__ import annotations

import hashlib
import queue
import re
import shutil
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from clipgan.config import Settings
from clipgan.errors import ClipganNotice


class Stopped(Exception):
    """Raised inside a run's callback when the user pressed Stop."""


@dataclass
class Event:
    """One thing a run reports: a step (with a preview every few steps), a note, or its end."""

    kind: str  # step | note | done | stopped | error (image: the last picture, if any)
    step: int = 0  # steps done so far
    loss: float | None = None
    image: object = None  # PIL preview (steps), or the final picture
    value: object = None  # done: the run's return value; error: the exception; note: its text


@dataclass
class Stops:
    """A Stop flag per browser session: pressing Stop ends only that session's run."""

    flags: dict[str, threading.Event] = field(default_factory=dict)

    def fresh(self, session: str) -> threading.Event:
        self.flags[session] = threading.Event()
        return self.flags[session]

    def stop(self, session: str) -> bool:
        flag = self.flags.get(session)
        if flag is not None:
            flag.set()
        return flag is not None


class Cache:
    """The last thing loaded (models, perceptors), reused while its key stays the same: loading
    takes seconds, and one at a time keeps memory to one set."""

    def __init__(self):
        self.key, self.value = None, None
        self.lock = threading.Lock()

    def get(self, key, load: Callable[[], object]):
        with self.lock:
            if key != self.key:
                self.key, self.value = None, None  # free the old ones first
                self.value, self.key = load(), key
            return self.value


def preview_every(total: int) -> int:
    """About 20 previews per run: sending every step's picture would slow a fast run down."""
    return max(1, total // 20)


def stream(run: Callable[[Callable], object], stop: threading.Event, total: int, every: int | None = None) -> Iterator[Event]:
    """Runs `run(callback)` in a thread; yields its steps (a PIL preview every `every`) and then
    'done' with its return value, 'stopped' with the last picture, or 'error'. Notices become notes."""
    from clipgan.io import to_pil

    every = every or preview_every(total)
    events: queue.Queue = queue.Queue()
    done = [0]

    def callback(step):
        if stop.is_set():
            raise Stopped
        done[0] += 1
        image = to_pil(step.image) if done[0] % every == 0 or done[0] == 1 else None
        events.put(Event("step", done[0], step.loss, image))
        last[0] = step

    last = [None]

    def work():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ClipganNotice)
            try:
                value = run(callback)
                outcome = Event("done", done[0], value=value)
            except Stopped:
                outcome = Event("stopped", done[0], image=to_pil(last[0].image) if last[0] is not None else None)
            except BaseException as e:  # handed to the page as a message, with the last good picture
                outcome = Event("error", done[0], value=e, image=to_pil(last[0].image) if last[0] is not None else None)
        for w in caught:
            if issubclass(w.category, ClipganNotice):
                events.put(Event("note", value=str(w.message)))
        events.put(outcome)

    thread = threading.Thread(target=work, name="clipgan-ui-run", daemon=True)
    thread.start()
    try:
        while True:
            event = events.get()
            yield event
            if event.kind in ("done", "stopped", "error"):
                return
    finally:  # also when the page went away mid-run (the generator is closed): the device is free after
        if thread.is_alive():
            stop.set()
        thread.join()


def stem(prompts: list[str], fallback: str = "clipgan") -> str:
    text = prompts[0] if prompts else fallback
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or fallback


def unique(folder: Path, name: str, suffix: str) -> Path:
    path, n = folder / f"{name}{suffix}", 1
    while path.exists():
        path, n = folder / f"{name}-{n}{suffix}", n + 1
    return path


def save_result(image, settings: Settings, folder: Path) -> Path:
    """A clipgan PNG (settings embedded), named after the first prompt and the seed."""
    from clipgan.io import save_image

    return save_image(image, unique(folder, f"{stem(settings.prompts)}-{settings.seed}", ".png"), settings.to_dict())


def keep_upload(path: str | None, folder: Path) -> str | None:
    """An uploaded file copied into the app's folder under its content hash, so settings that
    name it stay valid after gradio clears its cache."""
    if not path:
        return None
    src = Path(path)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    dest = folder / "uploads" / f"{digest}{src.suffix.lower() or '.png'}"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    return str(dest)
