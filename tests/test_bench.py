"""The classic reference step the speed benchmark compares against: same maths as clipgan's where it should be."""

import pytest
import torch

from clipgan.bench.classic import ClassicCutouts, ClassicStep, checkins_per_step, classic_prompt_loss, one_hot_quantize
from clipgan.losses import prompt_loss, vector_quantize


def test_one_hot_quantize_matches_clipgan_quantizer():
    g = torch.Generator().manual_seed(0)
    codebook, z = torch.randn(32, 4, generator=g), torch.randn(1, 4, 5, 5, generator=g, requires_grad=True)
    classic = one_hot_quantize(z.movedim(1, 3), codebook).movedim(3, 1)
    assert torch.allclose(classic, vector_quantize(z, codebook), atol=1e-6)
    classic.sum().backward()  # straight through: d/dz of the sum is all ones
    assert torch.equal(z.grad, torch.ones_like(z))


@pytest.mark.parametrize("weight", [1.0, -0.5])
def test_classic_prompt_loss_matches_clipgan(weight):
    g = torch.Generator().manual_seed(1)
    embeds, target = torch.randn(6, 8, generator=g), torch.randn(1, 8, generator=g)
    ours = prompt_loss(torch.nn.functional.normalize(embeds, dim=-1), torch.nn.functional.normalize(target, dim=-1), weight)
    assert classic_prompt_loss(embeds, target, weight).item() == pytest.approx(ours.item(), rel=1e-5)


def test_classic_cutouts_are_the_pooled_whole_image():
    cut = ClassicCutouts(8, cutn=3, noise_fac=0)
    cut.augs = torch.nn.Sequential()  # pooling alone
    image = torch.rand(1, 3, 32, 32)
    out = cut(image)
    pooled = (torch.nn.functional.adaptive_avg_pool2d(image, 8) + torch.nn.functional.adaptive_max_pool2d(image, 8)) / 2
    assert out.shape == (3, 3, 8, 8) and torch.allclose(out, pooled.expand(3, -1, -1, -1))


def test_classic_step_runs_and_moves_z(tiny_models):
    from clipgan.models.clip import load_clip
    from clipgan.models.vqgan import load_vqgan

    vqgan = load_vqgan(*tiny_models["vq"])
    clip = load_clip(":".join(map(str, tiny_models["clip"])))
    z = vqgan.codebook[torch.randint(16, (4, 4), generator=torch.Generator().manual_seed(0))].movedim(-1, 0)[None]
    step = ClassicStep(vqgan, clip.model, [(clip.encode_text(["a red circle"]), 1.0, float("-inf"))], z, cutn=4)
    losses = [step.step(i) for i in range(2)]
    assert all(torch.isfinite(torch.tensor(losses))) and not torch.equal(step.z, z)
    assert step.last_png is not None and step.last_png[:4] == b"\x89PNG"  # step 0 is a checkin
    assert checkins_per_step() == pytest.approx(11 / 501)
