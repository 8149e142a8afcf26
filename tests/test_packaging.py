"""A wheel, as `pip install clipgan` gets it: the bundled models inside, found from anywhere.

The wheel is built from a copy of the source (the build writes build/ and egg-info beside
it), offline and without build isolation, then installed with --target into a fresh folder
that is the only clipgan on PYTHONPATH (the venv supplies the dependencies).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# files, and the files of folders (the diffusers-format toy-diffusion/), as paths under checkpoints/
BUNDLED = sorted(p.relative_to(REPO / "checkpoints").as_posix() for p in (REPO / "checkpoints").glob("toy-*")
                 if p.is_file()) + sorted(p.relative_to(REPO / "checkpoints").as_posix()
                                          for p in (REPO / "checkpoints").glob("toy-*/*") if p.is_file())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    # symlinks=True keeps clipgan/checkpoints a link to the copied top-level folder
    shutil.copytree(REPO / "clipgan", src / "clipgan", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (src / "checkpoints").mkdir()
    for name in BUNDLED:
        (src / "checkpoints" / name).parent.mkdir(exist_ok=True)
        shutil.copy2(REPO / "checkpoints" / name, src / "checkpoints" / name)
    (src / "checkpoints" / "vqgan_imagenet_f16_16384.ckpt").write_bytes(b"a real download")  # git-ignored
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(dist)], cwd=src, check=True, capture_output=True)
    (found,) = dist.glob("clipgan-*.whl")
    return found


def test_cardinality_wheel_holds_every_module_and_the_bundled_models_only(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "clipgan").rglob("*.py")
               if "checkpoints" not in p.parts}
    assert modules <= names, sorted(modules - names)
    packaged = sorted(n.removeprefix("clipgan/checkpoints/") for n in names if n.startswith("clipgan/checkpoints/"))
    assert packaged == sorted(BUNDLED)  # every toy file, and no downloaded model
    assert {"toy-vqgan.yaml", "toy-vqgan.ckpt", "toy-clip.json", "toy-clip.safetensors"} <= set(BUNDLED)


def test_smoke_installed_wheel_generates_with_the_bundled_models_from_elsewhere(wheel, tmp_path):
    target, cwd = tmp_path / "site", tmp_path / "work"
    cwd.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                    "--target", str(target), str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("CLIPGAN_CHECKPOINTS", None)
    where = subprocess.run([sys.executable, "-c", "import clipgan.models.registry as r; print(r.bundled_dir())"],
                           cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()
    assert Path(where) == target / "clipgan" / "checkpoints"  # the installed copy, not this checkout
    run = subprocess.run([sys.executable, "-m", "clipgan", "generate", "a red circle on a blue background",
                          "-i", "2", "--seed", "0", "-o", "out.png", "-q"],
                         cwd=cwd, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert Image.open(cwd / "out.png").size == (64, 64)
    listing = subprocess.run([sys.executable, "-m", "clipgan", "models"], cwd=cwd, env=env,
                             capture_output=True, text=True, check=True).stdout
    # downloads go to the user cache, never into the installed package
    assert f"checkpoints: {tmp_path / 'cache' / 'clipgan' / 'checkpoints'}" in listing
