"""The CUDA path's options on CPU: auto is off today, a compile failure falls back to eager with one
notice, and compiled or channels_last steps give the eager loss."""

import warnings

import pytest
import torch
from conftest import iterate_vqgan

from clipgan import accel
from clipgan.config import Settings
from clipgan.cutouts import CutoutConfig, Cutouts
from clipgan.errors import ClipganError, ClipganNotice
from clipgan.models.clip import load_clip
from clipgan.models.vqgan import load_vqgan
from clipgan.optimize import Guide, Target


@pytest.fixture(scope="module")
def parts(tiny_models):
    vqgan = load_vqgan(*tiny_models["vq"])
    config, weights = tiny_models["clip"]
    clip = load_clip(f"{config}:{weights}")
    guide = Guide(clip, Cutouts(clip.input_size, CutoutConfig(cutn=2)), [Target("x", clip.encode_text(["a red circle"]))])
    z = vqgan.codebook[torch.randint(16, (4, 4), generator=torch.Generator().manual_seed(0))].movedim(-1, 0)[None]
    return vqgan, guide, z


def losses(parts, steps=3, **options) -> list[float]:
    vqgan, guide, z = parts
    torch.manual_seed(3)
    return [s.loss for s in iterate_vqgan(vqgan, [guide], z, steps=steps, lr=0.1, **options)]


def forwards(parts) -> list:
    vqgan, guide, _ = parts
    return [m.__dict__.get("forward") for m in (vqgan.decoder, guide.perceptor.model.visual)]


def test_auto_follows_the_measured_break_even_and_on_off_are_obeyed():
    cuda = torch.device("cuda")
    assert accel.resolve("auto", "cuda_graphs", cuda, accel.AUTO["cuda_graphs"]) is True
    assert accel.resolve("auto", "cuda_graphs", cuda, accel.AUTO["cuda_graphs"] - 1) is False
    assert accel.resolve("auto", "compile", cuda, 10**6) is False  # never pays before CUDA graphs do
    for name in ("compile", "cuda_graphs"):
        assert accel.resolve("auto", name, torch.device("cpu"), 10**6) is False
        assert accel.resolve("on", name, torch.device("cpu")) is True
        assert accel.resolve("off", name, torch.device("cuda")) is False
    assert accel.compile_mode(False, False) is None
    assert accel.compile_mode(True, False) == "default"
    assert accel.compile_mode(False, True) == accel.compile_mode(True, True) == "reduce-overhead"


def test_settings_take_auto_on_off_only():
    assert Settings().compile == Settings().cuda_graphs == "auto"
    assert Settings().replace(compile="on", cuda_graphs="off").compile == "on"
    with pytest.raises(ClipganError, match="unknown compile 'yes'"):
        Settings().replace(compile="yes")
    from clipgan.pipeline import iterate_options

    opts = iterate_options(Settings().replace(compile="on"), torch.device("cpu"))
    assert opts["compile"] is True and opts["cuda_graphs"] is False


def test_unknown_backend_falls_back_with_one_notice(parts):
    """torch.compile itself refuses the backend name: eager from the start, one notice, same losses."""
    before = forwards(parts)
    with pytest.warns(ClipganNotice, match="torch.compile failed .*running without it") as record:
        a = accel.Accelerated(accel.accelerated_modules(parts[0], [parts[1].perceptor]), "default", backend="no-such-backend")
    assert len([w for w in record if issubclass(w.category, ClipganNotice)]) == 1
    assert not a.active and forwards(parts) == before


def _failing_backend(gm, example_inputs):
    raise RuntimeError("this backend cannot compile anything")


def use_backend(monkeypatch, backend) -> None:
    """iterate() compiles with inductor; these tests give torch.compile another real backend."""
    original = accel.Accelerated.__init__

    def init(self, modules, mode, backend_=None):
        original(self, modules, mode, backend=backend)

    monkeypatch.setattr(accel.Accelerated, "__init__", init)
    torch._dynamo.reset()


def test_failure_inside_a_step_falls_back_and_the_run_goes_on(parts, monkeypatch):
    """A backend that raises when dynamo hands it a graph (at the first step): the step reruns eagerly,
    one notice is given, and the losses are the eager run's exactly."""
    eager = losses(parts)
    use_backend(monkeypatch, _failing_backend)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fallen = losses(parts, compile=True)
    notices = [w for w in caught if issubclass(w.category, ClipganNotice)]
    assert len(notices) == 1 and "this backend cannot compile anything" in str(notices[0].message)
    assert fallen == eager
    assert forwards(parts) == [None, None]  # the modules' own forwards again


def test_compiled_forwards_are_removed_after_the_run(parts, monkeypatch):
    """With the aot_eager backend (dynamo and AOTAutograd tracing, no code generation): the eager
    losses, compiled forwards in place during the run only."""
    eager = losses(parts)
    vqgan, guide, z = parts
    use_backend(monkeypatch, "aot_eager")
    torch.manual_seed(3)
    steps = iterate_vqgan(vqgan, [guide], z, steps=3, lr=0.1, compile=True)
    first = next(steps)
    assert all(f is not None for f in forwards(parts))  # compiled forwards in place during the run
    rest = [s.loss for s in steps]
    assert forwards(parts) == [None, None]
    assert [first.loss] + rest == pytest.approx(eager, rel=1e-4)


def test_channels_last_gives_the_eager_loss(parts):
    import copy

    vqgan, guide, z = parts
    eager = losses(parts)
    vq2 = copy.deepcopy(vqgan).to(memory_format=torch.channels_last)
    clip2 = copy.deepcopy(guide.perceptor).to(memory_format=torch.channels_last)
    guide2 = Guide(clip2, guide.cutouts, guide.targets)
    assert losses((vq2, guide2, z)) == pytest.approx(eager, rel=1e-4)


@pytest.mark.slow
def test_inductor_compiled_step_gives_the_eager_loss(parts):
    """The real thing on CPU (inductor, C++ code generation): minutes on a small machine."""
    eager = losses(parts)
    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClipganNotice)  # a fallback would make this test pass for nothing
        compiled = losses(parts, compile=True)
    assert compiled == pytest.approx(eager, rel=1e-3)


def test_cli_flags_refuse_other_values():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "clipgan", "generate", "x", "--compile", "yes"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith("error:") and "yes" in out.stderr
    help_text = subprocess.run([sys.executable, "-m", "clipgan", "generate", "--help"], capture_output=True, text=True).stdout
    assert "--compile" in help_text and "--cuda-graphs" in help_text
