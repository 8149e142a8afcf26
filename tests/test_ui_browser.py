"""The web app in a real browser: Debian's headless Chromium driven by Playwright opens the page,
generates with the bundled models, watches the preview change, downloads the PNG and reads its
settings; the CLIP tab ranks pictures. Skips, saying why, only where no browser is installed
(`make browser` installs it). CLIPGAN_UI_SCREENSHOT=path also saves the README's screenshot."""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

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
    field(page, "prompts").fill(PROMPT)
    field(page, "steps").fill(str(STEPS))
    field(page, "seed").fill("5")
    page.get_by_text("Advanced").click()
    field(page, "cutn").fill("4")
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

    field(page, "prompts").fill("something else")
    field(page, "seed").fill("")
    page.locator("#again").click()
    page.wait_for_function("() => document.querySelector('#prompts textarea').value.startsWith('a red')")
    assert field(page, "seed").input_value() == "5"


def test_bad_input_is_one_line_in_the_page(page):
    page.get_by_role("tab", name="Generate").click()
    field(page, "prompts").fill("")
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
    field(page, "clip-folder").fill(str(tmp_path))
    field(page, "clip-prompts").fill("a green square on a yellow background\na red circle on a blue background")
    page.locator("#clip-compare").click()
    rows = table_rows(page, "clip-table", 6)  # 3 pictures x 2 prompts
    best = rows[0]
    assert ("square.png" in best and "green square" in best) or ("circle.png" in best and "red circle" in best), rows
    page.locator("#clip-chart :is(canvas, svg)").first.wait_for()

    page.get_by_role("tab", name="Search a folder").click()
    field(page, "search-folder").fill(str(tmp_path))
    field(page, "search-query").fill("a yellow star on a purple background")
    page.locator("#search").click()
    assert "star.png" in table_rows(page, "search-table", 3)[0]
