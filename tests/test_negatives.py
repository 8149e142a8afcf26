"""Guided negatives for the toy CLIP's training (clipgan.toyworld.negatives) and the loss they enter."""

import math
from pathlib import Path

import pytest
import torch

from clipgan.toyworld import clip as cm
from clipgan.toyworld import negatives as ng
from clipgan.toyworld import render as rw

CKPT = Path(__file__).resolve().parents[1] / "checkpoints"


def test_contrastive_counts_an_undescribed_image_only_as_a_negative():
    """Row 1 has no true caption: it leaves the image-to-text term alone and enters text 0's
    softmax over images; by hand, loss = (-log p(text 0 | image 0) - log p(image 0 | text 0)) / 2."""
    img = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8]]), dim=-1).requires_grad_(True)
    txt = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2], [0.0, 1.0]]), dim=-1)
    pos = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    loss = cm.contrastive(img, txt, pos, 10.0)
    L = 10.0 * img.detach() @ txt.T
    i2t = -(L[0, 0] - torch.logsumexp(L[0], 0))
    t2i = -(L[0, 0] - torch.logsumexp(L[:, 0], 0))
    assert math.isclose(loss.item(), ((i2t + t2i) / 2).item(), rel_tol=1e-5)
    loss.backward()
    # the negative is pushed away from text 0 and not pulled toward any text
    assert float(img.grad[1] @ txt[0]) > 0
    assert torch.isfinite(img.grad).all()


def test_guided_runs_raise_the_clip_score_and_are_seeded():
    clip = cm.load(CKPT / "toy-clip.json", CKPT / "toy-clip.safetensors")
    vq = ng.load_vqgan(CKPT)
    specs = rw.sample_specs(2, 5)

    def run():
        torch.manual_seed(0)  # kornia's augmentations draw from torch's generator
        return ng.guided(clip, vq, specs, 12, (1, 12), torch.Generator().manual_seed(3))

    first, last = run()
    assert first.shape == last.shape == (2, 3, 64, 64)
    assert 0 <= float(last.min()) and float(last.max()) <= 1
    import open_clip

    with torch.no_grad():
        t = torch.nn.functional.normalize(clip.encode_text(open_clip.get_tokenizer("ViT-B-32")(
            [rw.caption(s) for s in specs])).float(), dim=-1)
        sim = lambda x: (torch.nn.functional.normalize(clip.encode_image(cm.normalize(x)).float(), dim=-1) * t).sum(1)  # noqa: E731
    assert (sim(last) > sim(first)).all()
    again = run()
    assert torch.equal(again[1], last)
    assert all(p.requires_grad for p in clip.parameters())  # the CLIP is handed back trainable


def test_partners_keep_the_asked_colours_and_shape_and_move_the_shape():
    labels = cm.spec_labels([rw.Spec("star", "red", "blue"), rw.Spec("cross", "white", "black")])
    specs = ng.Pool.partners(labels, torch.Generator().manual_seed(0))
    assert [(s.shape, s.fg, s.bg) for s in specs] == [("star", "red", "blue"), ("cross", "white", "black")]
    assert len({(s.x, s.y, s.size) for s in specs}) == 2


def test_quick_training_with_guided_negatives(tmp_path):
    from clipgan.toyworld import train

    draft = ["--guided-contrast", "0.5", "--guided-draft", str(CKPT / "toy-clip.safetensors"), "--guided-draft-steps", "2"]
    for label, extra in (("shapeless", []), ("against", draft)):
        card = train.main(["--out", str(tmp_path / label), "--quick", "--only", "clip", "--threads", "1",
                           "--guided-share", "0.25", "--guided-n", "2", "--guided-keep", "1", "2",
                           "--guided-label", label, "--recon-share", "0.5", "--vqgan-dir", str(CKPT), *extra])
        t = card["clip"]["train"]
        assert t["guided_label"] == label and t["guided_keep"] == [1, 2] and t["recon_share"] == 0.5
        assert (t.get("guided_draft_steps") == 2) == bool(extra)
        assert math.isfinite(t["final_loss"])


def test_guided_runs_drawn_as_the_coarse_stage_with_the_contrast():
    """--guided-size 32 --guided-contrast C: 32 px latents (an 8x8 grid) handed back at 64 px, and the
    other shapes pushed away, so the asked caption's lead over them grows more than without it."""
    import open_clip

    clip = cm.load(CKPT / "toy-clip.json", CKPT / "toy-clip.safetensors")
    vq = ng.load_vqgan(CKPT)
    specs = rw.sample_specs(2, 5)
    tok = open_clip.get_tokenizer("ViT-B-32")
    with torch.no_grad():
        def text(s):
            return torch.nn.functional.normalize(clip.encode_text(tok([rw.caption(s)])).float(), dim=-1)[0]
        asked = torch.stack([text(s) for s in specs])
        others = torch.stack([torch.stack([text(rw.Spec(o, s.fg, s.bg)) for o in rw.SHAPES if o != s.shape])
                              for s in specs])

    def lead(x):
        with torch.no_grad():
            e = torch.nn.functional.normalize(clip.encode_image(cm.normalize(x)).float(), dim=-1)
        return (e * asked).sum(1) - torch.einsum("nd,nkd->nk", e, others).mean(1)

    def run(contrast):
        torch.manual_seed(0)
        return ng.guided(clip, vq, specs, 12, (1, 12), torch.Generator().manual_seed(3), size=32, contrast=contrast)

    first, last = run(1.0)
    assert first.shape == last.shape == (2, 3, 64, 64)
    plain = run(0.0)[1]
    assert not torch.equal(plain, last)
    assert (lead(last) - lead(first) > lead(plain) - lead(first)).all()
    assert torch.equal(run(1.0)[1], last)


def test_drafted_negatives_refine_a_32px_draft_with_the_trained_clip_as_partner():
    """draft=D: latents start on an 8x8 grid (32 px) pulled by D, then the picture is enlarged and
    re-encoded and refined by D and the partner; only the refinement's pictures are kept, seeded,
    the draft's steps show in them, and neither CLIP is left with a gradient."""
    draft = cm.load(CKPT / "toy-clip.json", CKPT / "toy-clip.safetensors")
    partner = cm.load(CKPT / "toy-clip.json", CKPT / "toy-clip.safetensors")
    vq = ng.load_vqgan(CKPT)
    specs = rw.sample_specs(2, 5)

    def run(draft_steps=6):
        torch.manual_seed(0)
        return ng.guided(partner, vq, specs, 12, (1, 12), torch.Generator().manual_seed(3), contrast=1.0,
                         draft=draft, draft_steps=draft_steps)

    first, last = run()
    assert first.shape == last.shape == (2, 3, 64, 64)
    assert 0 <= float(last.min()) and float(last.max()) <= 1
    assert not torch.equal(first, last)
    assert torch.equal(run()[1], last)
    assert not torch.equal(run(draft_steps=2)[0], first)
    assert all(p.requires_grad and p.grad is None for p in partner.parameters())
    assert all(p.grad is None for p in draft.parameters())
    with pytest.raises(ValueError, match="contrast > 0"):  # a partner without a contrast would pull nothing
        ng.guided(partner, vq, specs, 2, (2,), torch.Generator().manual_seed(3), draft=draft, draft_steps=1)
    with pytest.raises(ValueError, match="contrast > 0"):  # and a pool refuses it before training starts
        ng.Pool(CKPT, 2, 1, (1,), draft=str(CKPT / "toy-clip.safetensors"))
