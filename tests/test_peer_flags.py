"""nerdyrodent/VQGAN-CLIP's generate.py flags: each alias through the real CLI parser gives the same
Settings and Job as clipgan's long flags; what clipgan lacks (DiffGrad, rotations...) is one line and
exit 2; and what was added for them (noise prompts, pooled cutouts, video length, interpolation) works."""

import dataclasses

import numpy as np
import pytest
import torch
from conftest import tiny_cli_args
from PIL import Image
from typer.testing import CliRunner

from clipgan import cli_generate
from clipgan.cli import app, main
from clipgan.cli_options import clip_name
from clipgan.cutouts import CutoutConfig, Cutouts
from clipgan.video import VideoWriter, iter_frames, read_video_info

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def parsed(monkeypatch, tmp_path):
    """argv -> (Settings, Job) as `clipgan generate` would run them (the run itself is skipped)."""
    Image.new("RGB", (8, 8), "red").save(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)

    def parse(args):
        seen = []
        monkeypatch.setattr(cli_generate, "run_job", lambda settings, job, quiet: seen.append((settings, job)))
        result = CliRunner().invoke(app, ["generate", *args])
        assert result.exit_code == 0 and seen, result.output
        return seen[0]

    return parse


TABLE = [  # (the peer's flags, clipgan's long flags)
    (["-p", "a red circle|a blue square:0.5"], ["a red circle|a blue square:0.5"]),
    (["-p", "a", "-p", "b"], ["a", "b"]),
    (["x", "-ip", "a.png|a.png:0.5"], ["x", "--image-prompt", "a.png|a.png:0.5"]),
    (["x", "-ii", "a.png", "-iw", "0.5"], ["x", "--init-image", "a.png", "--init-weight", "0.5"]),
    (["x", "-in", "gradient"], ["x", "--init-noise", "gradient"]),
    (["x", "-cuts", "8", "-cutp", "1.5"], ["x", "--cutn", "8", "--cut-pow", "1.5"]),
    (["x", "-se", "5", "-sd", "7"], ["x", "--save-every", "5", "--seed", "7"]),
    (["x", "-opt", "AdamW"], ["x", "--optimizer", "adamw"]),
    (["x", "-opt", "Adagrad"], ["x", "--optimizer", "adagrad"]),
    (["x", "-opt", "Adamax"], ["x", "--optimizer", "adamax"]),
    (["x", "-opt", "RAdam"], ["x", "--optimizer", "radam"]),
    (["x", "-opt", "RMSprop"], ["x", "--optimizer", "rmsprop"]),
    (["x", "-conf", "v.yaml", "-ckpt", "v.ckpt"], ["x", "--vqgan-config", "v.yaml", "--vqgan-checkpoint", "v.ckpt"]),
    (["x", "-m", "ViT-B/32"], ["x", "--clip", "ViT-B-32:openai"]),
    (["x", "-m", "ViT-L/14@336px"], ["x", "--clip", "ViT-L-14-336:openai"]),
    (["x", "-cd", "cpu", "-lr", "0.2"], ["x", "--device", "cpu", "--lr", "0.2"]),
    (["x", "-cpe", "10", "-i", "7"], ["x", "--change-prompt-every", "10", "--iterations", "7"]),
    (["x", "-s", "32", "48", "-o", "o.png"], ["x", "--size", "32", "48", "--output", "o.png"]),
    (["x", "-nps", "1 2", "-npw", "0.5"], ["x", "--noise-prompt-seeds", "1,2", "--noise-prompt-weights", "0.5"]),
    (["x", "-cutm", "latest"], ["x", "--cut-method", "pooled"]),
    (["x", "-cutm", "original", "-cutp", "2"], ["x", "--cut-method", "crops", "--cut-pow", "2"]),
    (["x", "-aug", "Ji,Af Pe"], ["x", "--augments", "jitter,affine,perspective"]),
    (["x", "-o", "o.png", "-vid"], ["x", "-o", "o.png", "--video", "o.mp4"]),
    (["x", "-i", "20", "-vid", "-o", "o.png", "-vl", "2", "-ofps", "30"],
     ["x", "-i", "20", "--video", "o.mp4", "-o", "o.png", "--fps", "10", "--output-fps", "30"]),
]


@pytest.mark.parametrize("peer,ours", TABLE, ids=[" ".join(p) for p, _ in TABLE])
def test_peer_flag_gives_the_same_settings_and_job(parsed, peer, ours):
    (s1, j1), (s2, j2) = parsed(peer), parsed(ours)
    assert s1 == s2 and j1 == j2
    assert s1 != parsed(["x"])[0] or j1 != parsed(["x"])[1]  # the flag did something


def test_multi_letter_flags_are_not_read_as_a_short_flag_and_its_value(parsed):
    settings, job = parsed(["x", "-ii", "a.png", "-se", "5", "-i", "9"])
    assert settings.init_image == "a.png" and job.save_every == 5 and settings.iterations == 9
    assert parsed(["x", "-i9"])[0].iterations == 9  # click's glued short form still works


def test_settings_fields_set_by_peer_flags():
    s = cli_generate.Settings().replace(noise_prompt_seeds=[1, 2], noise_prompt_weights=[0.5], cut_method="pooled")
    assert dataclasses.asdict(s)["noise_prompt_seeds"] == [1, 2]
    assert clip_name("RN50x4") == "RN50x4:openai" and clip_name("ViT-B-32:openai") == "ViT-B-32:openai"


@pytest.mark.parametrize("args,says", [
    (["x", "-opt", "DiffGrad"], "DiffGrad"),
    (["x", "-opt", "AdamP"], "AdamP"),
    (["x", "-cutm", "bogus"], "unknown cut method 'bogus'"),
    (["x", "-aug", "Ro"], "unknown augment 'Ro'"),
    (["x", "-nps", "one"], "'one' is not an integer"),
    (["x", "-nps", "1", "-npw", "1,2"], "2 noise prompt weights for 1 noise prompt seeds"),
    (["x", "-nps", "1", "2"], "prompt '2' is only a number"),
    (["x", "-zvid"], "clipgan zoom"),
    (["x", "-ofps", "60"], "add --video"),
    (["x", "--video", "v.gif", "-ofps", "5", "--fps", "10"], "must be more than"),
    (["x", "--video", "v.gif", "-vl", "0"], "video-length must be positive"),
])
def test_bad_peer_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, says):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["generate", *args])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("error: ") and says in err, err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- what was added


def run_png(args, out):
    result = CliRunner().invoke(app, ["generate", *[str(a) for a in args], "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def test_noise_prompts_are_seeded_targets(tiny_loaded, tmp_path):
    _, kw = tiny_loaded
    common = ["a red circle", *tiny_cli_args(kw), "-i", "4"]
    plain = run_png(common, tmp_path / "p.png")
    a = run_png([*common, "-nps", "3", "-npw", "4"], tmp_path / "a.png")
    again = run_png([*common, "-nps", "3", "-npw", "4"], tmp_path / "b.png")
    other = run_png([*common, "-nps", "4", "-npw", "4"], tmp_path / "c.png")
    assert np.array_equal(a, again)  # seeded
    assert not np.array_equal(a, plain) and not np.array_equal(a, other)
    alone = run_png([*tiny_cli_args(kw), "-i", "2", "-nps", "3"], tmp_path / "d.png")  # noise alone is a prompt too
    assert alone.shape == (32, 32, 3)


def test_noise_target_is_a_unit_vector_of_clip_width(tiny_loaded):
    from clipgan.pipeline import noise_targets

    models, kw = tiny_loaded
    s = cli_generate.Settings().replace(noise_prompt_seeds=[3, 5], noise_prompt_weights=[2.0])
    targets = noise_targets(s, models.perceptors[0], models.device)
    width = models.perceptors[0].encode_text(["a"]).shape[-1]
    assert [t.embeds.shape for t in targets] == [(1, width)] * 2 and [t.weight for t in targets] == [2.0, 1.0]
    assert torch.allclose(targets[0].embeds.norm(dim=-1), torch.ones(1))
    assert torch.equal(targets[0].embeds, noise_targets(s, models.perceptors[0], models.device)[0].embeds)


def test_pooled_cutouts_see_the_whole_picture():
    image = torch.zeros(1, 3, 64, 64)
    image[..., :32, :] = 1  # top half white
    cut = Cutouts(16, CutoutConfig(cutn=3, augments=(), method="pooled"))(image)
    assert cut.shape == (3, 3, 16, 16)
    assert torch.equal(cut[0], cut[2])  # no augments: every cutout is the same whole picture
    assert torch.all(cut[:, :, :8] == 1) and torch.all(cut[:, :, 8:] == 0)
    crops = Cutouts(16, CutoutConfig(cutn=3, augments=(), cut_pow=3))(image)
    assert not torch.equal(crops[0], crops[1])  # random crops differ


def test_pooled_cut_method_runs_and_differs(tiny_loaded, tmp_path):
    _, kw = tiny_loaded
    common = ["a red circle", *tiny_cli_args(kw), "-i", "4"]
    assert not np.array_equal(run_png([*common, "-cutm", "latest"], tmp_path / "a.png"), run_png(common, tmp_path / "b.png"))


def test_video_length_sets_the_rate(tiny_loaded, tmp_path):
    _, kw = tiny_loaded
    out = tmp_path / "v.png"
    run_png(["a red circle", *tiny_cli_args(kw), "-i", "6", "-vid", "-vl", "2"], out)
    assert read_video_info(tmp_path / "v.mp4")[:2] == (6, pytest.approx(3))  # 6 frames in 2 s


def test_output_fps_interpolates_motion(tmp_path):
    out = tmp_path / "m.mp4"
    with VideoWriter(out, fps=2, interpolate_fps=8) as video:
        for x in (0, 16, 32):  # a white bar moving right 16 px a frame
            frame = torch.zeros(1, 3, 32, 64)
            frame[..., x:x + 16] = 1
            video.append(frame)
    count, fps, _ = read_video_info(out)
    assert fps == pytest.approx(8) and count > 3
    centres = [np.argwhere(np.asarray(f)[..., 0].mean(0) > 128).mean() for f in iter_frames(out)]
    # between the inputs' bar centres (7.5, 23.5, 39.5) there are frames with the bar half-way
    assert any(10 < c < 21 for c in centres) and any(26 < c < 37 for c in centres)
