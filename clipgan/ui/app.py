"""The page: one tab per job, all on one queue so that one run at a time uses the device."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from clipgan.ui import HOST, PORT, clip_tab, edit_tab, generate_tab, morph_tab
from clipgan.ui.common import Context

MAX_QUEUE = 64  # waiting runs; more are refused with a message


def build_app(outdir: str | Path | None = None) -> gr.Blocks:
    """The web app; results, videos and kept uploads go to `outdir` (default: a new temp folder)."""
    folder = Path(outdir) if outdir else Path(tempfile.mkdtemp(prefix="clipgan-ui-"))
    folder.mkdir(parents=True, exist_ok=True)
    ctx = Context(folder)
    with gr.Blocks(title="clipgan", analytics_enabled=False) as demo:
        gr.Markdown("## clipgan — CLIP-guided VQGAN\nPictures are optimized step by step; "
                    f"results are saved in `{folder}`.")
        with gr.Tabs():
            with gr.Tab("Generate", id="generate"):
                generate_tab.build(ctx)
            with gr.Tab("Morph", id="morph"):
                morph_tab.build(ctx)
            with gr.Tab("Edit", id="edit"):
                edit_tab.build(ctx)
            with gr.Tab("CLIP", id="clip"):
                clip_tab.build(ctx)
    demo.queue(default_concurrency_limit=1, max_size=MAX_QUEUE)
    demo.clipgan_outdir = folder  # where launch() allows file serving from
    return demo


def theme() -> gr.themes.Base:
    """The default look with the system's fonts: the stock theme fetches fonts from the internet."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def launch(host: str = HOST, port: int = PORT, share: bool = False, outdir: str | Path | None = None,
           block: bool = True) -> gr.Blocks:
    demo = build_app(outdir)
    demo.launch(server_name=host, server_port=port, share=share, allowed_paths=[str(demo.clipgan_outdir)],
                prevent_thread_lock=not block, show_error=True, quiet=not block, theme=theme(), css=generate_tab.CSS)
    return demo
