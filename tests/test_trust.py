"""Trust to unpickle (which can run code) comes only from the run's own command line or API call:
never from a PNG's settings (--from-png) nor from a resume state file.

The checkpoints here are real malicious pickles: loading one with full unpickling writes a
marker file. The control test shows that it does, so the other tests can fail.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from clipgan.cli import main
from clipgan.config import Settings
from clipgan.errors import ClipganError
from clipgan.interrupt import save_state
from clipgan.io import SETTINGS_KEY
from clipgan.models.weights import load_state


class Payload:
    """Unpickling this runs `exec`, which writes the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


@pytest.fixture
def evil(tmp_path, tiny_models) -> dict:
    """A VQGAN checkpoint that fits the tiny yaml, plus a payload; and where its marker would go."""
    marker = tmp_path / "MARKER"
    state = torch.load(tiny_models["vq"][1], weights_only=True)
    state["payload"] = Payload(marker)
    ckpt = tmp_path / "evil.ckpt"
    torch.save(state, ckpt)
    return {"ckpt": ckpt, "marker": marker}


def settings_asking_for_trust(tiny_settings, evil) -> dict:
    return {**Settings(**tiny_settings).to_dict(), "prompts": ["a red circle"], "iterations": 1,
            "vqgan_checkpoint": str(evil["ckpt"]), "trust_checkpoint": True}


def run(argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    return info.value.code


def test_control_full_unpickling_runs_the_payload(evil):
    """The payload is live: with trust given in the call, loading it writes the marker."""
    load_state(evil["ckpt"], trust=True)
    assert evil["marker"].read_text() == "ran"


@pytest.mark.parametrize("how", ["torch-zip", "torch-legacy", "pickle-2", "pickle-5"])
def test_malicious_checkpoint_refused_naming_the_flag(tmp_path, evil, how):
    path = evil["ckpt"]
    if how != "torch-zip":
        data = {"state_dict": {"w": torch.zeros(2)}, "payload": Payload(evil["marker"])}
        path = tmp_path / f"{how}.ckpt"
        if how == "torch-legacy":
            torch.save(data, path, _use_new_zipfile_serialization=False)
        else:
            path.write_bytes(pickle.dumps(data, protocol=int(how[-1])))
    with pytest.raises(ClipganError, match="--trust-checkpoint") as info:
        load_state(path)
    assert "corrupted" not in str(info.value)
    assert not evil["marker"].exists()


def test_png_settings_never_grant_trust(tmp_path, tiny_settings, evil, capsys):
    info = PngInfo()
    info.add_text(SETTINGS_KEY, json.dumps(settings_asking_for_trust(tiny_settings, evil)))
    png = tmp_path / "shared.png"
    Image.new("RGB", (32, 32)).save(png, pnginfo=info)
    assert Settings.from_dict(json.loads(Image.open(png).info[SETTINGS_KEY])).trust_checkpoint is False
    code = run(["generate", "--from-png", png, "-q", "-o", tmp_path / "out.png"])
    err = capsys.readouterr().err
    assert code == 2 and "--trust-checkpoint" in err and "Traceback" not in err, err
    assert not evil["marker"].exists()
    assert not (tmp_path / "out.png").exists()


def test_png_settings_and_trust_from_the_command_line(tmp_path, tiny_settings, evil, capsys):
    """The user's own flag still works with --from-png (and then the payload does run)."""
    info = PngInfo()
    info.add_text(SETTINGS_KEY, json.dumps(settings_asking_for_trust(tiny_settings, evil)))
    png = tmp_path / "shared.png"
    Image.new("RGB", (32, 32)).save(png, pnginfo=info)
    assert run(["generate", "--from-png", png, "--trust-checkpoint", "-q", "-o", tmp_path / "out.png"]) == 0
    assert evil["marker"].exists() and (tmp_path / "out.png").exists()


def real_state(tiny_loaded) -> dict:
    """A state file's contents as `clipgan generate` writes them after one step."""
    from clipgan.pipeline import generate, resume_state, rng_state

    models, kwargs = tiny_loaded
    steps = []
    settings = Settings(**kwargs).replace(prompts=["a red circle"], iterations=3)
    generate(models=models, settings=settings, callback=lambda s: steps.append((s, rng_state())))
    step, rng = steps[0]
    return resume_state(step, settings, [step.loss], rng)


def test_state_file_never_grants_trust(tmp_path, tiny_loaded, evil, capsys):
    state = real_state(tiny_loaded)
    state["settings"] = {**state["settings"], "vqgan_checkpoint": str(evil["ckpt"]), "trust_checkpoint": True}
    state["job"] = {"output": str(tmp_path / "out.png"), "save_every": 0, "frames_dir": None, "video": None, "fps": 24.0}
    path = tmp_path / "out.state.pt"
    save_state(state, path)
    code = run(["resume", path, "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "--trust-checkpoint" in err and "Traceback" not in err, err
    assert not evil["marker"].exists()
    assert path.exists() and not (tmp_path / "out.png").exists()


def test_state_file_is_never_unpickled(tmp_path, capsys):
    """The state file itself is read tensors-only: a payload inside it does not run."""
    marker = tmp_path / "MARKER"
    path = tmp_path / "x.state.pt"
    torch.save({"kind": "generate", "job": {}, "payload": Payload(marker)}, path)
    code = run(["resume", path, "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "not a readable clipgan state file" in err, err
    assert not marker.exists()


@pytest.mark.parametrize("value", ["no", "yes", 1, 0, None])
def test_trust_is_a_real_boolean(value):
    with pytest.raises(ClipganError, match="trust_checkpoint must be true or false"):
        Settings().replace(trust_checkpoint=value)
