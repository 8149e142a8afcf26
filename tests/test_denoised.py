"""Denoised estimates for the toy CLIP's training (clipgan.toyworld.denoised), on a tiny random UNet."""

import math

import pytest
import torch

from clipgan.toyworld import render as rw
from clipgan.toyworld.denoised import Denoised


@pytest.fixture(scope="module")
def renders():
    return rw.render_batch(rw.sample_specs(6, 4), 64)


def test_the_share_is_replaced_at_the_same_size_and_seeded(unet_dir, renders, one_thread):
    d = Denoised(str(unet_dir), share=0.5)
    out = d(renders, torch.Generator().manual_seed(1))
    again = d(renders, torch.Generator().manual_seed(1))
    assert out.shape == renders.shape and torch.equal(out, again)
    assert torch.equal(out[3:], renders[3:])  # only the first half is an estimate
    assert not torch.equal(out[:3], renders[:3]) and 0 <= out.min() and out.max() <= 1
    assert torch.equal(Denoised(str(unet_dir), share=0.0)(renders, torch.Generator()), renders)


def test_at_the_lowest_noise_the_estimate_is_the_picture(unet_dir, renders, one_thread):
    """At timestep 0 the DDPM schedule keeps sqrt(alpha_bar) = 0.99995 of the picture, so whatever
    the (random) UNet says, x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar) is the picture
    up to about 1% of the noise's and the output's size; at the highest noise levels it is not."""
    low = Denoised(str(unet_dir), share=1.0, t_max=1e-3)  # int(1e-3 * 1000) = 1: t is always 0
    assert math.isclose(low.alphas[0].item(), 1 - 1e-4, rel_tol=1e-6)
    small = torch.nn.functional.interpolate(renders, size=32, mode="bilinear", antialias=True)
    back = torch.nn.functional.interpolate(small, size=64, mode="bilinear")
    near = (low(renders, torch.Generator().manual_seed(2)) - back).abs().mean()
    far = (Denoised(str(unet_dir), share=1.0, t_max=1.0)(renders, torch.Generator().manual_seed(2)) - back).abs().mean()
    assert near < 0.02 and far > 5 * near


def test_quick_training_with_denoised_estimates(tmp_path, unet_dir):
    from clipgan.toyworld import train

    card = train.main(["--out", str(tmp_path), "--quick", "--only", "clip", "--threads", "1",
                       "--denoised-share", "0.5", "--denoised-t-max", "0.5", "--diffusion-dir", str(unet_dir)])
    t = card["clip"]["train"]
    assert (t["denoised_share"], t["denoised_t_max"], t["diffusion_dir"]) == (0.5, 0.5, str(unet_dir))
    assert math.isfinite(t["final_loss"])
