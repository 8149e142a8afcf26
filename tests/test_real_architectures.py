"""The published architectures (imagenet f16-16384 VQGAN, ViT-B-32) with random weights: 2 steps at 256x256."""

import pytest

import clipgan
from conftest import write_vqgan

# ddconfig of the published vqgan_imagenet_f16_16384 model.yaml
F16_16384 = dict(double_z=False, z_channels=256, resolution=256, in_channels=3, out_ch=3, ch=128,
                 ch_mult=[1, 1, 2, 2, 4], num_res_blocks=2, attn_resolutions=[16], dropout=0.0)


@pytest.mark.slow
def test_f16_16384_and_vit_b_32_run_two_steps(tmp_path):
    yaml_path, ckpt_path = write_vqgan(tmp_path, "vq", n_embed=16384, embed_dim=256, dd=F16_16384)
    seen = []
    result = clipgan.generate("a lighthouse in fog", vqgan_config=str(yaml_path), vqgan_checkpoint=str(ckpt_path),
                              clip=("ViT-B-32:random",), size=(256, 256), iterations=2, cutn=4, seed=0,
                              device="cpu", callback=seen.append)
    assert result.image.size == (256, 256) and len(seen) == 2
    assert seen[0].z.shape == (1, 256, 16, 16)
    assert not (seen[0].z == seen[1].z).all()
