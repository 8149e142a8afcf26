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


def model_key(s: Settings) -> tuple:
    """What names the models a run of `s` loads: two runs with equal keys can share them."""
    from clipgan.runsetup import contrast_clips

    drawer = ("diffusion", s.diffusion) if s.image_model == "diffusion" else (s.vqgan, s.vqgan_config, s.vqgan_checkpoint)
    return (*drawer, tuple(s.clip), contrast_clips(s), s.device, s.trust_checkpoint)


def load_models_for(s: Settings):
    """The models a run of `s` draws with: the UNet and CLIPs for diffusion, else the VQGAN and CLIPs."""
    if s.image_model == "diffusion":
        from clipgan.diffuse import load_diffusion_models

        return load_diffusion_models(s)
    from clipgan.pipeline import load_models

    return load_models(s)


def morph(prompts, options=None, *, settings: Settings, models=None, callback: Callable | None = None):
    """A morph's frames with the settings' image model (`animate.MorphOptions`, default ones if None).
    Diffusion denoises every frame from slerped noise, guided by the blended prompts, in
    `keyframe_steps` (else `settings.iterations`) steps; mode, steps per frame, easing and anchor
    belong to the optimized morph (`animate.morph`) only."""
    from clipgan.animate import MorphOptions

    o = options or MorphOptions()
    o.validate()
    if settings.image_model == "diffusion":
        from clipgan.diffuse import morph_frames

        s = settings.replace(iterations=o.keyframe_steps) if o.keyframe_steps else settings
        return morph_frames(list(prompts), o.frames_per_transition, loop=o.loop, models=models, settings=s,
                            callback=callback)
    import dataclasses

    from clipgan import animate

    return animate.morph(prompts, settings=settings, models=models, callback=callback, **dataclasses.asdict(o))


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
