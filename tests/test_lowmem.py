"""--low-memory: checkpointing in the decoder gives the same gradients and saves fewer tensors."""

import pytest
import torch
from conftest import iterate_vqgan

from clipgan.models.lowmem import enable_low_memory, is_low_memory, low_memory


DD = dict(double_z=False, z_channels=4, resolution=32, in_channels=3, out_ch=3, ch=32,
          ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[16], dropout=0.0)


@pytest.fixture()
def decoder():
    from taming.modules.diffusionmodules.model import Decoder

    torch.manual_seed(0)
    return Decoder(**DD).eval()


def _grad_and_saved_bytes(decoder, z):
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    z = z.clone().requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = decoder(z)
    (out.square().mean() + out[:, :, :4].sum()).backward()
    return out.detach(), z.grad, sum(saved)


def test_same_output_and_gradients_with_fewer_saved_bytes(decoder):
    z = torch.randn(1, 4, 16, 16)
    out, grad, plain_bytes = _grad_and_saved_bytes(decoder, z)
    keys = list(decoder.state_dict())
    enable_low_memory(decoder)
    out_lm, grad_lm, lm_bytes = _grad_and_saved_bytes(decoder, z)
    assert torch.allclose(out, out_lm, atol=1e-6) and torch.allclose(grad, grad_lm, atol=1e-6)
    assert grad.abs().sum() > 0
    assert lm_bytes < plain_bytes / 2, (lm_bytes, plain_bytes)
    assert list(decoder.state_dict()) == keys  # weights untouched: loads and saves as before


def test_context_restores_the_plain_forward(decoder):
    with low_memory(decoder):
        assert is_low_memory(decoder)
    assert not is_low_memory(decoder)
    with low_memory(decoder, on=False):
        assert not is_low_memory(decoder)


def test_iterate_low_memory_takes_the_same_steps(tiny_models):
    from clipgan.cutouts import CutoutConfig, Cutouts
    from clipgan.models.clip import load_clip
    from clipgan.models.vqgan import load_vqgan
    from clipgan.optimize import Guide, Target

    vqgan = load_vqgan(*tiny_models["vq"])
    clip = load_clip(":".join(map(str, tiny_models["clip"])))
    guide = Guide(clip, Cutouts(clip.input_size, CutoutConfig(cutn=4)), [Target("x", clip.encode_text(["a red circle"]))])
    z = vqgan.codebook[torch.randint(16, (8, 8), generator=torch.Generator().manual_seed(0))].movedim(-1, 0)[None]
    runs = []
    for flag in (False, True):
        torch.manual_seed(1)
        runs.append(list(iterate_vqgan(vqgan, [guide], z, steps=3, low_memory=flag)))
    assert not is_low_memory(vqgan)
    for a, b in zip(*runs):
        assert a.loss == pytest.approx(b.loss, rel=1e-5)
        assert torch.allclose(a.z, b.z, atol=1e-5)
