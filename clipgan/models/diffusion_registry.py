"""Diffusion model names -> folders and download URLs (for --image-model diffusion).

Pure data and path logic, no torch. Only unconditional diffusers UNet2DModel checkpoints whose
weights are published as safetensors are listed: clipgan never unpickles diffusion weights.
google/ddpm-church-256, -bedroom-256 and -celebahq-256 publish only a pickled
diffusion_pytorch_model.bin (checked 2026-11); convert one yourself and pass its folder to
--diffusion. No sha256 is published for these files: the first download's is recorded and
checked from then on (clipgan.models.checksums).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clipgan.errors import ClipganError
from clipgan.models.registry import DEFAULT_DIFFUSION, bundled_dir, checkpoints_dir

FILES = ("config.json", "scheduler_config.json", "diffusion_pytorch_model.safetensors")


@dataclass(frozen=True)
class DiffusionEntry:
    name: str
    description: str
    size: int  # px per side: the UNet's sample_size
    base_url: str | None = None  # FILES are base_url + "/" + file name
    sha256: tuple[tuple[str, str], ...] = ()  # (file, sha256) where one is published
    bundled: bool = False

    def url(self, file: str) -> str:
        return f"{self.base_url}/{file}"


_HF = "https://huggingface.co"

DIFFUSION_MODELS: dict[str, DiffusionEntry] = {e.name: e for e in [
    DiffusionEntry(DEFAULT_DIFFUSION, "tiny DDPM UNet trained on the bundled shapes world (CPU, seconds)",
                   32, bundled=True),
    DiffusionEntry("ddpm-cifar10-32", "google/ddpm-cifar10-32: CIFAR-10 DDPM (Ho et al.), 36 M parameters - 143 MB",
                   32, f"{_HF}/google/ddpm-cifar10-32/resolve/main"),
    DiffusionEntry("ddpm-celebahq-256", "google/ddpm-celebahq-256 faces, as the community safetensors copy "
                   "Mou11209203/ddpm-celebahq-256 (pinned commit) - 455 MB", 256,
                   f"{_HF}/Mou11209203/ddpm-celebahq-256/resolve/6e5d20af25fe2c52c5fd5dd72113307c358b1e66"),
]}


def get_diffusion_entry(name: str) -> DiffusionEntry:
    try:
        return DIFFUSION_MODELS[name]
    except KeyError:
        raise ClipganError(f"unknown diffusion model {name!r}: not a folder, and not one of "
                           f"{', '.join(DIFFUSION_MODELS)}") from None


def entry_folder(entry: DiffusionEntry, root: Path | str | None = None) -> Path:
    if entry.bundled:
        return bundled_dir() / entry.name
    return (Path(root) if root else checkpoints_dir()) / entry.name


def is_present(entry: DiffusionEntry, root: Path | str | None = None) -> bool:
    """Whether all of the entry's files are on disk (bundled, or downloaded)."""
    return all((entry_folder(entry, root) / f).is_file() for f in FILES)


def is_diffusion_name(name: str) -> bool:
    return name in DIFFUSION_MODELS


def resolve_diffusion(spec: str, root: Path | str | None = None) -> Path:
    """A folder given as such, else the folder of a registered name; ClipganError saying what to do."""
    path = Path(spec).expanduser()
    if spec not in DIFFUSION_MODELS:
        if path.is_dir() or "/" in spec or path.suffix:
            return path
        get_diffusion_entry(spec)  # raises: unknown name
    entry = DIFFUSION_MODELS[spec]
    folder = entry_folder(entry, root)
    missing = [f for f in FILES if not (folder / f).is_file()]
    if entry.bundled and missing:
        raise ClipganError(f"bundled diffusion model {spec!r} is missing {', '.join(missing)} in {folder}; "
                           "restore the repo's checkpoints/ folder (make toy-models rebuilds it)")
    if missing:
        raise ClipganError(f"diffusion model {spec!r} is not downloaded (missing {', '.join(missing)} in {folder}); "
                           f"run: clipgan download {spec}")
    return folder
