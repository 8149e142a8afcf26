"""The web form <-> Settings, both ways. No gradio and no torch here: the fields' defaults are
Settings' own, and "use these settings again" is `form_values(settings)`.

Prompts are typed one per line in the CLI's "text:weight:stop" syntax; a negative prompt line
"text[:weight]" is pushed away with weight -1 (or -weight).
"""

from __future__ import annotations

from dataclasses import fields

from clipgan.config import IMAGE_MODELS, Settings, model_recipe
from clipgan.errors import ClipganError
from clipgan.prompts import parse_prompt

# Settings the Generate tab does not show: editing has its own tab, and `size` is two fields.
NOT_IN_FORM = ("mask", "feather", "size", "prompts", "image_prompts")
# the Image model dropdown: every way to draw (the Generate tab runs clipgan.run.generate)
FORM_IMAGE_MODELS = IMAGE_MODELS
FORM_FIELDS = tuple(f.name for f in fields(Settings) if f.name not in NOT_IN_FORM)
# the extra fields of the form, beside the Settings fields
EXTRA = ("positive", "negative", "image_prompt_files", "width", "height")


def lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def negative_prompt(line: str) -> str:
    """'text' -> 'text:-1', 'text:2' -> 'text:-2' (a weight given as negative stays negative)."""
    p = parse_prompt(line)
    weight = -abs(p.weight)
    return f"{p.text}:{weight:g}" if p.stop == -float("inf") else f"{p.text}:{weight:g}:{p.stop:g}"


def whole(value, name: str) -> int | None:
    """Number fields arrive as float, int or None (empty)."""
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        return None
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise ClipganError(f"{name} must be a whole number, got {value!r}") from None
    if as_float != int(as_float):
        raise ClipganError(f"{name} must be a whole number, got {value!r}")
    return int(as_float)


def numbers(text: str, kind: type, name: str) -> list:
    """'1, 2' -> [1, 2] (kind int or float); a word that is no such number is a one-line error."""
    out = []
    for part in text.replace(" ", ",").split(","):
        if part:
            try:
                out.append(kind(part))
            except ValueError:
                raise ClipganError(f"{name}: {part!r} is not a {'whole number' if kind is int else 'number'}") from None
    return out


def to_settings(values: dict) -> Settings:
    """Form values (Settings field names plus EXTRA) -> validated Settings."""
    v = dict(values)
    prompts = lines(v.pop("positive", "")) + [negative_prompt(n) for n in lines(v.pop("negative", ""))]
    files = v.pop("image_prompt_files", None) or []
    width, height = whole(v.pop("width", None), "width"), whole(v.pop("height", None), "height")
    if width is None or height is None:
        raise ClipganError("give both width and height (0 and 0: the model's own size)")
    changes = {k: v[k] for k in FORM_FIELDS if k in v}
    for name in ("iterations", "cutn", "change_prompt_every", "upscale_steps", "seed", "strokes", "candidates", "early_stop"):
        if name in changes:
            changes[name] = whole(changes[name], name.replace("_", "-"))
    if "upscale" in changes and not changes["upscale"]:
        changes["upscale"] = None  # 0 or empty: no upscale
    for name in ("init_image", "vqgan_config", "vqgan_checkpoint"):
        if name in changes and not changes[name]:
            changes[name] = None
    for name, kind in (("noise_prompt_seeds", int), ("noise_prompt_weights", float)):
        if isinstance(changes.get(name), str):  # typed as "1,2" in the form
            changes[name] = numbers(changes[name], kind, name.replace("_", "-"))
    if "clip" in changes and isinstance(changes["clip"], str):
        changes["clip"] = [changes["clip"]]
    if "contrast" in changes and not (changes["contrast"] or "").strip():
        changes["contrast"] = None  # left empty: the CLIP's own words ("none" turns it off)
    if isinstance(changes.get("contrast_clip"), str):  # "a, b"; empty: the CLIP's own partner; "none": off
        changes["contrast_clip"] = [c.strip() for c in changes["contrast_clip"].split(",") if c.strip()] or None
    size = None if width == height == 0 else (width, height)  # 0 x 0: the model's own size, as with no --size
    return Settings().replace(prompts=prompts, image_prompts=[str(f) for f in files], size=size, **changes)


def form_values(s: Settings) -> dict:
    """Settings -> form values, the inverse of `to_settings` (negative weights go to the negative box)."""
    bare = s.replace(size=None, upscale=None)
    if s.size is not None and model_recipe(bare) == s:  # the model's own recipe (coarse to fine): "the model's", 0 x 0
        s = bare
    out = {k: getattr(s, k) for k in FORM_FIELDS}
    out["clip"], out["augments"] = list(s.clip), list(s.augments)
    out["contrast"] = "" if s.contrast is None else ", ".join(s.contrast) or "none"
    out["contrast_clip"] = "" if s.contrast_clip is None else ", ".join(s.contrast_clip) or "none"
    for name in ("noise_prompt_seeds", "noise_prompt_weights"):
        out[name] = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in getattr(s, name))
    positive, negative = [], []
    for text in s.prompts:
        p = parse_prompt(text)
        if p.weight < 0 and p.stop == -float("inf") and "^" not in text and "|" not in text:
            negative.append(p.text if p.weight == -1 else f"{p.text}:{-p.weight:g}")
        else:
            positive.append(text)
    out.update(positive="\n".join(positive), negative="\n".join(negative), width=s.size[0] if s.size else 0, height=s.size[1] if s.size else 0,
               image_prompt_files=[parse_prompt(p).text for p in s.image_prompts] or None,
               upscale=s.upscale or 0, seed="" if s.seed is None else str(s.seed))
    return out


def defaults() -> dict:
    return form_values(Settings())
