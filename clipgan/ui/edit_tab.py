"""The Edit tab: inpaint (draw the mask on the picture), outpaint with margins, upscale; each
through `clipgan.edit`, with previews, Stop and a PNG download like Generate's."""

from __future__ import annotations

import inspect

import gradio as gr

from clipgan.config import UPSCALE_STEPS, Settings
from clipgan.edit import SIDES, upscale
from clipgan.errors import ClipganError
from clipgan.run import load_models_for, model_key
from clipgan.ui.common import DEVICE, Context, follow, page_errors, run_settings, session, settings_row, stopper
from clipgan.ui.forms import lines
from clipgan.ui.runs import keep_upload, save_result, stream

MARGIN = 16  # px added on a side by default when outpainting
UPSCALE_FACTOR = inspect.signature(upscale).parameters["factor"].default  # the library's own default


def editor_mask(value: dict | None):
    """(picture, mask) from gr.ImageEditor's value: what was painted on any layer is the mask (white)."""
    from PIL import Image, ImageChops

    if not value or value.get("background") is None:
        raise ClipganError("upload a picture first")
    picture = value["background"].convert("RGB")
    mask = Image.new("L", picture.size, 0)
    for layer in value.get("layers") or []:
        alpha = layer.convert("RGBA").getchannel("A").resize(picture.size)
        mask = ImageChops.lighter(mask, alpha.point(lambda a: 255 if a > 0 else 0))
    if not mask.getbbox():
        raise ClipganError("paint over the part to regenerate first (the mask is empty)")
    return picture, mask


def result_panel(prefix: str):
    with gr.Column(scale=2):
        picture = gr.Image(label="Result", type="pil", interactive=False, height=320, elem_id=f"{prefix}-picture",
                           elem_classes=["pixelated"])
        status = gr.Markdown("", elem_id=f"{prefix}-status")
        download = gr.DownloadButton("Download PNG (settings inside)", visible=False, elem_id=f"{prefix}-download")
    return picture, status, download


def build(ctx: Context) -> None:
    d = Settings()
    prompts = gr.Textbox(label="Prompts, one per line (what the new part should show)", lines=2, elem_id="edit-prompts")
    common = settings_row(d, "edit")
    stop = gr.Button("Stop (keep the picture so far)", variant="stop")
    stop.click(stopper(ctx), queue=False)

    def runner(kind: str, picture, status, download):
        """A handler for one kind of edit: `work(values, s, models)` -> run(callback) -> Result."""
        @page_errors
        def handler(data: dict, request: gr.Request, progress=gr.Progress()):
            from clipgan.pipeline import draw_seed

            s = run_settings({k: data[v] for k, v in common.items()}, prompts=lines(data[prompts]))
            s = s if s.seed is not None else s.replace(seed=draw_seed())
            if s.image_model == "diffusion" and kind != "inpaint":
                raise ClipganError(f"{kind} draws with the VQGAN: choose the image model vqgan (diffusion inpaints only)")
            run, total = kinds[kind](data, s)
            flag = ctx.stops.fresh(session(request))
            yield {status: "loading models…", download: gr.update(visible=False)}
            models = ctx.models.get(model_key(s), lambda: load_models_for(s))
            end = yield from follow(stream(lambda cb: run(models, cb), flag, total), total, progress,
                                    picture, status)
            if end.kind == "stopped":
                if end.image is None:
                    yield {status: "stopped before the first step"}
                    return
                image, settings, note = end.image, s, f"stopped at step {end.step} / {total}"
            else:
                image, settings, note = end.value.image, end.value.settings, f"done, seed {end.value.settings.seed}"
            path = save_result(image, settings, ctx.outdir)
            yield {picture: image, status: f"{note} · saved {path.name}", download: gr.update(value=str(path), visible=True)}
        return handler

    kinds = {}
    with gr.Tab("Inpaint"):
        with gr.Row():
            with gr.Column(scale=3):
                editor = gr.ImageEditor(type="pil", label="Picture: paint over what to regenerate", elem_id="inpaint-editor",
                                        brush=gr.Brush(colors=["#ffffff"], color_mode="fixed", default_size=6), height=360)
                feather = gr.Number(d.feather, label="Seam (px)", precision=0, minimum=0, elem_id="inpaint-feather")
                go_in = gr.Button("Inpaint", variant="primary", elem_id="inpaint-run")
            out_in = result_panel("inpaint")

    def inpaint_work(data, s):
        from clipgan.edit import inpaint

        picture, mask = editor_mask(data[editor])
        folder = ctx.outdir / "uploads"
        folder.mkdir(exist_ok=True)
        picture_path, mask_path = folder / f"inpaint-{s.seed}.png", folder / f"inpaint-{s.seed}-mask.png"
        picture.save(picture_path)
        mask.save(mask_path)  # files, so that the result's settings name them and can be rerun
        s = s.replace(feather=int(data[feather] or 0))
        if s.image_model == "diffusion":  # the UNet redraws the mask at its own size, the rest kept at every step
            import clipgan
            from clipgan.run import total_steps

            s = s.replace(init_image=str(picture_path), mask=str(mask_path))
            return (lambda models, cb: clipgan.generate(settings=s, models=models, callback=cb)), total_steps(s)
        return (lambda models, cb: inpaint(s.prompts, str(picture_path), str(mask_path), models=models, callback=cb,
                                           settings=s)), s.iterations
    kinds["inpaint"] = inpaint_work

    with gr.Tab("Outpaint"):
        with gr.Row():
            with gr.Column(scale=3):
                source_out = gr.Image(label="Picture", type="filepath", height=240, elem_id="outpaint-source")
                with gr.Row():
                    margins = {side: gr.Number(MARGIN if side in ("left", "right") else 0, label=f"{side} (px)",
                                               precision=0, minimum=0) for side in SIDES}
                go_out = gr.Button("Outpaint", variant="primary", elem_id="outpaint-run")
            out_out = result_panel("outpaint")

    def outpaint_work(data, s):
        from clipgan.edit import check_extend, outpaint

        if not data[source_out]:
            raise ClipganError("upload a picture first")
        extend = check_extend({side: int(data[margins[side]] or 0) for side in SIDES})
        source = keep_upload(data[source_out], ctx.outdir)
        return (lambda models, cb: outpaint(source, s.prompts, extend=extend, models=models, callback=cb,
                                            settings=s)), s.iterations
    kinds["outpaint"] = outpaint_work

    with gr.Tab("Upscale"):
        with gr.Row():
            with gr.Column(scale=3):
                source_up = gr.Image(label="Picture (prompts optional: without them it guides itself)", type="filepath",
                                     height=240, elem_id="upscale-source")
                with gr.Row():
                    factor = gr.Number(UPSCALE_FACTOR, label="Factor (>1)")
                    up_steps = gr.Number(UPSCALE_STEPS, label="Refinement steps", precision=0, minimum=1, elem_id="upscale-steps")
                go_up = gr.Button("Upscale", variant="primary", elem_id="upscale-run")
            out_up = result_panel("upscale")

    def upscale_work(data, s):
        if not data[source_up]:
            raise ClipganError("upload a picture first")
        source, steps = keep_upload(data[source_up], ctx.outdir), int(data[up_steps] or 0)
        return (lambda models, cb: upscale(source, s.prompts, factor=float(data[factor] or 0), steps=steps,
                                           models=models, callback=cb, settings=s)), steps
    kinds["upscale"] = upscale_work

    shared = {prompts, *common.values()}
    for button, inputs, panel, kind in ((go_in, {editor, feather}, out_in, "inpaint"),
                                        (go_out, set(margins.values()) | {source_out}, out_out, "outpaint"),
                                        (go_up, {source_up, factor, up_steps}, out_up, "upscale")):
        button.click(runner(kind, *panel), inputs=shared | inputs, outputs=list(panel), concurrency_id=DEVICE,
                     show_progress_on=[panel[1]])
