"""`clipgan.generate`: one entry for every image model. The optimized ones (vqgan, pixels, fft,
strokes) run in clipgan.pipeline, diffusion in clipgan.diffuse; both take the same Settings and return the same Result.
(This dispatch lives here, above both, so that neither imports the other.)"""

from __future__ import annotations

from typing import Callable

from clipgan.config import Settings, model_recipe


def total_steps(s: Settings) -> int:
    """The steps a run of `s` reports to its callback: an upscale's refinement counts on; a diffusion
    run from an init image skips the first ones."""
    if s.image_model == "diffusion":
        from clipgan.diffuse import denoising_steps

        return denoising_steps(s)
    s = model_recipe(s)
    return s.iterations + (s.upscale_steps if s.upscale is not None else 0)


def first_steps(s: Settings, steps: int) -> Settings | None:
    """Settings whose whole run is the first `steps` steps of the run of `s` (a stopped run's picture,
    rerun): fewer iterations, or, within an upscale's refinement, fewer refinement steps. None where
    no such settings exist: diffusion, and lr or cutout schedules, whose steps follow the run's length."""
    from clipgan.schedules import scheduled

    if s.image_model == "diffusion" or scheduled(s):
        return None
    s = model_recipe(s)
    if s.upscale is not None and steps > s.iterations:
        return s.replace(upscale_steps=min(steps - s.iterations, s.upscale_steps))
    return s.replace(iterations=max(1, min(steps, s.iterations)), upscale=None)


def generate(prompts=(), *, models=None, callback: Callable | None = None, resume: dict | None = None, **settings):
    """Text (and image) prompts -> picture; keyword arguments are `Settings` fields (see
    `pipeline.generate`). With image_model "diffusion", `models` comes from
    `clipgan.diffuse.load_diffusion_models` and the callback sees `DiffusionStep`s."""
    base = settings.get("settings") or Settings()
    if settings.get("image_model", base.image_model) != "diffusion":
        from clipgan.pipeline import generate as generate_vqgan

        return generate_vqgan(prompts, models=models, callback=callback, resume=resume, **settings)
    from clipgan.diffuse import generate_diffusion

    settings.pop("settings", None)
    if isinstance(prompts, str):
        prompts = [prompts]
    if prompts:
        settings["prompts"] = list(prompts)
    return generate_diffusion(base.replace(**settings), models=models, callback=callback, resume=resume)
