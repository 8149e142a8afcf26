"""The Colab notebook runs top to bottom on a CPU (quick mode: CLIPGAN_NOTEBOOK_FAST=1 picks the
bundled models, 64 px and a few steps) and leaves a picture, a morph video and links to both."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbclient
import numpy as np
import nbformat
from PIL import Image

from clipgan.models.registry import VQGAN_MODELS

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "clipgan_colab.ipynb"
FAST_SIZE, FAST_MORPH_FRAMES = 64, 5  # what the quick-mode cell sets: 2 prompts, 4 frames per transition


def read():
    return nbformat.read(NOTEBOOK, as_version=4)


def tagged(nb, tag: str) -> int:
    [index] = [i for i, c in enumerate(nb.cells) if tag in c.get("metadata", {}).get("tags", [])]
    return index


def params(nb) -> dict[str, str]:
    """NAME -> the text after #@param on the parameter cell's lines."""
    source = nb.cells[tagged(nb, "parameters")].source
    return dict(re.findall(r"^(\w+) = .*#@param\s*(.*)$", source, re.M))


def test_notebook_is_valid_and_clean():
    nb = read()
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "commit the notebook without outputs"
    install = next(c.source for c in nb.cells if c.cell_type == "code")
    assert 'REPO_URL = "https://' in install and 'find_spec("clipgan") is None' in install
    # the repository is named in one place, a form field of the install cell
    assert re.search(r'^REPO_URL = "https://[^"]+"  #@param \{type:"string"\}$', install, re.M)
    everywhere = "".join(c.source for c in nb.cells)
    assert everywhere.count("github.com") == 1 and "git+{REPO_URL}" in install
    assert "torch==" not in everywhere and "torch<" not in everywhere  # Colab keeps its own torch


def test_notebook_form_defaults_are_the_librarys():
    from clipgan.config import Optimizer, Settings

    form, defaults = params(read()), Settings()
    assert {"IMAGE_PROMPTS", "INIT_IMAGE", "INIT_WEIGHT", "UPLOAD_FILES", "LR", "OPTIMIZER", "CACHE_IN_DRIVE"} <= set(form)
    assert json.loads(form["OPTIMIZER"]) == [o.value for o in Optimizer]
    source = read().cells[tagged(read(), "parameters")].source
    values = dict(re.findall(r"^(\w+) = (.*?)  #@param", source, re.M))
    assert float(values["LR"]) == defaults.lr and json.loads(values["OPTIMIZER"]) == defaults.optimizer
    assert float(values["INIT_WEIGHT"]) == defaults.init_weight
    assert values["WIDTH"] == values["HEIGHT"] == "0"  # 0: the model's own size, as with no --size


def test_notebook_form_offers_known_models():
    nb = read()
    form = params(nb)
    assert {"USE_BUNDLED_MODELS", "PROMPTS", "WIDTH", "HEIGHT", "ITERATIONS", "SEED", "VQGAN_MODEL",
            "CLIP_MODEL"} <= set(form)
    vqgans = json.loads(form["VQGAN_MODEL"])
    assert vqgans and set(vqgans) <= set(VQGAN_MODELS)
    import open_clip

    known = {f"{arch}:{tag}" for arch, tag in open_clip.list_pretrained()}
    assert set(json.loads(form["CLIP_MODEL"])) <= known


def execute(tmp_path: Path, monkeypatch, inject: str | None = None, allow_errors: bool = False):
    """Runs the notebook in a fresh kernel whose working folder is tmp_path; returns it executed."""
    nb = read()
    if inject:
        nb.cells.insert(tagged(nb, "model-settings") + 1, nbformat.v4.new_code_cell(inject))
    monkeypatch.setenv("CLIPGAN_NOTEBOOK_FAST", "1")
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=allow_errors,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return nb


def check_results(nb, folder: Path) -> None:
    from clipgan.video import iter_frames

    [png] = folder.glob("outputs/clipgan-*.png")
    assert Image.open(png).size == (FAST_SIZE, FAST_SIZE)
    [mp4] = folder.glob("outputs/morph-*.mp4")
    frames = list(iter_frames(mp4))
    assert len(frames) == FAST_MORPH_FRAMES and frames[0].size == (FAST_SIZE, FAST_SIZE)

    def outputs(marker: str) -> list:
        [cell] = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
        return cell.outputs

    preview = [o for o in outputs("preview.update") if o.output_type == "display_data"]
    assert any("image/png" in o.data for o in preview), "the live preview ends on the picture"
    assert any("saved" in o.data.get("text/plain", "") for o in preview)
    [video] = [o for o in outputs("VideoWriter") if o.output_type == "execute_result"]
    assert "data:video/mp4;base64," in video.data["text/html"]
    links = [o.data.get("text/html", "") for o in outputs("FileLink") if o.output_type == "display_data"]
    assert any(png.name in link for link in links) and any(mp4.name in link for link in links)


def test_notebook_runs_with_tiny_models(tmp_path, monkeypatch, tiny_models):
    """The whole notebook, the bundled models swapped for the tiny random ones (a cell injected
    after the model choice), with a start image, an image prompt, lr, optimizer and a Drive folder
    set as a user would in the form."""
    (yaml_path, ckpt_path), (config, weights) = tiny_models["vq"], tiny_models["clip"]
    Image.new("RGB", (40, 40), "red").save(tmp_path / "start.png")
    Image.new("RGB", (40, 40), "blue").save(tmp_path / "style.png")
    (tmp_path / "MyDrive").mkdir()
    inject = (f"MODEL_SETTINGS = {{'vqgan_config': {str(yaml_path)!r}, 'vqgan_checkpoint': {str(ckpt_path)!r}, "
              f"'clip': [{f'{config}:{weights}'!r}]}}\n"
              f"INIT_IMAGE, IMAGE_PROMPTS, LR, OPTIMIZER = 'start.png', 'style.png:0.5', 0.05, 'adamw'\n"
              f"DRIVE_ROOT = Path({str(tmp_path / 'MyDrive')!r})")
    nb = execute(tmp_path, monkeypatch, inject)
    check_results(nb, tmp_path)
    [png] = tmp_path.glob("outputs/clipgan-*.png")
    stored = json.loads(Image.open(png).info["clipgan"])
    assert (stored["init_image"], stored["image_prompts"], stored["lr"], stored["optimizer"]) == (
        "start.png", ["style.png:0.5"], 0.05, "adamw")
    [cache] = [c for c in nb.cells if c.cell_type == "code" and "CLIPGAN_CHECKPOINTS" in c.source]
    printed = "".join(o.get("text", "") for o in cache.outputs)
    assert str(tmp_path / "MyDrive" / "clipgan-models" / "checkpoints") in printed  # downloads go to Drive


def test_notebook_runs_with_bundled_models(tmp_path, monkeypatch):
    check_results(execute(tmp_path, monkeypatch), tmp_path)


# Colab's Stop interrupts the kernel: a KeyboardInterrupt wherever the cell is. Raised here from inside
# the run (during generate's step 5, before morph's third frame), so the moment is the same every time.
STOP = """
import clipgan, clipgan.animate
_generate, _morph = clipgan.generate, clipgan.animate.morph

def _stopped_generate(*args, callback, **kwargs):
    def step(s):
        callback(s)
        if s.index == 5:
            raise KeyboardInterrupt
    return _generate(*args, callback=step, **kwargs)

def _stopped_morph(*args, **kwargs):
    for i, frame in enumerate(_morph(*args, **kwargs)):
        if i == 2:
            raise KeyboardInterrupt
        yield frame

clipgan.generate, clipgan.animate.morph = _stopped_generate, _stopped_morph
"""


def test_notebook_stop_keeps_the_work_and_the_cells_go_on(tmp_path, monkeypatch):
    import clipgan
    from clipgan.io import read_settings
    from clipgan.interrupt import load_state

    execute(tmp_path, monkeypatch, STOP, allow_errors=True)
    out = tmp_path / "outputs"
    [png], [state] = out.glob("clipgan-*.png"), out.glob("clipgan-*.state.pt")
    assert load_state(state)["next_step"] == 6  # the picture so far and where to go on
    morph_state = load_state(out / "morph-42.state.pt")
    assert len(morph_state["frames"]) == 2 and not (out / "morph-42.mp4").exists()

    nb = execute(tmp_path, monkeypatch)  # the same cells again, as a user would after Stop
    check_results(nb, tmp_path)  # the morph video: all 5 frames, none lost or doubled
    assert not list(out.glob("*.state.pt"))
    settings = clipgan.Settings.from_dict(read_settings(png))
    whole = clipgan.generate(settings=settings)  # the run the Stop interrupted, uninterrupted
    assert np.array_equal(np.asarray(Image.open(png)), np.asarray(whole.image))
