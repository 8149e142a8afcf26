"""The Generate tab: the form (defaults from Settings), a run with previews and Stop, and each
result with its settings, a PNG download and "use these settings again"."""

from __future__ import annotations

import json
import gradio as gr

from clipgan.config import (SCHEDULERS, Augment, CutMethod, CutSchedule, InitNoise, LrSchedule, Optimizer, Precision,
                            Settings, Switch)
from clipgan.run import load_models_for, model_key
from clipgan.ui import forms
from clipgan.ui.common import DEVICE, Context, diffusion_choices, follow, model_choices, page_errors, session, stopper
from clipgan.ui.runs import keep_upload, save_result, stream


def form(d: dict) -> dict[str, gr.components.Component]:
    """The form's components, keyed by Settings field (or forms.EXTRA) name, filled from `d`."""
    vqgans, clips = model_choices()
    c: dict = {}
    c["positive"] = gr.Textbox(d["positive"], label="Prompts", lines=3, elem_id="prompts",
                               placeholder="one per line: text[:weight[:stop]], e.g. a red circle on a blue background")
    c["negative"] = gr.Textbox(d["negative"], label="Negative prompts", lines=1, elem_id="negative",
                               placeholder="one per line: pushed away from (weight -1 unless given)")
    with gr.Row():
        c["image_prompt_files"] = gr.File(d["image_prompt_files"], label="Image prompts", file_count="multiple",
                                          file_types=["image"], type="filepath", height=140)
        c["init_image"] = gr.Image(d["init_image"], label="Init image", type="filepath", sources=["upload", "clipboard"], height=140)
    with gr.Row():
        c["width"] = gr.Number(d["width"], label="Width (0: the model's)", precision=0, minimum=0, elem_id="width")
        c["height"] = gr.Number(d["height"], label="Height (0: the model's)", precision=0, minimum=0, elem_id="height")
        c["iterations"] = gr.Number(d["iterations"], label="Steps", precision=0, minimum=1, elem_id="steps")
        c["seed"] = gr.Textbox(d["seed"], label="Seed (empty: random)", elem_id="seed")  # a Number shows 0 for none
    with gr.Row():
        c["image_model"] = gr.Dropdown(list(forms.FORM_IMAGE_MODELS), value=d["image_model"], label="Image model",
                                         elem_id="image-model")
        c["vqgan"] = gr.Dropdown(vqgans, value=d["vqgan"], label="VQGAN", allow_custom_value=True)
        c["clip"] = gr.Dropdown(clips, value=d["clip"], label="CLIP (several: an ensemble; or type ARCH:WEIGHTS)",
                                multiselect=True, allow_custom_value=True)
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            c["cutn"] = gr.Number(d["cutn"], label="Cutouts", precision=0, minimum=1, elem_id="cutn")
            c["cut_pow"] = gr.Number(d["cut_pow"], label="Cutout size power")
            c["lr"] = gr.Number(d["lr"], label="Learning rate")
            c["early_stop"] = gr.Number(d["early_stop"], label="Early stop: steps without progress (0: off)", precision=0,
                                        minimum=0)
            c["optimizer"] = gr.Dropdown([o.value for o in Optimizer], value=d["optimizer"], label="Optimizer")
            c["cut_method"] = gr.Dropdown([m.value for m in CutMethod], value=d["cut_method"], label="Cutouts: method")
            c["cut_schedule"] = gr.Dropdown([m.value for m in CutSchedule], value=d["cut_schedule"],
                                            label="Cutouts: schedule (ramp: fewer early)")
            c["lr_schedule"] = gr.Dropdown([m.value for m in LrSchedule], value=d["lr_schedule"],
                                           label="Learning rate: schedule")
        with gr.Row():
            c["noise_prompt_seeds"] = gr.Textbox(d["noise_prompt_seeds"], label="Noise prompts: seeds (1,2)")
            c["noise_prompt_weights"] = gr.Textbox(d["noise_prompt_weights"], label="Noise prompts: weights (0.5,1)")
            c["contrast"] = gr.Textbox(d["contrast"], label="Contrast: words set against each other (empty: the CLIP's own; none: off)")
            c["contrast_weight"] = gr.Number(d["contrast_weight"], label="Contrast weight", minimum=0)
            c["contrast_clip"] = gr.Textbox(d["contrast_clip"], label="Contrast CLIPs: pull only the contrast (empty: the "
                                            "CLIP's own partner; none: off)")
            c["compile"] = gr.Dropdown([w.value for w in Switch], value=d["compile"], label="torch.compile")
            c["cuda_graphs"] = gr.Dropdown([w.value for w in Switch], value=d["cuda_graphs"], label="CUDA graphs")
        c["augments"] = gr.CheckboxGroup([a.value for a in Augment], value=d["augments"], label="Augments")
        with gr.Row():
            c["init_noise"] = gr.Dropdown([n.value for n in InitNoise], value=d["init_noise"], label="Start (no init image)")
            c["init_weight"] = gr.Number(d["init_weight"], label="Init weight")
            c["tv_weight"] = gr.Number(d["tv_weight"], label="TV weight")
            c["change_prompt_every"] = gr.Number(d["change_prompt_every"], label='Steps per story part ("a ^ b")', precision=0)
        with gr.Row():
            c["upscale"] = gr.Number(d["upscale"], label="Upscale after (0: no)")
            c["upscale_steps"] = gr.Number(d["upscale_steps"], label="Upscale steps", precision=0)
            c["device"] = gr.Textbox(d["device"], label="Device (auto, cpu, cuda, cuda:N, mps)")
            c["precision"] = gr.Dropdown([p.value for p in Precision], value=d["precision"], label="Precision")
        with gr.Row():
            c["vqgan_config"] = gr.Textbox(d["vqgan_config"], label="VQGAN yaml (instead of a named VQGAN)")
            c["vqgan_checkpoint"] = gr.Textbox(d["vqgan_checkpoint"], label="VQGAN checkpoint")
            c["trust_checkpoint"] = gr.Checkbox(d["trust_checkpoint"], label="Trust checkpoints (full unpickling)")
            c["low_memory"] = gr.Checkbox(d["low_memory"], label="Low memory (slower)")
            c["strokes"] = gr.Number(d["strokes"], label="Strokes (image model strokes)", precision=0, minimum=1)
    with gr.Accordion("Diffusion (image model diffusion)", open=False):
        with gr.Row():
            c["diffusion"] = gr.Dropdown(diffusion_choices(), value=d["diffusion"], allow_custom_value=True,
                                         label="Diffusion model (or a diffusers UNet folder)", elem_id="diffusion")
            c["scheduler"] = gr.Dropdown(list(SCHEDULERS), value=d["scheduler"], label="Scheduler")
            c["guidance_scale"] = gr.Number(d["guidance_scale"], label="Guidance scale", minimum=0, elem_id="guidance")
            c["candidates"] = gr.Number(d["candidates"], label="Candidates (starting noises tried)", precision=0,
                                        minimum=1, elem_id="candidates")
            c["strength"] = gr.Number(d["strength"], label="Strength (with an init image; 1: from noise)")
    assert set(c) == set(forms.FORM_FIELDS) | set(forms.EXTRA), "every setting has a field"
    return c


# small pictures (the bundled models make 64 px) fill their frame, enlarged without blur
CSS = "#picture img, .pixelated img {width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated}"


def build(ctx: Context) -> None:
    with gr.Row():
        with gr.Column(scale=3):
            c = form(forms.defaults())
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="generate")
                stop = gr.Button("Stop (keep the picture so far)", variant="stop", elem_id="stop")
        with gr.Column(scale=2):
            picture = gr.Image(label="Picture", type="pil", interactive=False, elem_id="picture", format="png",
                               height=320)
            status = gr.Markdown("", elem_id="status")
            download = gr.DownloadButton("Download PNG (settings inside)", visible=False, elem_id="download")
            again = gr.Button("Use these settings again", visible=False, elem_id="again")
            with gr.Accordion("Settings of this picture", open=False):
                shown = gr.Code(None, language="json", interactive=False, elem_id="shown")
            loaded = gr.File(label="Load settings from a clipgan PNG", file_types=[".png", ".jpg", ".jpeg", ".webp"],
                             type="filepath", height=100, elem_id="load-png")
    last = gr.State(None)  # the settings dict of the latest result
    keys = list(c)

    @page_errors
    def generate(data: dict, request: gr.Request, progress=gr.Progress()):
        values = {k: data[c[k]] for k in keys}
        values["init_image"] = keep_upload(values["init_image"], ctx.outdir)
        values["image_prompt_files"] = [keep_upload(f, ctx.outdir) for f in values["image_prompt_files"] or []]
        s = forms.to_settings(values)
        from clipgan.pipeline import draw_seed
        from clipgan.run import first_steps, generate as run_generate, total_steps

        if s.seed is None:  # drawn here, so that a stopped run's picture carries it too
            s = s.replace(seed=draw_seed())
        total = total_steps(s)
        stop_flag = ctx.stops.fresh(session(request))
        yield {status: "loading models…", download: gr.update(visible=False), again: gr.update(visible=False)}
        models = ctx.models.get(model_key(s), lambda: load_models_for(s))
        events = stream(lambda cb: run_generate(settings=s, models=models, callback=cb), stop_flag, total)
        end = yield from follow(events, total, progress, picture, status)
        if end.kind == "stopped":
            if end.image is None:
                yield {status: "stopped before the first step"}
                return
            # the same run with only the steps done gives this picture again (for prompts without a story);
            # where none does (diffusion, schedules: steps that follow the run's length), the whole run's
            result_settings, image = first_steps(s, end.step) or s, end.image
            note = f"stopped at step {end.step} / {total}"
        else:
            result_settings, image = end.value.settings, end.value.image
            note = f"done: {end.step} steps, seed {result_settings.seed}"
        path = save_result(image, result_settings, ctx.outdir)
        settings_dict = result_settings.to_dict()
        yield {picture: image, status: f"{note} · saved {path.name}", last: settings_dict,
               shown: json.dumps(settings_dict, indent=1, sort_keys=True),
               download: gr.update(value=str(path), visible=True), again: gr.update(visible=True)}

    @page_errors
    def fill(settings_dict):
        if not settings_dict:
            raise gr.Error("no settings yet: generate a picture first")
        values = forms.form_values(Settings.from_dict(settings_dict))
        return [values[k] for k in keys]

    @page_errors
    def fill_from_png(path):
        from clipgan.io import read_settings

        if not path:
            return [gr.update() for _ in keys]
        return fill(read_settings(path))

    outputs = [picture, status, last, shown, download, again]
    run.click(generate, inputs=set(c.values()), outputs=outputs, concurrency_id=DEVICE, concurrency_limit=1,
              show_progress_on=[status])
    stop.click(stopper(ctx), queue=False)
    again.click(fill, inputs=last, outputs=[c[k] for k in keys], queue=False)
    loaded.upload(fill_from_png, inputs=loaded, outputs=[c[k] for k in keys], queue=False)

