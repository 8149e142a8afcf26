"""`generate(...)`: text (and image) prompts -> a picture, on the one run setup (clipgan.runsetup).

The names of the run setup are importable from here too, as before the image-model redesign.
"""

from __future__ import annotations

from typing import Callable

from clipgan.config import Settings, model_recipe
from clipgan.errors import ClipganError
from clipgan.optimize import Step
from clipgan.runsetup import (Models, Result, build_guides, check_resume, cpu_has_native_bf16,  # noqa: F401
                              default_size, draw_seed, fit_size, initial_model, initial_z, iterate_options,
                              load_models, noise_targets, plain_run, prepare, resolve_device, resolve_dtype, restore_rng,
                              resume_state, rng_state, run_loop, run_size, _vocabulary_notice)


def generate(
    prompts=(),
    *,
    models: Models | None = None,
    callback: Callable[[Step], None] | None = None,
    resume: dict | None = None,
    **settings,
) -> Result:
    """Text (and image) prompts -> picture. Keyword arguments are `Settings` fields.

    `callback(step)` sees every step (its rendered image included); pass `models` from
    `load_models` to reuse loaded models across calls; `resume` takes a `resume_state(...)`
    dict and finishes that run exactly as if it had never stopped.

    With `mask` (and `init_image`) the run inpaints; with `upscale` it ends with a refinement
    at the larger size (both `clipgan.edit` functions). A run that names no size takes its VQGAN's
    recipe (`config.model_recipe`: the bundled toy draws at 32 px and refines at 64).
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    base = settings.pop("settings", None) or Settings()
    if prompts:
        settings["prompts"] = list(prompts)
    s = model_recipe(base.replace(**settings))
    if s.image_model == "diffusion":  # clipgan.run.generate sends diffusion runs to clipgan.diffuse
        raise ClipganError("pipeline.generate optimizes image models; use clipgan.generate for image model 'diffusion'")
    if s.mask is not None or s.upscale is not None:
        from clipgan.edit import run_edit

        return run_edit(s, models=models, callback=callback, resume=resume)
    return plain_run(s, models=models, callback=callback, resume=resume)
