"""The web app's parts without a browser: the form <-> Settings mapping, a run streamed with
previews and Stop, results saved with settings, the mask drawn in the editor, the CLIP tab's
rows. Real models (tiny random ones, or the bundled ones), no mocks."""

from __future__ import annotations

import threading

import pytest
from PIL import Image

pytest.importorskip("gradio", reason="the web app needs the ui extra (pip install 'clipgan[ui]')")

from clipgan.config import Settings  # noqa: E402
from clipgan.errors import ClipganError  # noqa: E402
from clipgan.ui import forms, runs  # noqa: E402


def test_form_defaults_are_settings_defaults():
    d, s = forms.defaults(), Settings()
    assert forms.to_settings(d) == s.replace(prompts=[])
    assert (d["width"], d["height"], d["iterations"], d["cutn"], d["lr"]) == (0, 0, s.iterations, s.cutn, s.lr)
    assert s.size is None  # 0 x 0 in the form: the model's own size


def test_form_round_trip_with_negative_prompts_and_images(tmp_path):
    s = Settings().replace(prompts=["a red circle:2", "a dog:-1", "blue:-0.5", "a ^ b"], image_prompts=["x.png"],
                           size=(96, 32), seed=7, upscale=2.0, clip=["toy", "ViT-B-32:openai"], augments=["flip"])
    values = forms.form_values(s)
    assert values["negative"] == "a dog\nblue:0.5"
    assert values["positive"] == "a red circle:2\na ^ b"
    assert forms.to_settings(values).to_dict() == s.replace(prompts=["a red circle:2", "a ^ b", "a dog:-1", "blue:-0.5"]).to_dict()


def test_form_shows_the_models_own_recipe_as_the_models_size():
    """A default toy picture's settings (drawn at 32, refined at 64) fill the form as 0 x 0 and no
    upscale: rerun, the recipe comes back; switched to diffusion, no upscale is left behind."""
    from clipgan.config import model_recipe

    ran = model_recipe(Settings().replace(prompts=["a red circle"], seed=3))
    values = forms.form_values(ran)
    assert (values["width"], values["height"], values["upscale"]) == (0, 0, 0)
    assert model_recipe(forms.to_settings(values)) == ran
    chosen = ran.replace(upscale=4.0)  # not the recipe: kept as it ran
    assert (forms.form_values(chosen)["width"], forms.form_values(chosen)["upscale"]) == (32, 4.0)


@pytest.mark.parametrize("line, expected", [("a cat", "a cat:-1"), ("a cat:2", "a cat:-2"), ("a cat:-3", "a cat:-3"),
                                            ("sky:1:0.2", "sky:-1:0.2")])
def test_negative_prompt_lines(line, expected):
    assert forms.negative_prompt(line) == expected


@pytest.mark.parametrize("change, message", [({"width": None}, "width and height"), ({"iterations": 2.5}, "whole number"),
                                             ({"iterations": 0}, "at least 1"), ({"image_model": "voxels"}, "unknown image-model"),
                                             ({"optimizer": "nope"}, "unknown optimizer")])
def test_bad_form_values_are_one_line_errors(change, message):
    values = {**forms.defaults(), "positive": "a red circle", **change}
    with pytest.raises(ClipganError, match=message):
        forms.to_settings(values)


def test_stream_previews_then_result_equal_to_a_plain_run(tiny_loaded, one_thread):
    from clipgan.pipeline import generate

    models, kw = tiny_loaded
    s = Settings(**kw).replace(prompts=["a red circle"], iterations=6)
    events = list(runs.stream(lambda cb: generate(settings=s, models=models, callback=cb), threading.Event(), 6, every=2))
    steps = [e for e in events if e.kind == "step"]
    assert [e.step for e in steps] == [1, 2, 3, 4, 5, 6]
    assert [e.step for e in steps if e.image is not None] == [1, 2, 4, 6]  # the first, then every 2nd
    assert events[-1].kind == "done"
    plain = generate(settings=s, models=models)
    assert events[-1].value.image.tobytes() == plain.image.tobytes()
    assert steps[-1].image.tobytes() == plain.image.tobytes()  # the last preview is the picture


def test_stop_keeps_the_picture_so_far_and_its_settings_rerun_it(tiny_loaded, one_thread, tmp_path):
    from clipgan.io import read_settings
    from clipgan.pipeline import generate

    models, kw = tiny_loaded
    s = Settings(**kw).replace(prompts=["a red circle"], iterations=50)
    flag, seen = threading.Event(), []
    for event in runs.stream(lambda cb: generate(settings=s, models=models, callback=cb), flag, 50, every=1):
        seen.append(event)
        if event.kind == "step" and event.step == 3:
            flag.set()  # what the Stop button does
    end = seen[-1]
    assert end.kind == "stopped" and end.step == 3
    path = runs.save_result(end.image, s.replace(iterations=end.step), tmp_path)
    again = generate(settings=Settings.from_dict(read_settings(path)), models=models)
    assert again.image.tobytes() == Image.open(path).convert("RGB").tobytes()


def test_a_closed_page_ends_its_run(tiny_loaded, one_thread):
    from clipgan.pipeline import generate

    models, kw = tiny_loaded
    s = Settings(**kw).replace(prompts=["a red circle"], iterations=10_000)
    flag = threading.Event()
    events = runs.stream(lambda cb: generate(settings=s, models=models, callback=cb), flag, 10_000)
    assert next(events).kind == "step"
    events.close()  # what gradio does with a handler whose visitor left
    assert flag.is_set() and not any(t.name == "clipgan-ui-run" for t in threading.enumerate())


def test_errors_and_notices_come_back_as_events(tiny_loaded, one_thread):
    from clipgan.pipeline import generate

    models, kw = tiny_loaded
    bad = Settings(**kw)  # no prompt at all
    events = list(runs.stream(lambda cb: generate(settings=bad, models=models, callback=cb), threading.Event(), 3))
    assert events[-1].kind == "error" and isinstance(events[-1].value, ClipganError)
    odd = Settings(**kw).replace(prompts=["a red circle"], size=(33, 33), iterations=1)  # rounded, with a notice
    events = list(runs.stream(lambda cb: generate(settings=odd, models=models, callback=cb), threading.Event(), 1))
    assert any(e.kind == "note" and "rounded" in e.value for e in events)
    assert events[-1].kind == "done"


def test_a_numeric_error_keeps_the_last_good_picture(tiny_loaded, one_thread):
    from clipgan.errors import NumericError
    from clipgan.pipeline import generate
    from clipgan.ui.common import follow

    models, kw = tiny_loaded
    s = Settings(**kw).replace(prompts=["a red circle"], iterations=5)

    def run(cb):  # a run that meets NaN after its 2nd step, as iterate() reports it
        def step(st):
            cb(st)
            if st.index == 1:
                raise NumericError("the loss became nan at step 2")
        return generate(settings=s, models=models, callback=step)

    events = list(runs.stream(run, threading.Event(), 5, every=1))
    assert events[-1].kind == "error" and events[-1].image.tobytes() == events[-2].image.tobytes()
    shown = []
    end = yield_from(follow(iter(events), 5, lambda *a, **k: None, "picture", "status"), shown)
    assert end.kind == "stopped" and end.step == 2 and len(shown) == 2


def test_form_carries_the_diffusion_settings():
    s = Settings(prompts=["a red circle"], image_model="diffusion", diffusion="some/unet", scheduler="ddpm",
                 guidance_scale=12.5, candidates=2, strength=0.3, init_image="sketch.png")
    values = forms.form_values(s)
    assert "diffusion" in forms.FORM_IMAGE_MODELS
    assert forms.to_settings({**values, "candidates": 2.0}) == s  # gr.Number sends floats
    with pytest.raises(ClipganError, match="candidates must be a whole number"):
        forms.to_settings({**values, "candidates": 2.5})


def test_a_diffusion_run_streams_from_the_models_the_form_names(unet_dir, tiny_settings, one_thread, tmp_path):
    """The Generate tab's path for --image-model diffusion: its own models (cached apart from the
    VQGAN's), a run streamed with previews, a picture equal to the API's; from an init image the
    step count is the part of the schedule the run makes."""
    import clipgan
    from clipgan.run import load_models_for, model_key, total_steps

    s = Settings(prompts=["a red circle"], image_model="diffusion", diffusion=str(unet_dir), clip=tiny_settings["clip"],
                 cutn=2, device="cpu", seed=3, iterations=4, candidates=2)
    assert model_key(s) != model_key(s.replace(image_model="vqgan"))
    assert model_key(s) != model_key(s.replace(diffusion=str(tmp_path)))
    assert model_key(s) == model_key(s.replace(vqgan="another"))  # the VQGAN plays no part
    models = load_models_for(s)
    assert models.diffusion.size == 32
    total = total_steps(s)
    events = list(runs.stream(lambda cb: clipgan.generate(settings=s, models=models, callback=cb), threading.Event(), total))
    assert [e.step for e in events if e.kind == "step"] == [1, 2, 3, 4] and events[-1].kind == "done"
    assert events[-1].value.image.tobytes() == clipgan.generate(settings=s, models=models).image.tobytes()
    Image.new("RGB", (32, 32), "red").save(tmp_path / "init.png")
    from_picture = s.replace(init_image=str(tmp_path / "init.png"), strength=0.5)
    seen = []
    clipgan.generate(settings=from_picture, models=models, callback=seen.append)
    assert total_steps(from_picture) == len(seen) == 2
    assert total_steps(from_picture.replace(mask="mask.png")) == 4  # inpainting runs the whole schedule


def yield_from(gen, into: list):
    """Runs a handler-style generator to its end: what it yields goes `into`, its return value comes back."""
    while True:
        try:
            into.append(next(gen))
        except StopIteration as stop:
            return stop.value


def test_save_result_never_overwrites(tmp_path):
    s = Settings(prompts=["A red circle!"], seed=3)
    image = Image.new("RGB", (8, 8), "red")
    first, second = runs.save_result(image, s, tmp_path), runs.save_result(image, s, tmp_path)
    assert (first.name, second.name) == ("a-red-circle-3.png", "a-red-circle-3-1.png")


def test_keep_upload_names_files_by_content(tmp_path):
    a, b = tmp_path / "a.PNG", tmp_path / "b.png"
    Image.new("RGB", (4, 4), "red").save(a)
    Image.new("RGB", (4, 4), "blue").save(b)
    kept = [runs.keep_upload(str(p), tmp_path / "app") for p in (a, b, a)]
    assert kept[0] == kept[2] != kept[1] and kept[0].endswith(".png")
    assert runs.keep_upload(None, tmp_path) is None


def test_stop_flags_are_per_session():
    stops = runs.Stops()
    mine, theirs = stops.fresh("me"), stops.fresh("them")
    assert stops.stop("me") and mine.is_set() and not theirs.is_set()
    assert not stops.stop("nobody")


def test_editor_mask_is_what_was_painted():
    from clipgan.ui.edit_tab import editor_mask

    picture = Image.new("RGBA", (20, 10), "blue")
    layer = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (2, 3, 6, 5))
    got_picture, mask = editor_mask({"background": picture, "layers": [layer], "composite": picture})
    assert got_picture.mode == "RGB" and mask.size == (20, 10)
    assert mask.getbbox() == (2, 3, 6, 5) and set(mask.tobytes()) == {0, 255}
    with pytest.raises(ClipganError, match="mask is empty"):
        editor_mask({"background": picture, "layers": [Image.new("RGBA", (20, 10))]})
    with pytest.raises(ClipganError, match="upload a picture"):
        editor_mask({"background": None, "layers": []})


def test_morph_total_steps_counts_the_callbacks(tiny_loaded, one_thread):
    from clipgan.animate import MorphOptions, morph
    from clipgan.ui.morph_tab import total_steps

    models, kw = tiny_loaded
    for loop in (False, True):
        o = MorphOptions(frames_per_transition=3, steps_per_frame=2, loop=loop)
        count = []
        frames = list(morph(["red", "blue"], models=models, callback=count.append, settings=Settings(**kw),
                            frames_per_transition=3, steps_per_frame=2, loop=loop))
        assert len(count) == total_steps(2, o, kw["iterations"]) and frames


def test_a_diffusion_morph_from_the_row_counts_its_steps_and_frames(unet_dir, tiny_settings, one_thread):
    """The Morph tab with image model "diffusion": the row's values name the UNet, every frame is a
    whole denoising run (mode and steps per frame are the VQGAN morph's), and the page's step total
    is what the callback sees."""
    from clipgan.animate import MorphOptions, morph_frame_count
    from clipgan.ui.common import run_settings
    from clipgan.run import load_models_for, morph
    from clipgan.ui.morph_tab import total_steps

    s = run_settings({"iterations": 3.0, "seed": "5", "cutn": 2.0, "vqgan": "ignored", "clip": list(tiny_settings["clip"]),
                      "image_model": "diffusion", "diffusion": str(unet_dir)})
    assert (s.image_model, s.diffusion, s.iterations, s.seed) == ("diffusion", str(unet_dir), 3, 5)
    models = load_models_for(s)
    for loop in (False, True):
        o = MorphOptions(frames_per_transition=2, steps_per_frame=7, loop=loop)
        count = []
        frames = list(morph(["red", "blue"], o, settings=s, models=models, callback=count.append))
        assert len(frames) == morph_frame_count(2, 2, loop)
        assert len(count) == total_steps(2, o, 3, "diffusion") == 3 * len(frames)
    assert run_settings({"iterations": 3.0, "seed": "", "cutn": 2.0, "vqgan": "v", "clip": []}).image_model == "vqgan"


def test_clip_rows_rank_the_matching_picture_first(tmp_path):
    from clipgan.io import to_pil
    from clipgan.toyworld.render import Spec, render
    from clipgan.ui.clip_tab import folder_images, similarity_rows
    from clipgan.ui.common import Context

    for name, spec in (("circle.png", Spec("circle", "red", "blue")), ("square.png", Spec("square", "green", "yellow"))):
        to_pil(render(spec, 64)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a picture")
    images = folder_images(str(tmp_path))
    assert [p.name for p in images] == ["circle.png", "square.png"]
    rows = similarity_rows(Context(tmp_path), images, ["a green square on a yellow background"], ["toy"], False)
    assert [r["image"] for r in rows] == ["square.png", "circle.png"] and rows[0]["score"] > rows[1]["score"]
    with pytest.raises(ClipganError, match="not a folder"):
        folder_images(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClipganError, match="no pictures"):
        folder_images(str(tmp_path / "empty"))


def test_cli_ui_refuses_bad_options_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from clipgan.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["ui", "--port", "70000"])
    assert r.exit_code == 2 and "port must be between 1 and 65535" in r.output
    (tmp_path / "file").write_text("x")
    r = runner.invoke(app, ["ui", "--outdir", str(tmp_path / "file")])
    assert r.exit_code == 2 and "is a file" in r.output and "Traceback" not in r.output


def test_cli_ui_serves_the_page_on_localhost(tmp_path):
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "clipgan", "ui", "--port", str(port), "--outdir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        page = None
        for _ in range(600):  # up to about 5 minutes on a loaded machine; usually a few seconds
            if proc.poll() is not None:
                pytest.fail(f"clipgan ui exited: {proc.stdout.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    page = r.read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert page is not None and "gradio" in page.lower() and '"title":"clipgan"' in page.replace(" ", "")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.mark.parametrize("contrast", [None, (), ("cat", "dog")])
def test_form_carries_the_contrast_in_all_three_states(contrast):
    """Empty: the CLIP's own words; "none": off; words: those."""
    s = Settings().replace(contrast=contrast, contrast_weight=1.5)
    assert forms.to_settings(forms.form_values(s)) == s


@pytest.mark.parametrize("clips", [None, (), ("toy",), ("toy", "RN50:openai")])
def test_form_carries_the_contrast_clip_in_all_three_states(clips):
    """Empty: the CLIP's own partner; "none": off; specs: those."""
    s = Settings().replace(contrast_clip=clips)
    assert forms.to_settings(forms.form_values(s)) == s
