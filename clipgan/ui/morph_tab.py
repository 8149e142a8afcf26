"""The Morph tab: two or more prompts -> a video played in the page (`clipgan.animate.morph`).
Stop ends the video at the frames made so far."""

from __future__ import annotations

import gradio as gr

from clipgan.animate import MODES, MorphOptions, morph_frame_count
from clipgan.config import DEFAULT_FPS, Settings
from clipgan.errors import ClipganError
from clipgan.run import load_models_for, model_key, morph
from clipgan.ui.common import DEVICE, Context, follow, page_errors, run_settings, session, settings_row, stopper
from clipgan.ui.forms import lines
from clipgan.ui.runs import Stopped, stem, stream, unique


def total_steps(prompts: int, o: MorphOptions, key_steps: int, image_model: str = "vqgan") -> int:
    """Steps the morph takes: each keyframe's, then each guided in-between frame's; with
    diffusion every frame is a whole denoising run of key_steps."""
    frames = morph_frame_count(prompts, o.frames_per_transition, o.loop)
    if image_model == "diffusion":
        return frames * key_steps
    return prompts * key_steps + ((frames - prompts) * o.steps_per_frame if o.mode == "guided" else 0)


def build(ctx: Context) -> None:
    d, o = Settings(), MorphOptions()
    with gr.Row():
        with gr.Column(scale=3):
            prompts = gr.Textbox(label="Prompts, one per line (two or more)", lines=3, elem_id="morph-prompts")
            with gr.Row():
                frames = gr.Number(o.frames_per_transition, label="Frames per transition", precision=0, minimum=1,
                                   elem_id="morph-frames")
                per_frame = gr.Number(o.steps_per_frame, label="Steps per in-between frame (VQGAN)", precision=0,
                                      minimum=1, elem_id="morph-per-frame")
                mode = gr.Dropdown(list(MODES), value=o.mode, label="Mode (VQGAN)")
                loop = gr.Checkbox(o.loop, label="Loop back to the first prompt")
            with gr.Row():
                width = gr.Number(d.size[0] if d.size else 0, label="Width (0: the model's)", precision=0, minimum=0)
                height = gr.Number(d.size[1] if d.size else 0, label="Height (0: the model's)", precision=0, minimum=0)
                fps = gr.Number(DEFAULT_FPS, label="Frames per second")
            common = settings_row(d, "morph")
            with gr.Row():
                run = gr.Button("Make the morph", variant="primary", elem_id="morph-run")
                stop = gr.Button("Stop (keep the frames so far)", variant="stop")
        with gr.Column(scale=2):
            preview = gr.Image(label="Latest step", type="pil", interactive=False, height=200, elem_classes=["pixelated"])
            video = gr.Video(label="Morph", autoplay=True, loop=True, interactive=False, elem_id="morph-video")
            status = gr.Markdown("", elem_id="morph-status")

    @page_errors
    def make(data: dict, request: gr.Request, progress=gr.Progress()):
        from clipgan.pipeline import draw_seed
        from clipgan.video import VideoWriter, check_fps

        texts = lines(data[prompts])
        if len(texts) < 2:
            raise ClipganError("a morph needs at least two prompts (one per line)")
        s = run_settings({k: data[v] for k, v in common.items()}, size=(int(data[width] or 0), int(data[height] or 0)) if data[width] or data[height] else None)
        s = s if s.seed is not None else s.replace(seed=draw_seed())
        opts = MorphOptions(frames_per_transition=int(data[frames] or 0), steps_per_frame=int(data[per_frame] or 0),
                            mode=data[mode], loop=bool(data[loop]))
        opts.validate()
        rate = check_fps(float(data[fps] or 0))
        total = total_steps(len(texts), opts, s.iterations, s.image_model)
        path = unique(ctx.outdir, f"morph-{stem(texts)}-{s.seed}", ".mp4")
        flag = ctx.stops.fresh(session(request))
        yield {status: "loading models…", video: None}
        models = ctx.models.get(model_key(s), lambda: load_models_for(s))

        def work(callback):
            kept = 0
            with VideoWriter(path, fps=rate) as writer:
                try:
                    for frame in morph(texts, opts, settings=s, models=models, callback=callback):
                        writer.append(frame.image)
                        kept += 1
                except Stopped:
                    if not kept:
                        raise
            return kept

        end = yield from follow(stream(work, flag, total), total, progress, preview, status)
        if end.kind == "stopped":
            yield {status: "stopped before the first frame"}
            return
        expected = morph_frame_count(len(texts), opts.frames_per_transition, opts.loop)
        yield {video: str(path), status: f"{end.value} of {expected} frames at {rate:g} fps, seed {s.seed} · saved {path.name}"}

    run.click(make, inputs={prompts, frames, per_frame, mode, loop, width, height, fps, *common.values()},
              outputs=[preview, video, status], concurrency_id=DEVICE, show_progress_on=[status])
    stop.click(stopper(ctx), queue=False)
