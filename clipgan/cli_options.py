"""Options shared by the commands, declared once with their help text, and the flags of the most used
peer CLI (nerdyrodent/VQGAN-CLIP's generate.py) as aliases where they mean the same thing.

A single-dash name of several letters (`-ii`, `-cuts`) is a real option name: click matches it
whole before it would read `-i` with the value `i`. No torch here (help must stay fast).
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from clipgan.config import (CPU_SIZE, CUT_START, EARLY_STOP_GAIN, GPU_SIZE, IMAGE_MODELS, LR_FLOOR, SCHEDULERS, Augment,
                            CutMethod, CutSchedule, InitNoise, LrSchedule, Optimizer, Precision, Settings)
from clipgan.errors import ClipganError

D = Settings()
PROMPTS, OUTPUT, INIT, CUT, OPT, MODELS, RUN = "Prompts", "Output", "Start image", "Cutouts", "Optimizer", "Models", "Run"
FEATHER_HELP = ("Seam width in px: new and old pixels blend over this band next to the regenerated area; "
                "every pixel farther away stays exactly as it was (default: 1/32 of the picture's shorter side, "
                "at least 1).")
SIZE_HELP = (f"Width and height in pixels (default: the model's own, 64 for the bundled toy; else "
             f"{GPU_SIZE} on a GPU with the memory for it, {CPU_SIZE} elsewhere).")


Iterations = Annotated[int, typer.Option("-i", "--iterations", help="Optimization steps.", rich_help_panel=RUN)]
Prompt = Annotated[Optional[list[str]], typer.Option("-p", "--prompt", help='Text prompt, as the arguments ("a:2 | b" holds two); repeatable.', show_default=False, rich_help_panel=PROMPTS)]
ChangePromptEvery = Annotated[int, typer.Option("-cpe", "--change-prompt-every", help='Steps per part of a story prompt "a ^ b ^ c" (0: spread over the run).', rich_help_panel=PROMPTS)]
ImagePrompt = Annotated[Optional[list[str]], typer.Option("-ip", "--image-prompt", help='Image prompt path[:weight[:stop]]; "a.png | b.png" holds two; repeatable.', show_default=False, rich_help_panel=PROMPTS)]
NoiseSeeds = Annotated[Optional[str], typer.Option("-nps", "--noise-prompt-seeds", help='Noise prompts: seeds of random CLIP targets, "1,2" or "1 2".', show_default=False, rich_help_panel=PROMPTS)]
NoiseWeights = Annotated[Optional[str], typer.Option("-npw", "--noise-prompt-weights", help="Their weights, in the same order (missing ones: 1).", show_default=False, rich_help_panel=PROMPTS)]
Contrast = Annotated[Optional[str], typer.Option("--contrast", metavar="WORDS", help='Comma-separated words set against each other: a prompt naming one ("a red circle") is also pushed away from itself with each other word ("a red square", ...), so the named one is drawn rather than what they share. Default: the CLIP\'s own (the bundled toy\'s five shapes; none for other CLIPs); none: off.', show_default=False, rich_help_panel=PROMPTS)]
ContrastClip = Annotated[Optional[list[str]], typer.Option("--contrast-clip", metavar="CLIP", help="A CLIP beside --clip that pulls only the contrast (the named word against the others, not the text they share): in an upscale's refinement (the bundled toy's default recipe has one) and the first half of a diffusion run, nowhere else; repeat for several. Default: the CLIP's own partner (the bundled toy's toy-contrast; none for other CLIPs); none: off.", show_default=False, rich_help_panel=PROMPTS)]
ContrastWeight = Annotated[float, typer.Option("--contrast-weight", help="How much of each prompt's weight goes to the contrast (0: off).", rich_help_panel=PROMPTS)]
# generate (and batch): a size left out also takes the model's coarse-to-fine recipe (config.model_recipe)
GENERATE_SIZE_HELP = SIZE_HELP + (" Left out with the bundled toy, a picture is drawn at 32 px and refined at 64 (coarse to "
                                  "fine: more of the asked shapes); --size 64 64 draws at one size throughout.")
Size = Annotated[Optional[tuple[int, int]], typer.Option("-s", "--size", help=GENERATE_SIZE_HELP, rich_help_panel=OUTPUT, show_default=False)]
SaveEvery = Annotated[int, typer.Option("-se", "--save-every", help="Rewrite the output every N steps (0: only at the end).", rich_help_panel=OUTPUT)]
InitImage = Annotated[Optional[str], typer.Option("-ii", "--init-image", help="Start from this image.", rich_help_panel=INIT)]
InitWeight = Annotated[float, typer.Option("-iw", "--init-weight", help="Pull towards the starting latent.", rich_help_panel=INIT)]
InitNoiseOpt = Annotated[InitNoise, typer.Option("-in", "--init-noise", help="Start without an image from random codes, pixel noise or a gradient.", rich_help_panel=INIT)]
Cutn = Annotated[int, typer.Option("-cuts", "--cutn", help="Cutouts scored by CLIP per step.", rich_help_panel=CUT)]
CutPow = Annotated[float, typer.Option("-cutp", "--cut-pow", help="Cutout size exponent (>1: smaller crops).", rich_help_panel=CUT)]
CutMethodOpt = Annotated[str, typer.Option("-cutm", "--cut-method", help="crops: random squares sized by --cut-pow; pooled: the whole picture, pooled. The peer's original, updated, nrupdated (crops) and updatedpooling, latest (pooled) work too.", rich_help_panel=CUT)]
CutScheduleOpt = Annotated[CutSchedule, typer.Option("--cut-schedule", help=f"Cutouts per step over the run: constant (--cutn every step) or ramp ({CUT_START:.0%} of --cutn at the first step, rising to --cutn by half the run; early steps cost less).", rich_help_panel=CUT)]
Augments = Annotated[str, typer.Option("-aug", "--augments", help=f"Comma-separated: {', '.join(a.value for a in Augment)} (or the peer's Ji, Sh, Gn, Pe, Af, Er).", rich_help_panel=CUT)]
OptimizerOpt = Annotated[Optimizer, typer.Option("-opt", "--optimizer", help="torch optimizer (any capitalisation: AdamW).", case_sensitive=False, rich_help_panel=OPT)]
Lr = Annotated[float, typer.Option("-lr", "--lr", help="Learning rate.", rich_help_panel=OPT)]
LrScheduleOpt = Annotated[LrSchedule, typer.Option("--lr-schedule", help=f"The learning rate over the run: constant, or cosine (from --lr down to {LR_FLOOR:g} x --lr at the last step).", rich_help_panel=OPT)]
EarlyStop = Annotated[int, typer.Option("--early-stop", metavar="N", help=f"Stop once the loss stalls: its mean over the last N steps less than {EARLY_STOP_GAIN:.0%} below the N before (0: run every iteration).", rich_help_panel=OPT)]
Seed = Annotated[Optional[int], typer.Option("-sd", "--seed", help="Random seed (default: drawn and printed).", rich_help_panel=RUN)]
Device = Annotated[str, typer.Option("-cd", "--device", help="auto, cpu, cuda, cuda:N or mps.", rich_help_panel=RUN)]
VqganConfig = Annotated[Optional[str], typer.Option("-conf", "--vqgan-config", help="taming yaml (with --vqgan-checkpoint).", rich_help_panel=MODELS)]
VqganCheckpoint = Annotated[Optional[str], typer.Option("-ckpt", "--vqgan-checkpoint", help="taming .ckpt or .safetensors.", rich_help_panel=MODELS)]
Clip = Annotated[Optional[list[str]], typer.Option("-m", "--clip", help=f"ARCH:WEIGHTS (open_clip name or config .json : tag or file), or an OpenAI name such as ViT-B/32; repeat for an ensemble. Default: {','.join(D.clip)}.", rich_help_panel=MODELS)]
VideoLength = Annotated[Optional[float], typer.Option("-vl", "--video-length", help="Seconds the progress video lasts (sets its fps from the frame count).", rich_help_panel=OUTPUT)]
OutputFps = Annotated[Optional[float], typer.Option("-ofps", "--output-fps", help="Frame rate of the progress video after motion interpolation (ffmpeg's minterpolate) between the frames.", rich_help_panel=OUTPUT)]
VideoMp4 = Annotated[bool, typer.Option("-vid", "--video-mp4", help="A progress video beside the output, named OUTPUT.mp4.", rich_help_panel=OUTPUT)]
PrecisionOpt = Annotated[Precision, typer.Option(help="Autocast precision.", rich_help_panel=RUN)]
TvWeight = Annotated[float, typer.Option(help="Total-variation smoothing weight.", rich_help_panel=OPT)]
VqganName = Annotated[str, typer.Option(help="VQGAN name from `clipgan models`.", rich_help_panel=MODELS)]
Trust = Annotated[bool, typer.Option("--trust-checkpoint", help="Allow checkpoints that need full unpickling (can run code).", rich_help_panel=MODELS)]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar or notes.", rich_help_panel=RUN)]
ImageModelOpt = Annotated[str, typer.Option("--image-model", help=f"What is optimized: {', '.join(IMAGE_MODELS)} (vqgan: a VQGAN latent; pixels: the picture itself; fft: a damped colour spectrum; strokes: Bezier curves as in CLIPDraw, -o x.svg writes them as SVG; diffusion: a denoising UNet CLIP guides step by step, --iterations are its steps).", rich_help_panel=MODELS)]
StrokesOpt = Annotated[int, typer.Option("--strokes", help="With --image-model strokes: how many curves.", rich_help_panel=MODELS)]
# --image-model diffusion (clipgan.diffuse)
DIFFUSION = "Diffusion"
SchedulerChoice = Enum("SchedulerChoice", {m: m for m in SCHEDULERS}, type=str)
Diffusion = Annotated[str, typer.Option("--diffusion", help="Diffusion model: a name from `clipgan models` or a diffusers UNet2DModel folder (safetensors).", rich_help_panel=DIFFUSION)]
Scheduler = Annotated[SchedulerChoice, typer.Option("--scheduler", help="ddim: deterministic, good in few steps; ddpm: the training chain.", rich_help_panel=DIFFUSION)]
GuidanceScale = Annotated[float, typer.Option("--guidance-scale", help="How far CLIP moves each step's clean estimate (0: the model alone).", rich_help_panel=DIFFUSION)]
Candidates = Annotated[int, typer.Option("--candidates", help="Starting noises tried; each runs the first steps and the one CLIP scores best goes on (each extra one costs about a third of a run).", rich_help_panel=DIFFUSION)]
Strength = Annotated[float, typer.Option("--strength", help="With --init-image: the share of the denoising run that starts from it (1: from pure noise).", rich_help_panel=DIFFUSION)]
ZoomVideo = Annotated[bool, typer.Option("-zvid", help="The peer's zoom video: here the command `clipgan zoom` (this flag says how).", show_default=False, rich_help_panel=OUTPUT)]

# nerdyrodent/VQGAN-CLIP's names -> clipgan's
PEER_CUT_METHODS = {"original": "crops", "updated": "crops", "nrupdated": "crops", "updatedpooling": "pooled",
                    "latest": "pooled"}
PEER_AUGMENTS = {"ji": "jitter", "sh": "sharpness", "gn": "noise", "pe": "perspective", "af": "affine", "er": "erasing"}
_OPENAI_CLIP = re.compile(r"^(RN\d+(?:x\d+)?|ViT-[BLH]/\d+)(?:@(\d+)px)?$")


def cut_method(text: str) -> str:
    name = text.strip().lower()
    name = PEER_CUT_METHODS.get(name, name)
    choices = [m.value for m in CutMethod]
    if name not in choices:
        raise ClipganError(f"unknown cut method {text!r}; choose from {', '.join(choices + list(PEER_CUT_METHODS))}")
    return name


def augments(text: str) -> str:
    """Comma- or space-separated; the peer's two-letter codes become clipgan's names."""
    names = [a for a in re.split(r"[,\s]+", text.strip()) if a]
    out = []
    for a in names:
        known = {x.value for x in Augment}
        name = a if a in known else PEER_AUGMENTS.get(a.lower())
        if name is None:
            raise ClipganError(f"unknown augment {a!r}; choose from {', '.join(sorted(known))} "
                               f"(or {', '.join(k.capitalize() for k in PEER_AUGMENTS)})")
        out.append(name)
    return ",".join(out)


def contrast_clip(specs: list[str] | None) -> list[str] | None:
    """--contrast-clip values with OpenAI names translated (clip_name); None: the CLIP's own."""
    return None if specs is None else [clip_name(c) for c in specs]


def clip_name(spec: str) -> str:
    """An OpenAI CLIP name (ViT-B/32, RN50x4, ViT-L/14@336px) -> open_clip's ARCH:openai; others unchanged."""
    m = _OPENAI_CLIP.match(spec.strip())
    if not m:
        return spec
    arch = m.group(1).replace("/", "-") + (f"-{m.group(2)}" if m.group(2) else "")
    return f"{arch}:openai"


def numbers(text: str | None, kind: type, name: str) -> list:
    """'1,2' or '1 2' -> [1, 2]."""
    if text is None:
        return []
    out = []
    for token in (t for t in re.split(r"[,\s]+", text.strip()) if t):
        try:
            out.append(kind(token))
        except ValueError:
            raise ClipganError(f"{name}: {token!r} is not {'an integer' if kind is int else 'a number'}") from None
    return out


def check_numeric_prompts(prompts: list[str]) -> None:
    """`-nps 1 2` (the peer's several values after one flag) leaves '2' as a prompt: say so."""
    for p in prompts:
        if re.fullmatch(r"\s*-?[\d.]+\s*", p):
            raise ClipganError(f"prompt {p!r} is only a number; several noise prompt seeds or weights go in one "
                               "value: -nps 1,2 -npw 0.5,1")


def video_beside(output: Path) -> Path:
    return output.with_suffix(".mp4")
