"""The web app in a real browser: Debian's headless Chromium driven by Playwright opens the page,
generates with the bundled models, watches the preview change, downloads the PNG and reads its
settings; the CLIP tab ranks pictures. Skips, saying why, only where no browser is installed
(`make browser` installs it). CLIPGAN_UI_SCREENSHOT=path also saves the README's screenshot."""

from __future__ import annotations

import os
import re
import shutil
import socket

import pytest

pytest.importorskip("gradio", reason="the web app needs the ui extra (pip install 'clipgan[ui]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium on PATH: `make browser` installs Debian's package (needs root and apt)",
                allow_module_level=True)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
WAIT = 240_000  # ms: generous, so a loaded machine is slow rather than failing
PROMPT = "a red circle on a blue background"
SCREENSHOT = os.environ.get("CLIPGAN_UI_SCREENSHOT")  # where to save the README's picture (make ui-screenshot)
STEPS = 40 if SCREENSHOT else 6  # a few steps prove the page works; the README's picture deserves more


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from clipgan.ui.app import launch

    port = free_port()
    demo = launch(port=port, outdir=tmp_path_factory.mktemp("ui-out"), block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def page(app_url, tmp_path_factory):
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True, args=FLAGS,
            accept_downloads=True, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(WAIT)
        page.goto(app_url)
        yield page
        context.close()


def field(page, elem_id: str):
    return page.locator(f"#{elem_id} :is(textarea, input)").first


SAVED = r"done.*saved (\S+[.]png)"


def run_and_download(page, tab: str, path) -> None:
    """Runs an Edit sub-tab (`#TAB-run`), waits for its status to say done, saves its PNG to path.
    An earlier run's "done · saved NAME" may still be there (under a progress overlay, even), so
    the wait is for another NAME: every run saves under a name of its own."""
    status = page.locator(f"#{tab}-status")
    before = (re.findall(SAVED, status.inner_text()) or [None])[-1]
    page.locator(f"#{tab}-run").click()
    page.wait_for_function("([sel, re, before]) => { const m = [...document.querySelector(sel).innerText"
                           ".matchAll(new RegExp(re, 'g'))].pop(); return m && m[1] !== before; }",
                           arg=[f"#{tab}-status", SAVED, before])
    name = re.findall(SAVED, status.inner_text())[-1]
    for _ in range(20):  # the button can still hold the earlier PNG for a moment after the status changed
        with page.expect_download() as download:
            page.locator(f"#{tab}-download").click()
        if download.value.suggested_filename == name:
            break
        page.wait_for_timeout(250)
    assert download.value.suggested_filename == name
    download.value.save_as(path)


def enter(page, elem_id: str, text: str) -> None:
    """Types into a field and leaves it (Tab): a number field commits its value on change, and a
    click on Generate right after a bare fill could, on a busy machine, still send the old one."""
    f = field(page, elem_id)
    f.fill(text)
    f.press("Tab")


def open_section(page, label: str, elem_id: str) -> None:
    """Opens an accordion and waits until its field `elem_id` shows its value: a field typed into
    while the accordion's content is still mounting may keep its default in the run's settings."""
    page.get_by_text(label).click()
    page.wait_for_function(f"() => {{ const i = document.querySelector('#{elem_id} :is(textarea, input)');"
                           " return i !== null && i.offsetParent !== null && i.value !== ''; }")


def held(page, values: dict[str, str], last: tuple[str, str]) -> None:
    """Before a run: each field typed into holds its text, re-entered where it does not. A field in an
    accordion opened just before can, on a busy machine, be reset to its default after the typing
    (CI saw candidates 4 where 2 was typed); a person cannot type that fast, the test can. `last`
    (a text field) is entered again after any re-entry, so no number field is still in flight."""
    for _ in range(5):
        lost = {k: v for k, v in values.items() if field(page, k).input_value() != v}
        if not lost:
            return
        for k, v in lost.items():
            enter(page, k, v)
        enter(page, *last)
    raise AssertionError(f"fields do not keep what was typed: {lost}")


def table_rows(page, elem_id: str, count: int) -> list[str]:
    """The text of a gr.Dataframe's body rows once it has `count` of them (read from the page's text,
    which does not depend on how the table is built)."""
    page.wait_for_function(f"() => (document.querySelector('#{elem_id}').innerText.match(/[.]png/g) || []).length >= {count}")
    text = page.locator(f"#{elem_id}").inner_text()
    starts = [m.start() for m in re.finditer(r"\S+[.]png", text)]
    return [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]


# every src the picture takes, seen by the page itself (no polling that could miss one)
WATCH = """() => { window.srcs = []; const root = document.querySelector('#picture');
  new MutationObserver(() => { const img = root.querySelector('img');
    if (img && img.src && window.srcs[window.srcs.length - 1] !== img.src) window.srcs.push(img.src); })
  .observe(root, {subtree: true, childList: true, attributes: true}); }"""


def test_generate_preview_download_and_settings_again(page, tmp_path):
    from PIL import Image

    import clipgan
    from clipgan.config import Settings
    from clipgan.io import read_settings

    page.get_by_role("tab", name="Generate").click()
    enter(page, "prompts", PROMPT)
    enter(page, "steps", str(STEPS))
    open_section(page, "Advanced", "cutn")
    enter(page, "cutn", "4")
    enter(page, "seed", "5")  # a text field last: a number field typed just before Generate can still be in flight
    held(page, {"cutn": "4"}, ("seed", "5"))
    page.evaluate(WATCH)
    page.locator("#generate").click()
    page.locator("#status").get_by_text("done").wait_for()
    previews = page.evaluate("window.srcs")
    assert len(previews) >= 3, previews  # previews while it formed, then the result
    page.get_by_text("Advanced").click()  # closed again, for the screenshot
    page.evaluate("window.scrollTo(0, 0)")
    shot = tmp_path / "ui.png"
    page.screenshot(path=str(shot))
    if SCREENSHOT:
        shutil.copyfile(shot, SCREENSHOT)

    with page.expect_download() as download:
        page.locator("#download").click()
    png = tmp_path / "download.png"
    download.value.save_as(png)
    settings = Settings.from_dict(read_settings(png))
    assert (settings.prompts, settings.iterations, settings.seed, settings.cutn) == ([PROMPT], STEPS, 5, 4)
    again = clipgan.generate(settings=settings)  # the API makes the same picture from those settings
    assert Image.open(png).convert("RGB").tobytes() == again.image.tobytes()

    enter(page, "prompts", "something else")
    enter(page, "seed", "")
    page.locator("#again").click()
    page.wait_for_function("() => document.querySelector('#prompts textarea').value.startsWith('a red')")
    assert field(page, "seed").input_value() == "5"

    enter(page, "prompts", "something else")
    enter(page, "steps", "99")
    page.locator("#load-png input[type=file]").set_input_files(str(png))  # a clipgan PNG fills the form too
    page.wait_for_function("() => document.querySelector('#prompts textarea').value.startsWith('a red')")
    assert field(page, "steps").input_value() == str(STEPS)


def test_bad_input_is_one_line_in_the_page(page):
    page.get_by_role("tab", name="Generate").click()
    enter(page, "prompts", "")
    page.locator("#generate").click()
    page.get_by_text("give at least one text prompt").first.wait_for()
    assert "Traceback" not in page.content()


def test_clip_tab_ranks_and_searches(page, tmp_path):
    from clipgan.io import to_pil
    from clipgan.toyworld.render import Spec, render

    scenes = {"circle.png": Spec("circle", "red", "blue"), "square.png": Spec("square", "green", "yellow"),
              "star.png": Spec("star", "yellow", "purple")}
    for name, spec in scenes.items():
        to_pil(render(spec, 64)).save(tmp_path / name)
    page.get_by_role("tab", name="CLIP").click()
    enter(page, "clip-folder", str(tmp_path))
    enter(page, "clip-prompts", "a green square on a yellow background\na red circle on a blue background")
    page.locator("#clip-compare").click()
    rows = table_rows(page, "clip-table", 6)  # 3 pictures x 2 prompts
    best = rows[0]
    assert ("square.png" in best and "green square" in best) or ("circle.png" in best and "red circle" in best), rows
    page.locator("#clip-chart :is(canvas, svg)").first.wait_for()

    page.get_by_role("tab", name="Search a folder").click()
    enter(page, "search-folder", str(tmp_path))
    enter(page, "search-query", "a yellow star on a purple background")
    page.locator("#search").click()
    assert "star.png" in table_rows(page, "search-table", 3)[0]


def test_stop_keeps_the_picture_so_far_and_a_second_run_waits_its_turn(page, tmp_path):
    from clipgan.io import read_settings

    page.get_by_role("tab", name="Generate").click()
    enter(page, "prompts", PROMPT)
    enter(page, "steps", "1000")  # far more than it will take before Stop
    page.locator("#generate").click()
    page.wait_for_function("() => /step ([3-9]|[1-9][0-9]+) [/]/.test(document.querySelector('#status').innerText)")

    other = page.context.new_page()  # a second visitor, with a session of its own
    other.set_default_timeout(WAIT)
    other.goto(page.url)
    enter(other, "prompts", PROMPT)
    other.locator("#generate").click()
    other.get_by_text(re.compile(r"queue:? *1 */ *1")).first.wait_for()  # its place in the queue, shown in its page

    page.locator("#stop").click()  # stops this page's run only
    page.locator("#status").get_by_text("stopped at step").wait_for()
    with page.expect_download() as download:
        page.locator("#download").click()
    download.value.save_as(tmp_path / "stopped.png")
    done = read_settings(tmp_path / "stopped.png")["iterations"]  # the steps it took: rerunning those gives it again
    assert 3 <= done < 1000

    other.wait_for_function("() => /step [1-9]/.test(document.querySelector('#status').innerText)")  # its turn came
    other.locator("#stop").click()
    other.locator("#status").get_by_text("stopped").wait_for()
    other.close()


def test_morph_plays_a_video(page):
    from clipgan.video import read_video_info

    page.get_by_role("tab", name="Morph").click()
    enter(page, "morph-prompts", "a red circle\na blue square")
    for elem_id, value in (("morph-frames", "2"), ("morph-per-frame", "1"), ("morph-steps", "2"), ("morph-cutn", "2")):
        enter(page, elem_id, value)
    page.locator("#morph-run").click()
    page.locator("#morph-status").get_by_text("frames at").wait_for()
    video = page.locator("#morph-video video")
    video.wait_for()
    assert "3 of 3 frames" in page.locator("#morph-status").inner_text()
    src = video.get_attribute("src")
    assert src and ".mp4" in src
    path = src.split("file=", 1)[1]
    assert read_video_info(path)[0] == 3
    # the browser decodes it: metadata loaded, with the length of 3 frames at the default rate
    page.wait_for_function("() => document.querySelector('#morph-video video').readyState >= 1")
    assert video.evaluate("v => v.duration") > 0


def test_edit_upscales_an_uploaded_picture(page, tmp_path):
    from PIL import Image

    from clipgan.io import read_settings

    Image.new("RGB", (32, 32), (220, 30, 30)).save(tmp_path / "small.png")
    page.get_by_role("tab", name="Edit").click()
    page.get_by_role("tab", name="Upscale").click()
    page.locator("#upscale-source input[type=file]").set_input_files(str(tmp_path / "small.png"))
    enter(page, "upscale-steps", "2")
    enter(page, "edit-cutn", "2")
    run_and_download(page, "upscale", tmp_path / "big.png")
    assert Image.open(tmp_path / "big.png").size == (64, 64)
    assert read_settings(tmp_path / "big.png")["iterations"] == 2


def stroke_to_inpaint(page, picture) -> None:
    """Opens Edit > Inpaint, uploads the picture, paints a short stroke across its middle and asks
    for "a red circle" in 3 steps, 2 cutouts, no seam."""
    page.get_by_role("tab", name="Edit").click()
    page.get_by_role("tab", name="Inpaint").click()
    page.locator("#inpaint-editor input[type=file]").set_input_files(str(picture))
    page.locator("#inpaint-editor").get_by_text(re.compile(r"^\d+%$")).wait_for()  # fitted to the frame: ready
    box = page.locator("#inpaint-editor canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 20, cy - 20)  # a short stroke with the brush (the tool after an upload)
    page.mouse.down()
    page.mouse.move(cx + 20, cy + 20, steps=8)
    page.mouse.up()
    enter(page, "edit-prompts", "a red circle")
    for elem_id, value in (("edit-steps", "3"), ("edit-cutn", "2"), ("inpaint-feather", "0")):
        enter(page, elem_id, value)


def test_edit_inpaints_what_was_painted(page, tmp_path):
    import numpy as np
    from PIL import Image

    from clipgan.io import read_settings

    blue = (30, 70, 220)
    Image.new("RGB", (64, 64), blue).save(tmp_path / "blue.png")
    stroke_to_inpaint(page, tmp_path / "blue.png")
    run_and_download(page, "inpaint", tmp_path / "inpainted.png")
    settings = read_settings(tmp_path / "inpainted.png")
    mask = np.asarray(Image.open(settings["mask"]).convert("L")) > 127
    assert 0 < mask.mean() < 0.5  # the stroke, not the whole picture
    out = np.asarray(Image.open(tmp_path / "inpainted.png").convert("RGB"))
    assert (out[~mask] == blue).all()  # outside the painted part, exactly the picture (no seam asked)


def test_edit_outpaints_with_margins(page, tmp_path):
    import numpy as np
    from PIL import Image

    red = (220, 30, 30)
    Image.new("RGB", (32, 32), red).save(tmp_path / "small.png")
    page.get_by_role("tab", name="Edit").click()
    page.get_by_role("tab", name="Outpaint").click()
    page.locator("#outpaint-source input[type=file]").set_input_files(str(tmp_path / "small.png"))
    enter(page, "edit-prompts", "a red circle")
    for elem_id, value in (("edit-steps", "2"), ("edit-cutn", "2")):  # margins: the defaults, 16 px left and right
        enter(page, elem_id, value)
    run_and_download(page, "outpaint", tmp_path / "wide.png")
    out = np.asarray(Image.open(tmp_path / "wide.png").convert("RGB"))
    assert out.shape == (32, 64, 3)
    assert (out[:, 16:48] == red).all()  # the original, exactly


def choose(page, elem_id: str, option: str) -> None:
    """Picks an option of a gr.Dropdown as a visitor does: open the list, click the entry."""
    field(page, elem_id).click()
    page.get_by_role("option", name=option, exact=True).click()
    page.locator(f"#{elem_id} input").press("Tab")


def test_generate_with_diffusion(page, tmp_path):
    """Image model "diffusion" in the form draws with the bundled UNet; its PNG's settings name it
    and make the same picture through the API."""
    from PIL import Image

    import clipgan
    from clipgan.config import Settings
    from clipgan.io import read_settings

    page.get_by_role("tab", name="Generate").click()
    enter(page, "prompts", PROMPT)
    enter(page, "steps", "6")
    enter(page, "width", "0")  # 0 x 0: the model's own size (a UNet makes only its own)
    enter(page, "height", "0")
    choose(page, "image-model", "diffusion")
    open_section(page, "Diffusion (image model diffusion)", "candidates")
    enter(page, "candidates", "2")
    enter(page, "seed", "8")  # a text field last, as above
    held(page, {"candidates": "2"}, ("seed", "8"))
    page.locator("#generate").click()
    page.locator("#status").get_by_text("done: 6 steps, seed 8").wait_for()
    with page.expect_download() as download:
        page.locator("#download").click()
    png = tmp_path / "diffusion.png"
    download.value.save_as(png)
    settings = Settings.from_dict(read_settings(png))
    assert (settings.image_model, settings.iterations, settings.seed, settings.candidates) == ("diffusion", 6, 8, 2)
    picture = Image.open(png).convert("RGB")
    assert picture.size == (32, 32)  # the bundled UNet's own size
    assert picture.tobytes() == clipgan.generate(settings=settings).image.tobytes()
    choose(page, "image-model", "vqgan")  # the form as the other tests expect it


def test_morph_with_diffusion(page):
    """The Morph tab's image model "diffusion": every frame a denoising run of the bundled UNet."""
    from clipgan.video import read_video_info

    page.get_by_role("tab", name="Morph").click()
    enter(page, "morph-prompts", "a red circle\na blue square")
    for elem_id, value in (("morph-frames", "1"), ("morph-steps", "2"), ("morph-cutn", "2")):
        enter(page, elem_id, value)
    choose(page, "morph-image-model", "diffusion")
    page.locator("#morph-run").click()
    page.locator("#morph-status").get_by_text("2 of 2 frames").wait_for()
    src = page.locator("#morph-video video").get_attribute("src")
    assert read_video_info(src.split("file=", 1)[1])[0] == 2
    choose(page, "morph-image-model", "vqgan")  # the form as the other tests expect it


def test_edit_inpaints_with_diffusion(page, tmp_path):
    """Inpainting with the bundled UNet: outside the painted part the picture is kept exactly, and the
    PNG's settings name the diffusion model, the picture and the mask; outpainting says it needs the VQGAN."""
    import numpy as np
    from PIL import Image

    from clipgan.io import read_settings

    blue = (30, 70, 220)
    Image.new("RGB", (32, 32), blue).save(tmp_path / "blue32.png")
    stroke_to_inpaint(page, tmp_path / "blue32.png")
    choose(page, "edit-image-model", "diffusion")
    run_and_download(page, "inpaint", tmp_path / "inpainted.png")
    settings = read_settings(tmp_path / "inpainted.png")
    assert (settings["image_model"], settings["iterations"]) == ("diffusion", 3)
    mask = np.asarray(Image.open(settings["mask"]).convert("L")) > 127
    assert 0 < mask.mean() < 0.7
    out = np.asarray(Image.open(tmp_path / "inpainted.png").convert("RGB"))
    assert out.shape == (32, 32, 3) and (out[~mask] == blue).all()
    page.get_by_role("tab", name="Outpaint").click()
    page.locator("#outpaint-source input[type=file]").set_input_files(str(tmp_path / "blue32.png"))
    page.locator("#outpaint-run").click()
    page.get_by_text("outpaint draws with the VQGAN").wait_for()
    choose(page, "edit-image-model", "vqgan")
