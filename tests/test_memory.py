"""Memory safety: the step estimate against the bytes autograd really keeps, the refusal before
a run, and the advice an out-of-memory error turns into on the command line."""

from __future__ import annotations

import pytest
import torch
from conftest import iterate_vqgan
import typer

from clipgan import memory
from clipgan.cli import user_errors
from clipgan.config import Settings
from clipgan.errors import ClipganError
from clipgan.models import lowmem
from clipgan.image_models.vqgan import synth
from clipgan.pipeline import build_guides, generate, initial_z, load_models


def saved_bytes(fn, modules) -> tuple[int, object]:
    """Bytes of the distinct tensors autograd saves while `fn` runs, weights excluded."""
    weights = {t.untyped_storage().data_ptr() for m in modules for t in [*m.parameters(), *m.buffers()]}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()  # views and repeated saves share one storage: count it once
        if storage.data_ptr() not in weights:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(seen.values()), out


@pytest.fixture(scope="module")
def models(tiny_settings):
    return load_models(Settings(**tiny_settings))


def measured_step(models, tiny_settings, side: int, cutn: int = 4) -> tuple[int, memory.Estimate]:
    """Saved bytes of one real step (forward and backward) of the loop at side x side, and the estimate."""
    s = Settings(**tiny_settings).replace(size=(side, side), cutn=cutn, prompts=["a red circle"])
    torch.manual_seed(0)
    guides, z = build_guides(s, models), initial_z(s, models)
    steps = iterate_vqgan(models.vqgan, guides, z, steps=2)
    measured, _ = saved_bytes(lambda: next(steps), [models.vqgan, *models.perceptors])
    est = memory.check_memory(s, models, available=2**62)
    return measured, est


@pytest.mark.parametrize("side", [32, 64])
def test_feature_step_estimate_within_a_factor_of_measured(models, tiny_settings, side):
    measured, est = measured_step(models, tiny_settings, side)
    assert 0.5 <= est.saved / measured <= 2, (est, measured)


@pytest.mark.parametrize("low_memory", [False, True])
def test_feature_decoder_estimate_and_scaling(models, low_memory):
    vqgan, f = models.vqgan, models.vqgan.factor
    measured, estimated = [], []
    for side in (32, 64):
        z = torch.randn(1, vqgan.embed_dim, side // f, side // f, requires_grad=True)
        with lowmem.low_memory(vqgan, low_memory):
            measured.append(saved_bytes(lambda: synth(vqgan, z), [vqgan])[0])
        estimated.append(memory.estimate(vqgan, [], (side, side), 1, low_memory=low_memory).decoder)
    for e, m in zip(estimated, measured):
        assert 0.5 <= e / m <= 2, (e, m)
    # doubling the side: ~4x (a little more: the attention at the latent resolution grows with area^2)
    assert 3.8 <= estimated[1] / estimated[0] <= 5 and 3.8 <= measured[1] / measured[0] <= 5
    assert estimated[1] / estimated[0] == pytest.approx(measured[1] / measured[0], rel=0.1)


def test_feature_clip_part_scales_with_cutn_not_size(models):
    a = memory.estimate(models.vqgan, models.perceptors, (32, 32), 4)
    b = memory.estimate(models.vqgan, models.perceptors, (32, 32), 8)
    c = memory.estimate(models.vqgan, models.perceptors, (64, 64), 4)
    assert (b.clip, b.cutouts) == (2 * a.clip, 2 * a.cutouts) and b.decoder == a.decoder
    assert (c.clip, c.cutouts) == (a.clip, a.cutouts) and c.decoder > 3.8 * a.decoder


def test_feature_low_memory_and_autocast_lower_the_estimate(models):
    plain = memory.estimate(models.vqgan, models.perceptors, (64, 64), 4)
    assert memory.estimate(models.vqgan, models.perceptors, (64, 64), 4, low_memory=True).total < plain.total
    assert memory.estimate(models.vqgan, models.perceptors, (64, 64), 4, dtype=torch.bfloat16).total < plain.total


def test_exception_generate_refuses_a_step_that_does_not_fit(tiny_settings, monkeypatch):
    monkeypatch.setenv(memory.ENV_VAR, "1M")
    with pytest.raises(ClipganError) as info:
        generate("a red circle", **tiny_settings)
    message = str(info.value)
    assert "\n" not in message
    assert "needs about" in message and "MiB" in message and f"{memory.ENV_VAR}=1M" in message
    assert "--low-memory" in message and "--size" in message and "--cutn" in message


def test_exception_low_memory_run_is_not_told_to_use_low_memory(tiny_settings, monkeypatch):
    monkeypatch.setenv(memory.ENV_VAR, "1K")
    with pytest.raises(ClipganError, match="--size") as info:
        generate("a red circle", **{**tiny_settings, "low_memory": True})
    assert "--low-memory" not in str(info.value)


def test_feature_limit_off_and_explicit_available(models, tiny_settings, monkeypatch):
    s = Settings(**tiny_settings)
    need = memory.check_memory(s, models, available=2**62).total
    assert memory.check_memory(s, models, available=need).total == need
    with pytest.raises(ClipganError, match="needs about"):
        memory.check_memory(s, models, available=need - 1)
    monkeypatch.setenv(memory.ENV_VAR, "off")
    memory.check_memory(s, models)
    monkeypatch.setenv(memory.ENV_VAR, str(need - 1))
    with pytest.raises(ClipganError):
        memory.check_memory(s, models)


def test_smoke_generate_runs_within_the_real_memory(tiny_settings, monkeypatch):
    monkeypatch.delenv(memory.ENV_VAR, raising=False)
    assert memory.available_bytes("cpu") is None or memory.available_bytes("cpu") > 0
    assert generate("a red circle", **tiny_settings).image.size == (32, 32)


@pytest.mark.parametrize("text, expected", [("123", 123), ("2G", 2 * 2**30), ("512m", 512 * 2**20),
                                            ("1.5GiB", 3 * 2**29), (" 4 K ", 4096)])
def test_feature_parse_size(text, expected):
    assert memory.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "-1G", "2X", "1e9"])
def test_exception_parse_size(text):
    with pytest.raises(ClipganError, match=memory.ENV_VAR):
        memory.parse_size(text)


def _run_wrapped(exc: BaseException, capsys) -> tuple[int, str]:
    @user_errors
    def command():
        raise exc

    with pytest.raises(typer.Exit) as info:
        command()
    return info.value.exit_code, capsys.readouterr().err


def test_exception_cuda_out_of_memory_becomes_advice(capsys):
    exc = torch.cuda.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which "
        "1.20 GiB is free. Of the allocated memory 70.00 GiB is allocated by PyTorch.\nSee documentation")
    code, err = _run_wrapped(exc, capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: out of memory (CUDA out of memory. Tried to allocate 2.00 GiB)")
    assert "--low-memory" in err and "--size" in err and "--cutn" in err


def test_exception_cpu_out_of_memory_becomes_advice(capsys):
    with pytest.raises(RuntimeError) as real:  # a real allocator error, not a made-up one
        torch.empty(2**60, dtype=torch.uint8)
    code, err = _run_wrapped(real.value, capsys)
    assert code == 2 and err.count("\n") == 1 and "--low-memory" in err and "enforce fail" not in err


def test_exception_other_runtime_errors_pass_through():
    @user_errors
    def command():
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes"):
        command()
