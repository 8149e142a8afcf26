"""Model names -> files, download URLs and checksums; where checkpoint files live.

Pure data and path logic: no torch here, so `clipgan models` and `clipgan download`
answer instantly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from clipgan.errors import ClipganError

# The single source of the default model names (the CLI and the library both read these).
DEFAULT_VQGAN = "toy"
DEFAULT_CLIP = "toy"
DEFAULT_DIFFUSION = "toy-diffusion"  # clipgan.models.diffusion_registry

ENV_VAR = "CLIPGAN_CHECKPOINTS"


@dataclass(frozen=True)
class VQGANEntry:
    name: str
    description: str
    config_url: str | None = None
    checkpoint_url: str | None = None
    config_sha256: str | None = None  # None: no published hash we can vouch for
    checkpoint_sha256: str | None = None
    bundled: bool = False  # shipped in the repo's checkpoints/ folder, never downloaded
    size: int | None = None  # px per side it was made for (a run's default); None: by device (config.GPU_SIZE)
    # px per side a generate that names no size draws at first, then refines at `size` (coarse to
    # fine, config.model_recipe); None: one size throughout
    coarse: int | None = None
    # File names inside the checkpoints dir; empty means f"{name}.yaml" / f"{name}.ckpt".
    config_file: str = ""
    checkpoint_file: str = ""

    def __post_init__(self):
        # Frozen dataclass: derived defaults must go through object.__setattr__.
        if not self.config_file:
            object.__setattr__(self, "config_file", f"{self.name}.yaml")
        if not self.checkpoint_file:
            object.__setattr__(self, "checkpoint_file", f"{self.name}.ckpt")


@dataclass(frozen=True)
class ModelStatus:
    entry: VQGANEntry
    config_path: Path
    checkpoint_path: Path
    present: bool  # both files exist

    @property
    def name(self) -> str:
        return self.entry.name


def _heibox(share: str, path: str) -> str:
    """A file in a public Heidelberg seafile share (where CompVis published taming models)."""
    return f"https://heibox.uni-heidelberg.de/d/{share}/files/?p={path}&dl=1"


# URLs as published for the VQGAN+CLIP community: CompVis' own heibox shares (listed in
# CompVis/taming-transformers and nerdyrodent/VQGAN-CLIP's download_models.sh) and the
# community mirrors that script uses for models CompVis did not share directly.
# coco, faceshq and sflckr are taming cond-transformer checkpoints: their yaml targets
# Net2NetTransformer and the VQGAN is the `first_stage_model` inside them.
_ENTRIES = [
    VQGANEntry(
        name="toy",
        description="tiny VQGAN trained on the bundled shapes world (runs on CPU in seconds)",
        bundled=True,
        size=64,  # its CLIP and VQGAN were trained on 64 px renders: larger sizes come out as stripes
        coarse=32,  # layout at 32 px, then 20 steps at 64: more shapes on both bench sets (docs/benchmarks.md)
        config_file="toy-vqgan.yaml",
        checkpoint_file="toy-vqgan.ckpt",
    ),
    VQGANEntry(
        name="vqgan_imagenet_f16_1024",
        description="ImageNet, f16, 1024 codes (CompVis) - 958 MB",
        config_url=_heibox("8088892a516d4e3baf92", "%2Fconfigs%2Fmodel.yaml"),
        checkpoint_url=_heibox("8088892a516d4e3baf92", "%2Fckpts%2Flast.ckpt"),
    ),
    VQGANEntry(
        name="vqgan_imagenet_f16_16384",
        description="ImageNet, f16, 16384 codes (CompVis) - 980 MB; the usual choice",
        config_url=_heibox("a7530b09fed84f80a887", "%2Fconfigs%2Fmodel.yaml"),
        checkpoint_url=_heibox("a7530b09fed84f80a887", "%2Fckpts%2Flast.ckpt"),
    ),
    VQGANEntry(
        name="vqgan_gumbel_f8_8192",
        description="OpenImages, f8, 8192 codes, Gumbel quantizer (CompVis) - 376 MB",
        config_url=_heibox("2e5662443a6b4307b470", "%2Fconfigs%2Fmodel.yaml"),
        checkpoint_url=_heibox("2e5662443a6b4307b470", "%2Fckpts%2Flast.ckpt"),
    ),
    VQGANEntry(
        name="wikiart_1024",
        description="WikiArt, f16, 1024 codes (community) - 958 MB",
        config_url="http://mirror.io.community/blob/vqgan/wikiart.yaml",
        checkpoint_url="http://mirror.io.community/blob/vqgan/wikiart.ckpt",
    ),
    VQGANEntry(
        name="wikiart_16384",
        description="WikiArt, f16, 16384 codes (community) - 1 GB",
        config_url="http://mirror.io.community/blob/vqgan/wikiart_16384.yaml",
        checkpoint_url="http://mirror.io.community/blob/vqgan/wikiart_16384.ckpt",
    ),
    VQGANEntry(
        name="coco",
        description="COCO scene transformer (CompVis; VQGAN is its first stage) - 8.4 GB",
        config_url="https://dl.nmkd.de/ai/clip/coco/coco.yaml",
        checkpoint_url="https://dl.nmkd.de/ai/clip/coco/coco.ckpt",
    ),
    VQGANEntry(
        name="faceshq",
        description="FacesHQ transformer (CompVis; VQGAN is its first stage)",
        config_url="https://drive.google.com/uc?export=download&id=1fHwGx_hnBtC8nsq7hesJvs-Klv-P0gzT",
        checkpoint_url=(
            "https://app.koofr.net/content/links/a04deec9-0c59-4673-8b37-3d696fe63a5d/files/get/"
            "last.ckpt?path=%2F2020-11-13T21-41-45_faceshq_transformer%2Fcheckpoints%2Flast.ckpt"
        ),
    ),
    VQGANEntry(
        name="sflckr",
        description="S-FLCKR landscapes transformer (CompVis; VQGAN is its first stage)",
        config_url=_heibox("73487ab6e5314cb5adba", "%2Fconfigs%2F2020-11-09T13-31-51-project.yaml"),
        checkpoint_url=_heibox("73487ab6e5314cb5adba", "%2Fcheckpoints%2Flast.ckpt"),
    ),
]

VQGAN_MODELS: dict[str, VQGANEntry] = {e.name: e for e in _ENTRIES}

# Bundled CLIP models: alias -> (open_clip model config json, weights file).
CLIP_ALIASES: dict[str, tuple[str, str]] = {"toy": ("toy-clip.json", "toy-clip.safetensors")}
# Bundled CLIPs stored as an overlay on a bundled alias (clipgan.models.overlay): alias -> (base, file).
# toy-contrast is the toy CLIP's first training stage, before the adversarial fine-tunes: it tells
# shapes apart on clean renders (98%) and is not robust, so it pulls shape detail the toy does not.
CLIP_OVERLAYS: dict[str, tuple[str, str]] = {"toy-contrast": ("toy", "toy-clip-contrast.safetensors")}
# A CLIP's partner that pulls only the contrast (Settings.contrast_clip), where one is bundled.
CONTRAST_PARTNERS: dict[str, str] = {"toy": "toy-contrast"}


def bundled_clip(spec: str) -> bool:
    """Whether `spec` names a bundled CLIP (an alias or an overlay on one)."""
    return spec in CLIP_ALIASES or spec in CLIP_OVERLAYS


def bundled_dir() -> Path:
    """Where the small bundled models live: the package's checkpoints/ folder.

    In a source checkout that is a symlink to the repo's top-level checkpoints/ (where git
    keeps them); a wheel holds them as package data under the same name. The repo folder
    is the fallback for checkouts made without symlinks.
    """
    packaged = Path(__file__).resolve().parents[1] / "checkpoints"
    return packaged.resolve() if packaged.is_dir() else _repo_checkpoints()


def _repo_checkpoints() -> Path:
    """The top-level checkpoints/ of a source checkout (absent in a wheel install)."""
    return Path(__file__).resolve().parents[2] / "checkpoints"


def checkpoints_dir() -> Path:
    """Where downloaded models go: $CLIPGAN_CHECKPOINTS, else a source checkout's checkpoints/
    (git-ignored), else a user cache, never the installed package."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    if _repo_checkpoints().is_dir():
        return _repo_checkpoints()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "clipgan" / "checkpoints"


def get_entry(name: str) -> VQGANEntry:
    """The registry entry for `name`; ClipganError listing the known names otherwise."""
    try:
        return VQGAN_MODELS[name]
    except KeyError:
        known = ", ".join(sorted(VQGAN_MODELS))
        raise ClipganError(f"unknown VQGAN model {name!r}; known models: {known}") from None


def entry_paths(entry: VQGANEntry, root: Path | str | None = None) -> tuple[Path, Path]:
    """(yaml, ckpt) paths of an entry: bundled files always come from the repo folder."""
    base = bundled_dir() if entry.bundled else Path(root) if root else checkpoints_dir()
    return base / entry.config_file, base / entry.checkpoint_file


def model_status(entry: VQGANEntry, root: Path | str | None = None) -> ModelStatus:
    config, ckpt = entry_paths(entry, root)
    return ModelStatus(entry, config, ckpt, present=config.is_file() and ckpt.is_file())


def list_models(root: Path | str | None = None) -> list[ModelStatus]:
    """Every registered VQGAN with whether its files are on disk (for `clipgan models`)."""
    return [model_status(entry, root) for entry in VQGAN_MODELS.values()]


def resolve_vqgan(name: str, root: Path | str | None = None) -> tuple[Path, Path]:
    """(yaml, ckpt) of a registered model that is on disk; ClipganError saying what to do otherwise."""
    status = model_status(get_entry(name), root)
    if status.present:
        return status.config_path, status.checkpoint_path
    missing = [p.name for p in (status.config_path, status.checkpoint_path) if not p.is_file()]
    where = status.config_path.parent
    if status.entry.bundled:
        raise ClipganError(
            f"bundled model {name!r} is missing {', '.join(missing)} in {where}; "
            "restore the repo's checkpoints/ folder (make toy-models rebuilds it)"
        )
    raise ClipganError(
        f"VQGAN model {name!r} is not downloaded (missing {', '.join(missing)} in {where}); "
        f"run: clipgan download {name}"
    )


def resolve_clip_alias(name: str, root: Path | str | None = None) -> tuple[Path, Path] | None:
    """(config json, weights) of a bundled CLIP alias, or None when `name` is no alias.

    `root` defaults to bundled_dir(): aliases name bundled files.
    """
    if name not in CLIP_ALIASES:
        return None
    base = Path(root) if root else bundled_dir()
    config, weights = (base / f for f in CLIP_ALIASES[name])
    missing = [p.name for p in (config, weights) if not p.is_file()]
    if missing:
        raise ClipganError(
            f"bundled CLIP {name!r} is missing {', '.join(missing)} in {base}; "
            "restore the repo's checkpoints/ folder (make toy-models rebuilds it)"
        )
    return config, weights


def resolve_clip_overlay(name: str, root: Path | str | None = None) -> tuple[str, Path] | None:
    """(base alias, overlay file) of a bundled overlay CLIP, or None when `name` is none."""
    if name not in CLIP_OVERLAYS:
        return None
    base_alias, file = CLIP_OVERLAYS[name]
    path = (Path(root) if root else bundled_dir()) / file
    if not path.is_file():
        raise ClipganError(f"bundled CLIP {name!r} is missing {file} in {path.parent}; "
                           "restore the repo's checkpoints/ folder (make toy-models rebuilds it)")
    return base_alias, path
