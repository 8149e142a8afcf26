"""The contact sheet of a batch folder: `contact.html` (every output with its prompt, seed and time,
failures with their error) and `contact.png` (a grid of thumbnails captioned with the prompts),
both rewritten atomically as jobs finish. Earlier runs' outputs in the folder are included."""

from __future__ import annotations

import html
import io
import math
import textwrap
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from clipgan.io import atomic_path

THUMB = 128  # px, the grid's cell width
COLUMNS = 6
CAPTION_LINES = 3
LINE = 12  # px per caption line


class ContactSheet:
    def __init__(self, folder: Path, every: float = 2.0):
        self.folder = Path(folder)
        self.entries: dict[str, tuple[dict, Image.Image | None]] = {}
        self.every = every  # seconds between rewrites: a big batch must not spend its time redrawing
        self._written = -math.inf
        self._dirty = False

    def load(self, records: dict[str, dict]) -> None:
        """Earlier runs' finished jobs, read back from their files."""
        for job_id, record in records.items():
            if record.get("status") == "done":
                picture = self.folder / Path(record["output"]).with_suffix(".png")
                self.entries[job_id] = (record, _thumb(picture.read_bytes()) if picture.is_file() else None)

    def add(self, record: dict, picture: bytes | None) -> None:
        self.entries[record["job"]] = (record, _thumb(picture) if picture else None)
        self._dirty = True
        if time.monotonic() - self._written >= self.every:
            self.write()

    def flush(self) -> None:
        """Writes what `add` held back (at the end of a run, interrupted or not)."""
        if self._dirty:
            self.write()

    def write(self) -> None:
        self._written, self._dirty = time.monotonic(), False
        entries = list(self.entries.values())
        with atomic_path(self.folder / "contact.html") as tmp:
            tmp.write_text(page(entries), encoding="utf-8")
        with atomic_path(self.folder / "contact.png") as tmp:
            grid(entries).save(tmp, format="PNG")


def _thumb(data: bytes) -> Image.Image | None:
    try:
        image = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception:  # noqa: BLE001  a video's bytes or a broken file: no thumbnail
        return None
    image.thumbnail((THUMB, THUMB))
    return image


def caption(record: dict) -> str:
    prompts = " | ".join(record.get("prompts") or []) or record["job"]
    return f"{prompts} (seed {record.get('seed')})"


def page(entries: list[tuple[dict, Image.Image | None]]) -> str:
    cells = []
    for record, _ in entries:
        out = html.escape(record["output"], quote=True)
        if record.get("status") != "done":
            media = f'<div class="failed">failed: {html.escape(record.get("error") or "")}</div>'
        elif out.endswith(".png"):
            media = f'<a href="{out}"><img src="{out}" alt=""></a>'
        else:
            poster = html.escape(str(Path(record["output"]).with_suffix(".png")), quote=True)
            media = f'<video src="{out}" poster="{poster}" controls loop muted></video>'
        cells.append(f'<figure>{media}<figcaption>{html.escape(caption(record))}<br>'
                     f'<small>{html.escape(record["job"])} · {record.get("seconds", 0):.1f} s</small></figcaption></figure>')
    style = ("body{font-family:sans-serif;background:#222;color:#ddd}figure{display:inline-block;width:192px;"
             "vertical-align:top;margin:6px}img,video{width:192px;image-rendering:pixelated}"
             ".failed{width:192px;height:96px;color:#f88;overflow:auto}")
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>clipgan batch</title><style>{style}</style>"
            f"</head><body>\n{chr(10).join(cells)}\n</body></html>\n")


def grid(entries: list[tuple[dict, Image.Image | None]]) -> Image.Image:
    columns = max(1, min(COLUMNS, len(entries)))
    rows = max(1, -(-len(entries) // columns))
    cell_h = THUMB + CAPTION_LINES * LINE + 6
    sheet = Image.new("RGB", (columns * THUMB, rows * cell_h), (34, 34, 34))
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    for i, (record, thumb) in enumerate(entries):
        x, y = (i % columns) * THUMB, (i // columns) * cell_h
        if thumb is not None:
            big = thumb.resize((THUMB, round(THUMB * thumb.height / thumb.width)), Image.NEAREST)
            sheet.paste(big, (x, y))
        else:
            draw.text((x + 4, y + 4), "failed" if record.get("status") != "done" else "video", fill=(255, 120, 120), font=font)
        lines = textwrap.wrap(caption(record), 20)[:CAPTION_LINES]
        for k, line in enumerate(lines):
            draw.text((x + 2, y + THUMB + 2 + k * LINE), line, fill=(220, 220, 220), font=font)
    return sheet
