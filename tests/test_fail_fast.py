"""Fail fast, lose nothing: checks before any model loads, a lock per output, stray temporary files
of killed runs cleaned, the memory check over every phase, Ctrl-C as one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from clipgan import memory
from clipgan.cli import main
from clipgan.config import Settings
from clipgan.errors import ClipganError
from clipgan.io import atomic_path, check_output, clean_stray_temporaries, lock_path, output_lock

from conftest import tiny_cli_args

PRECIOUS = b"an existing file that must survive\n"


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def run(argv) -> int:
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    return info.value.code


# ---------------------------------------------------------------- names and folders


def test_name_too_long_for_the_temporary_name_is_refused_before_work(tmp_path):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    ok = tmp_path / ("a" * (limit - 60) + ".png")
    assert check_output(ok) == ok
    legal = tmp_path / ("a" * (limit - 4) + ".png")  # a legal name, but its temporary name is longer
    legal.write_bytes(PRECIOUS)
    with pytest.raises(ClipganError, match="too long"):
        check_output(legal)
    assert legal.read_bytes() == PRECIOUS


def test_long_name_fails_before_the_models_load(tmp_path, tiny_settings, capsys):
    out = tmp_path / ("b" * (os.pathconf(tmp_path, "PC_NAME_MAX") - 4) + ".png")
    missing = tmp_path / "no-such.ckpt"  # a model that would fail to load: the name is refused first
    args = tiny_cli_args(tiny_settings)
    args[args.index("--vqgan-checkpoint") + 1] = str(missing)
    assert run(["generate", "a red circle", *args, "-i", "1", "-o", out]) == 2
    err = capsys.readouterr().err
    assert "too long" in err and "no-such" not in err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- lock


def test_second_run_on_the_same_output_is_refused_naming_the_first(tmp_path, tiny_settings, capsys):
    out = tmp_path / "x.png"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_path(out).write_text(f"{holder.pid}\n")
        assert run(["generate", "a red circle", *tiny_cli_args(tiny_settings), "-i", "1", "-o", out]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"pid {holder.pid}" in err[0] and "x.png" in err[0], err
        assert not out.exists() and lock_path(out).read_text() == f"{holder.pid}\n"
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_and_stray_temporaries_of_a_dead_run_are_taken_over(tmp_path, tiny_settings, capsys):
    out = tmp_path / "x.png"
    pid = dead_pid()
    lock_path(out).write_text(f"{pid}\n")
    strays = [tmp_path / f".x.clipgan-{pid}-abcd1234.tmp.png", tmp_path / f".x.state.clipgan-{pid}-abcd1234.tmp.pt"]
    alive = tmp_path / f".x.clipgan-{os.getppid()}-abcd1234.tmp.png"  # a live process's: kept
    other = tmp_path / f".y.clipgan-{pid}-abcd1234.tmp.png"  # another output's: kept
    for p in [*strays, alive, other]:
        p.write_bytes(b"partial")
    assert run(["generate", "a red circle", *tiny_cli_args(tiny_settings), "-i", "1", "-q", "-o", out]) == 0
    assert out.exists() and not lock_path(out).exists()
    assert not any(p.exists() for p in strays) and alive.exists() and other.exists()


def test_temporary_names_carry_clipgan_and_the_pid(tmp_path):
    with atomic_path(tmp_path / "pic.png") as tmp:
        assert tmp.name.startswith(f".pic.clipgan-{os.getpid()}-") and tmp.name.endswith(".tmp.png")
        assert clean_stray_temporaries(tmp_path / "pic.png") == []  # this run's own: never touched


def test_lock_is_released_and_refuses_a_second_holder_in_process(tmp_path):
    out = tmp_path / "v.mp4"
    with output_lock(out):
        with pytest.raises(ClipganError, match="another run in this process"):
            with output_lock(out):
                pass
    assert not lock_path(out).exists()
    with output_lock(out):  # free again
        pass


# ---------------------------------------------------------------- memory over every phase


@pytest.fixture
def limit_for(tiny_loaded, monkeypatch):
    """Sets CLIPGAN_MEMORY_LIMIT to what a step at `size` needs (the real variable, read by the run)."""
    models, kwargs = tiny_loaded

    def set_limit(size):
        need = memory.check_memory(Settings(**kwargs), models, available=2**62, size=size).total
        monkeypatch.setenv(memory.ENV_VAR, str(need))
        return models, kwargs

    return set_limit


def test_upscale_phase_is_checked_before_the_first_step(limit_for):
    from clipgan.pipeline import generate

    models, kwargs = limit_for((32, 32))
    steps = []
    with pytest.raises(ClipganError, match="--upscale"):
        generate("a red circle", models=models, callback=steps.append, **{**kwargs, "upscale": 1000})
    assert steps == []


def test_outpaint_canvas_is_checked_naming_extend(limit_for, tmp_path):
    from clipgan.edit import outpaint

    models, kwargs = limit_for((32, 32))
    Image.new("RGB", (32, 32), "red").save(tmp_path / "in.png")
    steps = []
    with pytest.raises(ClipganError, match="--extend"):
        outpaint(tmp_path / "in.png", ["a red circle"], extend={"right": 256}, models=models, callback=steps.append,
                 **kwargs)
    assert steps == []


def test_morph_is_checked_before_the_first_keyframe(limit_for):
    from clipgan import animate

    models, kwargs = limit_for((32, 32))
    steps = []
    with pytest.raises(ClipganError, match="--size"):
        animate.morph(["a red circle", "a blue square"], models=models, callback=steps.append,
                      **{**kwargs, "size": (96, 96)})
    assert steps == []


# ---------------------------------------------------------------- Ctrl-C at any moment


@pytest.mark.parametrize("delay", [0.3, 1.5, 4.0])
def test_sigint_at_any_moment_prints_one_line(tmp_path, tiny_settings, delay):
    """Early (imports), while loading or checking, or during the run: exit 130 and one line."""
    out = tmp_path / "x.png"
    out.write_bytes(PRECIOUS)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    p = subprocess.Popen([sys.executable, "-m", "clipgan", "generate", "a red circle", *tiny_cli_args(tiny_settings),
                          "-i", "100000", "-q", "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert p.returncode == 130 and "Traceback" not in err and len(lines) == 1, err
    assert "interrupted" in lines[0]
    assert not lock_path(out).exists()
    if "nothing saved" in lines[0]:
        assert out.read_bytes() == PRECIOUS
