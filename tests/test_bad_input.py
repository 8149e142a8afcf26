"""Bad input: exit code 2 and one short line naming the problem; no traceback, no existing file
overwritten, no partial output.

Most cases go through `clipgan.cli.main` in this process (the console entry itself, so usage
errors take the same path as in a shell); a few run `python -m clipgan` as a real subprocess
to prove the behaviour end to end.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from clipgan.cli import main

from conftest import write_vqgan

PRECIOUS = b"an existing file that must survive\n"
MAX_LINE = 300  # "one short line"


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_models) -> dict[str, Path]:
    """Good tiny models plus every kind of broken file, written once."""
    d = tmp_path_factory.mktemp("bad")
    yaml_path, ckpt_path = tiny_models["vq"]
    config, weights = tiny_models["clip"]
    f = {"yaml": yaml_path, "ckpt": ckpt_path, "clip_json": config, "clip_weights": weights}

    f["folder"] = d / "a-folder.ckpt"
    f["folder"].mkdir()
    f["png_folder"] = d / "dir.png"
    f["png_folder"].mkdir()
    f["garbage_yaml"] = d / "garbage.yaml"
    f["garbage_yaml"].write_bytes(random.Random(1).randbytes(2048))
    f["foo_yaml"] = d / "foo.yaml"
    f["foo_yaml"].write_text(yaml.safe_dump({"foo": 1}))
    f["other_yaml"] = d / "other.yaml"
    f["other_yaml"].write_text(yaml.safe_dump({"model": {"target": "something.Else", "params": {"n_embed": 16}}}))

    good = ckpt_path.read_bytes()
    f["truncated"] = d / "truncated.ckpt"
    f["truncated"].write_bytes(good[: len(good) // 2])
    f["random_ckpt"] = d / "random.ckpt"
    f["random_ckpt"].write_bytes(random.Random(0).randbytes(4096))

    (d / "n32").mkdir()
    f["wrong_n_embed"] = write_vqgan(d / "n32", "vq", n_embed=32)[1]  # the yaml says 16 codes

    state = torch.load(ckpt_path, weights_only=True)
    state["state_dict"] = {k: v for k, v in state["state_dict"].items() if not k.startswith("decoder.")}
    f["no_decoder"] = d / "no-decoder.ckpt"
    torch.save(state, f["no_decoder"])

    state = torch.load(ckpt_path, weights_only=True)
    state["hyper_parameters"] = argparse.Namespace(lr=4.5e-6, embed_dim=4)  # like old lightning hparams
    f["pickled"] = d / "pickled.ckpt"
    torch.save(state, f["pickled"])

    f["text"] = d / "notes.txt"
    f["text"].write_text("this is not an image\n")
    f["fake_png"] = d / "fake.png"
    f["fake_png"].write_text("this is not an image either\n")
    f["plain_png"] = d / "plain.png"
    Image.new("RGB", (8, 8), "red").save(f["plain_png"])  # an image without clipgan settings
    f["missing"] = d / "does-not-exist"
    return f


def model_args(f: dict, **replace) -> list[str]:
    opts = {"--vqgan-config": f["yaml"], "--vqgan-checkpoint": f["ckpt"],
            "--clip": f"{f['clip_json']}:{f['clip_weights']}", "--device": "cpu", "--cutn": 2, "--seed": 1}
    opts.update(replace)
    args = ["-s", "16", "16", "-i", "1"]
    for k, v in opts.items():
        if v is not None:
            args += [k, str(v)]
    return args


@pytest.fixture
def out(tmp_path) -> Path:
    """A folder holding one existing file that a failing run must leave alone."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "existing.png").write_bytes(PRECIOUS)
    return folder


def assert_untouched(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == ["existing.png"], "partial output left behind"
    assert (folder / "existing.png").read_bytes() == PRECIOUS, "existing file overwritten"


def assert_one_line(code: int, stdout: str, stderr: str, names: tuple[str, ...]) -> str:
    assert "Traceback" not in stdout + stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    line = lines[0]
    assert line.startswith("error: "), line
    assert len(line) <= MAX_LINE, f"not short ({len(line)} chars): {line}"
    for name in names:
        assert name in line, f"{name!r} not named in: {line}"
    assert code == 2, (code, line)
    return line


def expect_error(capsys, argv: list, *names: str) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    captured = capsys.readouterr()
    return assert_one_line(info.value.code, captured.out, captured.err, names)


# name, argv(f, out), words the message must hold
CASES = [
    # model files
    ("missing-yaml", lambda f, o: ["cat", *model_args(f, **{"--vqgan-config": f["missing"] / "m.yaml"})], ("m.yaml",)),
    ("missing-ckpt", lambda f, o: ["cat", *model_args(f, **{"--vqgan-checkpoint": f["missing"] / "m.ckpt"})], ("m.ckpt",)),
    ("yaml-is-folder", lambda f, o: ["cat", *model_args(f, **{"--vqgan-config": f["folder"]})], ("a-folder.ckpt",)),
    ("ckpt-is-folder", lambda f, o: ["cat", *model_args(f, **{"--vqgan-checkpoint": f["folder"]})], ("a-folder.ckpt",)),
    ("yaml-random-bytes", lambda f, o: ["cat", *model_args(f, **{"--vqgan-config": f["garbage_yaml"]})], ("garbage.yaml",)),
    ("yaml-not-taming", lambda f, o: ["cat", *model_args(f, **{"--vqgan-config": f["foo_yaml"]})], ("foo.yaml", "taming")),
    ("yaml-other-target", lambda f, o: ["cat", *model_args(f, **{"--vqgan-config": f["other_yaml"]})], ("something.Else",)),
    ("ckpt-truncated", lambda f, o: ["cat", *model_args(f, **{"--vqgan-checkpoint": f["truncated"]})], ("truncated.ckpt", "truncated")),
    ("ckpt-random-bytes", lambda f, o: ["cat", *model_args(f, **{"--vqgan-checkpoint": f["random_ckpt"]})],
     ("random.ckpt", "corrupted")),
    ("ckpt-wrong-n-embed", lambda f, o: ["cat", *model_args(f, **{"--vqgan-checkpoint": f["wrong_n_embed"]})], ("quantize.embedding.weight",)),
    ("ckpt-no-decoder", lambda f, o: ["cat", *model_args(f, **{"--vqgan-checkpoint": f["no_decoder"]})], ("missing", "decoder.")),
    ("ckpt-needs-unpickling", lambda f, o: ["cat", *model_args(f, **{"--vqgan-checkpoint": f["pickled"]})], ("pickled.ckpt", "--trust-checkpoint")),
    ("config-without-ckpt", lambda f, o: ["cat", *model_args(f, **{"--vqgan-checkpoint": None})], ("--vqgan-checkpoint",)),
    # CLIP
    ("clip-unknown-name", lambda f, o: ["cat", *model_args(f, **{"--clip": "NoSuchModel:foo"})], ("NoSuchModel",)),
    ("clip-missing-weights", lambda f, o: ["cat", *model_args(f, **{"--clip": f"{f['clip_json']}:{f['missing'] / 'w.safetensors'}"})], ("w.safetensors",)),
    ("clip-weights-not-weights", lambda f, o: ["cat", *model_args(f, **{"--clip": f"{f['clip_json']}:{f['text']}"})],
     ("notes.txt",)),
    ("clip-missing-config", lambda f, o: ["cat", *model_args(f, **{"--clip": f"{f['missing'] / 'c.json'}:{f['clip_weights']}"})], ("c.json",)),
    # prompts and numbers
    ("prompt-bad-weight", lambda f, o: ["a dog | cat:abc", *model_args(f)], ("cat:abc",)),
    ("prompt-bad-stop", lambda f, o: ["cat:1:xyz", *model_args(f)], ("xyz",)),
    ("no-prompt", lambda f, o: [*model_args(f)], ("prompt",)),
    ("iterations-zero", lambda f, o: ["cat", *model_args(f), "-i", "0"], ("iterations",)),
    ("iterations-negative", lambda f, o: ["cat", *model_args(f), "-i", "-1"], ("iterations", "-1")),
    ("iterations-not-int", lambda f, o: ["cat", *model_args(f), "-i", "abc"], ("iterations",)),
    ("size-zero", lambda f, o: ["cat", *model_args(f), "-s", "0", "0"], ("size",)),
    ("size-negative", lambda f, o: ["cat", *model_args(f), "-s", "-5", "10"], ("size", "-5")),
    ("size-one-number", lambda f, o: ["cat", *model_args(f), "-s", "16"], ("--size",)),
    ("size-too-small", lambda f, o: ["cat", *model_args(f), "-s", "1", "1"], ("too small",)),
    ("cutn-zero", lambda f, o: ["cat", *model_args(f, **{"--cutn": 0})], ("cutn",)),
    ("lr-zero", lambda f, o: ["cat", *model_args(f), "--lr", "0"], ("lr",)),
    ("unknown-optimizer", lambda f, o: ["cat", *model_args(f), "--optimizer", "adamx"], ("optimizer",)),
    ("unknown-augment", lambda f, o: ["cat", *model_args(f), "--augments", "flip,twirl"], ("twirl",)),
    ("unknown-option", lambda f, o: ["cat", *model_args(f), "--iterashuns", "3"], ("--iterashuns",)),
    # output
    ("output-folder-missing", lambda f, o: ["cat", *model_args(f), "-o", o / "nope" / "x.png"], ("nope",)),
    ("output-gif", lambda f, o: ["cat", *model_args(f), "-o", o / "x.gif"], (".gif",)),
    ("output-txt", lambda f, o: ["cat", *model_args(f), "-o", o / "x.txt"], (".txt",)),
    ("output-is-folder", lambda f, o: ["cat", *model_args(f), "-o", f["png_folder"]], ("dir.png", "folder")),
    ("frames-dir-is-file", lambda f, o: ["cat", *model_args(f), "--save-every", "1", "--frames-dir", f["text"]], ("notes.txt",)),
    # images
    ("init-image-not-image", lambda f, o: ["cat", *model_args(f), "--init-image", f["text"]], ("notes.txt",)),
    ("init-image-fake-png", lambda f, o: ["cat", *model_args(f), "--init-image", f["fake_png"]], ("fake.png",)),
    ("init-image-missing", lambda f, o: ["cat", *model_args(f), "--init-image", f["missing"] / "i.png"], ("i.png",)),
    ("image-prompt-not-image", lambda f, o: [*model_args(f), "--image-prompt", f"{f['text']}:0.5"], ("notes.txt",)),
    ("image-prompt-missing", lambda f, o: ["cat", *model_args(f), "--image-prompt", f["missing"] / "p.png"], ("p.png",)),
    ("image-prompt-bad-weight", lambda f, o: ["cat", *model_args(f), "--image-prompt", f"{f['plain_png']}:heavy"], ("heavy",)),
    ("from-png-without-settings", lambda f, o: ["--from-png", f["plain_png"]], ("plain.png", "settings")),
    ("from-png-missing", lambda f, o: ["--from-png", f["missing"] / "x.png"], ("x.png",)),
]


@pytest.mark.parametrize("name,argv,names", CASES, ids=[c.values[0] if hasattr(c, "marks") else c[0] for c in CASES])
def test_bad_input_exception(name, argv, names, files, out, capsys):
    args = argv(files, out)
    if "-o" not in args:
        args += ["-o", out / "existing.png"]
    expect_error(capsys, ["generate", *args], *names)
    assert_untouched(out)


def test_trust_checkpoint_loads_and_runs(files, out, capsys):
    target = out / "trusted.png"
    with pytest.raises(SystemExit) as info:
        main(["generate", "cat", *model_args(files, **{"--vqgan-checkpoint": files["pickled"]}),
              "--trust-checkpoint", "-q", "-o", str(target)])
    assert info.value.code == 0, capsys.readouterr().err
    with Image.open(target) as image:
        assert image.size == (16, 16)
        assert '"trust_checkpoint": true' in image.info["clipgan"]


def test_bare_command_shows_help(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    captured = capsys.readouterr()
    assert info.value.code == 2
    assert "generate" in captured.out + captured.err
    assert "Traceback" not in captured.out + captured.err


# --- real subprocesses: `python -m clipgan`, as a user runs it ---------------------------------

def run_clipgan(args: list, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "clipgan", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("argv,names", [
    pytest.param(lambda f: ["generate", "cat", "-i", "abc"], ("iterations",), id="usage-error"),
    pytest.param(lambda f: ["generate", "cat:abc", "-s", "0", "0"], ("size",), id="bad-size"),
    pytest.param(lambda f: ["generate", "cat:abc", *model_args(f)], ("cat:abc",), id="bad-prompt"),
    pytest.param(lambda f: ["generate", "cat", *model_args(f, **{"--vqgan-checkpoint": f["pickled"]})],
                 ("pickled.ckpt", "--trust-checkpoint"), id="needs-unpickling"),  # loads torch: a model-file error
])
def test_subprocess_bad_input_one_line(argv, names, files, out):
    p = run_clipgan([*argv(files), "-o", out / "existing.png"], cwd=out)
    assert_one_line(p.returncode, p.stdout, p.stderr, names)
    assert p.stdout == ""
    assert_untouched(out)


def run_unknown_tag(files, out, capsys, caplog) -> tuple[int, str, list]:
    start = time.monotonic()
    with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as info:
        main(["generate", "cat", *model_args(files, **{"--clip": "ViT-B-32:nosuchtag"}), "-o", str(out / "existing.png")])
    assert time.monotonic() - start < 30, "an unknown tag must fail at once, without a download attempt"
    assert_untouched(out)
    return info.value.code, capsys.readouterr().err, [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_unknown_clip_tag_fails_fast_without_download(files, out, capsys, caplog):
    """What works today: a known architecture with an unknown tag is refused at once with exit code 2."""
    code, err, _ = run_unknown_tag(files, out, capsys, caplog)
    assert code == 2
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:") and "nosuchtag" in line]


def test_unknown_clip_tag_one_short_line(files, out, capsys, caplog):
    code, err, logged = run_unknown_tag(files, out, capsys, caplog)
    assert not logged, [r.getMessage()[:120] for r in logged]
    assert_one_line(code, "", err, ("nosuchtag",))


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc (a folder no one can write, even root)")
def test_unwritable_output_is_a_clipgan_error():
    from clipgan.errors import ClipganError
    from clipgan.io import save_image

    with pytest.raises(ClipganError, match="could not write /proc/clipgan-test.png"):
        save_image(Image.new("RGB", (4, 4)), "/proc/clipgan-test.png", {"seed": 1})
