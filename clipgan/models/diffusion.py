"""Loading unconditional diffusers UNets (UNet2DModel) and their noise schedules, offline.

A model is a folder in the diffusers layout: config.json + diffusion_pytorch_model.safetensors
(+ scheduler_config.json), or a pipeline folder (model_index.json) with unet/ and scheduler/
subfolders. Weights load from safetensors only, never from pickles (.bin files are refused).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from clipgan.errors import ClipganError

WEIGHTS = "diffusion_pytorch_model.safetensors"
SCHEDULERS = ("ddim", "ddpm")
# The schedule of a folder without scheduler_config.json: the DDPM paper's.
DEFAULT_SCHEDULE = {"num_train_timesteps": 1000, "beta_schedule": "linear",
                    "beta_start": 0.0001, "beta_end": 0.02}


@dataclass
class DiffusionModel:
    unet: torch.nn.Module
    schedule: dict  # the scheduler config the model was trained with
    size: int  # the UNet's sample_size: the side of the pictures it makes
    path: Path

    def scheduler(self, kind: str = "ddim"):
        """A fresh diffusers scheduler of `kind` (ddim|ddpm) on the model's noise schedule."""
        from diffusers import DDIMScheduler, DDPMScheduler

        cls = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler}.get(kind)
        if cls is None:
            raise ClipganError(f"unknown scheduler {kind!r}; use one of {', '.join(SCHEDULERS)}")
        known = inspect.signature(cls.__init__).parameters  # a DDPM config names keys DDIM lacks
        return cls(**{k: v for k, v in self.schedule.items() if k in known and k != "self"})


def _folders(path: Path) -> tuple[Path, Path | None]:
    """(UNet folder, scheduler config file or None) of a model folder or pipeline folder."""
    if (path / "unet" / "config.json").is_file():
        sched = path / "scheduler" / "scheduler_config.json"
        return path / "unet", sched if sched.is_file() else None
    sched = path / "scheduler_config.json"
    return path, sched if sched.is_file() else None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ClipganError(f"{path} is not a readable JSON file ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise ClipganError(f"{path} must hold a JSON object")
    return data


def check_config(config: dict, where: Path) -> None:
    """Refuse what this sampler cannot drive: other classes, class- or text-conditioned UNets."""
    name = config.get("_class_name", "UNet2DModel")
    if name != "UNet2DModel":
        raise ClipganError(f"{where} holds a {name}, not an unconditional UNet2DModel "
                           "(text-conditioned and latent models are not supported)")
    if config.get("class_embed_type") or config.get("num_class_embeds"):
        raise ClipganError(f"{where} is a class-conditional UNet2DModel; give an unconditional one")
    if config.get("in_channels", 3) != 3 or config.get("out_channels", 3) != 3:
        raise ClipganError(f"{where} works on {config.get('in_channels')} channels, not RGB pixels "
                           "(latent diffusion is not supported)")
    if not isinstance(config.get("sample_size"), int):
        raise ClipganError(f"{where}: config.json has no whole-number sample_size")


def load_diffusion(path: str | Path, device: torch.device | str = "cpu") -> DiffusionModel:
    """The UNet (eval mode, frozen) and noise schedule in the diffusers folder `path`."""
    from diffusers import UNet2DModel

    path = Path(path).expanduser()
    if not path.is_dir():
        raise ClipganError(f"no diffusion model folder at {path}")
    folder, sched_file = _folders(path)
    if not (folder / "config.json").is_file():
        raise ClipganError(f"{folder} has no config.json: not a diffusers model folder")
    config = _read_json(folder / "config.json")
    check_config(config, folder)
    if not (folder / WEIGHTS).is_file():
        pickled = " (only pickled .bin weights, which clipgan never loads)" if any(folder.glob("*.bin")) else ""
        raise ClipganError(f"{folder} has no {WEIGHTS}{pickled}")
    schedule = _read_json(sched_file) if sched_file else dict(DEFAULT_SCHEDULE)
    if schedule.get("prediction_type", "epsilon") not in ("epsilon", "v_prediction", "sample"):
        raise ClipganError(f"{sched_file}: unsupported prediction_type {schedule['prediction_type']!r}")
    if "timesteps" in schedule and "num_train_timesteps" not in schedule:  # the oldest google/ddpm-* files
        schedule["num_train_timesteps"] = schedule["timesteps"]
    try:
        unet = UNet2DModel.from_pretrained(folder, use_safetensors=True, local_files_only=True,
                                           low_cpu_mem_usage=False)  # True wants `accelerate`
    except Exception as e:  # corrupt or truncated safetensors, shapes that do not fit the config
        raise ClipganError(f"could not load the UNet in {folder}: {_first_line(e)}") from None
    unet = unet.to(device).eval().requires_grad_(False)
    return DiffusionModel(unet, schedule, int(config["sample_size"]), path)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]
