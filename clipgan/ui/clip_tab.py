"""The CLIP tab: pictures (uploaded or from a folder) against prompts as a table and a bar chart,
and a folder searched by a text query, best first. Scores are `clipgan.score.score`'s cosines."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from clipgan.config import Settings
from clipgan.errors import ClipganError
from clipgan.ui.common import DEVICE, Context, model_choices, page_errors
from clipgan.ui.forms import lines

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
SEARCH_RESULTS = 12  # pictures shown by a search unless told otherwise


def folder_images(folder: str | None) -> list[Path]:
    """The pictures directly inside `folder`, by name."""
    if not folder or not folder.strip():
        return []
    path = Path(folder.strip()).expanduser()
    if not path.is_dir():
        raise ClipganError(f"not a folder: {folder.strip()}")
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise ClipganError(f"no pictures ({', '.join(IMAGE_SUFFIXES)}) in {path}")
    return found


def similarity_rows(ctx: Context, images: list[Path], prompts: list[str], clip: list[str], crops: bool) -> list[dict]:
    """[{image, prompt, score}] best first; images are named by file name."""
    from clipgan.score import load_perceptors, score

    if not images:
        raise ClipganError("give pictures: upload some or name a folder")
    if not prompts:
        raise ClipganError("give at least one prompt")
    clip = list(clip or Settings().clip)
    device = Settings().device
    perceptors = ctx.perceptors.get((tuple(clip), device), lambda: load_perceptors(clip, device=device))
    rows = score([str(p) for p in images], prompts, perceptors=perceptors, crops=crops)
    return [{"image": Path(r.image).name, "prompt": r.prompt, "score": round(r.score, 4), "path": r.image} for r in rows]


def build(ctx: Context) -> None:
    import pandas as pd

    clips = model_choices()[1]
    clip = gr.Dropdown(clips, value=list(Settings().clip), label="CLIP", multiselect=True, allow_custom_value=True)
    with gr.Tab("Similarity"):
        with gr.Row():
            uploads = gr.File(label="Pictures", file_count="multiple", file_types=["image"], type="filepath",
                              height=140, elem_id="clip-files")
            with gr.Column():
                folder = gr.Textbox(label="…or a folder of pictures", elem_id="clip-folder")
                prompts = gr.Textbox(label="Prompts (one per line)", lines=3, elem_id="clip-prompts")
                crops = gr.Checkbox(False, label="Also score centre and corner crops (steadier for detail)")
        compare = gr.Button("Compare", variant="primary", elem_id="clip-compare")
        table = gr.Dataframe(headers=["image", "prompt", "score"], label="Similarity (cosine), best first",
                             interactive=False, elem_id="clip-table")
        chart = gr.BarPlot(x="pair", y="score", color="prompt", label="Similarity", sort="-y", elem_id="clip-chart",
                           x_label_angle=-30)
    with gr.Tab("Search a folder"):
        with gr.Row():
            search_folder = gr.Textbox(label="Folder of pictures", elem_id="search-folder")
            query = gr.Textbox(label="Query", elem_id="search-query")
            count = gr.Number(SEARCH_RESULTS, label="Show the best", precision=0, minimum=1)
        search = gr.Button("Search", variant="primary", elem_id="search")
        gallery = gr.Gallery(label="Best first", columns=6, height=320, elem_id="search-gallery",
                             elem_classes=["pixelated"])
        found = gr.Dataframe(headers=["image", "score"], interactive=False, elem_id="search-table")

    @page_errors
    def run_compare(files, folder_text, prompt_text, clip_names, use_crops):
        images = [Path(f) for f in files or []] + folder_images(folder_text)
        rows = similarity_rows(ctx, images, lines(prompt_text), clip_names, use_crops)
        frame = pd.DataFrame([{k: r[k] for k in ("image", "prompt", "score")} for r in rows])
        plot = frame.assign(pair=[f"{r['image']} · {r['prompt']}" for r in rows])
        return frame, plot

    @page_errors
    def run_search(folder_text, query_text, n, clip_names):
        if not (query_text or "").strip():
            raise ClipganError("type a query")
        rows = similarity_rows(ctx, folder_images(folder_text) or _need_folder(), [query_text.strip()], clip_names, False)
        best = rows[: max(1, int(n or SEARCH_RESULTS))]
        from clipgan.io import load_rgb  # pictures, not paths: gradio serves only files under its own folders

        return ([(load_rgb(r["path"]), f"{r['score']:.3f} · {r['image']}") for r in best],
                pd.DataFrame([{"image": r["image"], "score": r["score"]} for r in best]))

    compare.click(run_compare, [uploads, folder, prompts, clip, crops], [table, chart], concurrency_id=DEVICE)
    search.click(run_search, [search_folder, query, count, clip], [gallery, found], concurrency_id=DEVICE)


def _need_folder():
    raise ClipganError("name a folder of pictures to search")
