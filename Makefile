# The venv is the install marker: `make install` twice does nothing the second time.
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: install browser test test-slow check-floors demo toy-models gallery ui-screenshot docs bench bench-gpu

install: $(STAMP) browser

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev,ui,ray,diffusion]'
	touch $(STAMP)

# headless Chromium for the web app's browser tests (Debian's package, driven by Playwright);
# without root or a package registry the browser tests skip and say why
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
		|| echo "note: chromium could not be installed; the browser tests will skip"

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

# the lowest versions pyproject allows (each ">=" read as "=="), in a throwaway venv .floors/,
# then the tests that touch torch, kornia, open_clip, taming and typer on this checkout
FLOOR_TESTS := tests/test_cli_run.py tests/test_cutouts.py tests/test_models.py \
	tests/test_model_defaults.py tests/test_video.py
check-floors:
	rm -rf .floors && python3 -m venv .floors
	python3 -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; \
		print("\n".join(x.split("#")[0].replace(">=", "==") for x in d))' > .floors/requirements.txt
	.floors/bin/python -m pip install -q -r .floors/requirements.txt pytest pytest-timeout hypothesis
	.floors/bin/python -m pip freeze | grep -iE '^(torch|torchvision|kornia|open.clip.torch|typer|pillow|imageio)=='
	PYTHONPATH=$(CURDIR) .floors/bin/python -m pytest -q -p no:cacheprovider $(FLOOR_TESTS)

demo: install
	.venv/bin/clipgan generate "a red circle on a blue background"

# the CLIP from scratch, then fine-tuned on large shapes only (--clip-sizes), then two adversarial
# fine-tuning stages (docs/benchmarks.md, "Levers for shapes" and "A CLIP taught large shapes"); then
# the toy diffusion UNet
# the large-shapes stage is kept (build/) and bundled as toy-contrast: an overlay on the fine-tuned toy
# each fine-tune continues the CLIP in checkpoints/ on large shapes only; the stages differ in steps, lr and PGD
FINETUNE := $(PY) -m clipgan.toyworld.train --out checkpoints --only clip --clip-init checkpoints/toy-clip.safetensors --clip-sizes 0.5 0.9
toy-models: install
	$(PY) -m clipgan.toyworld.train --out checkpoints
	$(FINETUNE) --clip-steps 500 --clip-lr 5e-4
	mkdir -p build && cp checkpoints/toy-clip.safetensors build/toy-clip-stage1.safetensors
	$(FINETUNE) --clip-steps 300 --clip-lr 3e-4 --adv-eps 1.0
	$(FINETUNE) --clip-steps 300 --clip-lr 3e-4 --adv-eps 2.0 --blob-share 0.25
	rm -f checkpoints/toy-clip-contrast.safetensors
	$(PY) -m clipgan.toyworld.overlay build/toy-clip-stage1.safetensors checkpoints/toy-clip.safetensors checkpoints/toy-clip-contrast.safetensors
	$(PY) -m clipgan.toyworld.train_diffusion --out checkpoints

# the README's pictures and GIF (docs/gallery/), made with the bundled models
gallery: install
	$(PY) examples/gallery.py --out docs/gallery

# the README's screenshot of `clipgan ui`, taken by its browser test
ui-screenshot: install
	CLIPGAN_UI_SCREENSHOT=docs/gallery/ui.png $(PY) -m pytest -q tests/test_ui_browser.py -k generate

# the README's CLI reference, regenerated from the typer app (tests/test_docs.py checks it)
docs: install
	$(PY) -m clipgan.docs

# speed and memory against the classic step (real architectures, random weights), then the
# bundled-model quality benchmark; docs/benchmarks.md records a run
bench: install
	$(PY) -m clipgan.bench.speed --size 256 --cutn 32
	$(PY) -m clipgan.bench.speed --memory --size 512 --cutn 32
	$(PY) -m clipgan.toyworld.bench
	$(PY) -m clipgan.bench.right --n 24 --max-steps 300

# every GPU figure in one run (about 5 minutes on one GPU): JSON and markdown in bench-gpu/
bench-gpu: install
	$(PY) -m clipgan.bench.gpu --out bench-gpu
