"""Loss terms: one interface, `term(image, model, step) -> {label: loss}`, summed by the loop.

A term sees the step's image (1, 3, H, W) in [0, 1] and the image model (for terms on its
parameters, like the pull towards the start). `autocast` says whether the loop computes it
under the run's bf16/fp16 autocast (the CLIP towers) or in fp32. `perceptors(step)` names the
modules the loop may compile for that step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from torch import Tensor, nn

from clipgan.cutouts import Cutouts
from clipgan.losses.functions import init_loss, prompt_loss, tv_loss


@dataclass
class Target:
    """One prompt as seen by one perceptor: unit embeddings (M, D) with weight and stop."""

    label: str
    embeds: Tensor
    weight: float = 1.0
    stop: float = float("-inf")


@dataclass
class Guide:
    """A perceptor, the cutouts made for it, and the targets it scores against."""

    perceptor: nn.Module  # anything with encode_image(images in [0, 1]) -> unit embeddings
    cutouts: Cutouts
    targets: list[Target] = field(default_factory=list)


GuideSchedule = Sequence[Guide] | Callable[[int], Sequence[Guide]]


class LossTerm:
    autocast = False

    def __call__(self, image: Tensor, model, step: int) -> dict[str, Tensor]:
        raise NotImplementedError

    def perceptors(self, step: int) -> list:
        return []


class PromptLosses(LossTerm):
    """CLIP's distance from the cutouts to each target, labelled by target, averaged over
    perceptors so an ensemble keeps the loss scale. `guides` may change with the step (stories);
    `cutn(step)`, when given, is the number of cutouts that step (a cutout schedule)."""

    autocast = True

    def __init__(self, guides: GuideSchedule, cutn: Callable[[int], int] | None = None):
        self.guides, self.cutn = guides, cutn

    def active(self, step: int) -> Sequence[Guide]:
        return self.guides(step) if callable(self.guides) else self.guides

    def perceptors(self, step: int) -> list:
        return [g.perceptor for g in self.active(step)]

    def __call__(self, image: Tensor, model, step: int) -> dict[str, Tensor]:
        return guide_losses(self.active(step), image, self.cutn(step) if self.cutn else None)


def guide_losses(guides: Sequence[Guide], image: Tensor, n: int | None = None) -> dict[str, Tensor]:
    """Prompt losses of `image` by target label, averaged over perceptors (the VQGAN loop's and the
    diffusion sampler's scoring alike); `n` cutouts each, the guide's own count when not given."""
    out: dict[str, Tensor] = {}
    for g in guides:
        embeds = g.perceptor.encode_image(g.cutouts(image, n))
        for t in g.targets:
            loss = prompt_loss(embeds, t.embeds, t.weight, t.stop) / len(guides)
            out[t.label] = out[t.label] + loss if t.label in out else loss
    return out


class InitPull(LossTerm):
    """Keeps the model's parameters near `start` (where the run began, not zero): label "init"."""

    def __init__(self, start: Tensor, weight: float):
        self.start, self.weight = start.detach().clone(), weight

    def __call__(self, image: Tensor, model, step: int) -> dict[str, Tensor]:
        return {"init": init_loss(model.z, self.start, self.weight)}


class TotalVariation(LossTerm):
    """Smooths the picture: label "tv"."""

    def __init__(self, weight: float):
        self.weight = weight

    def __call__(self, image: Tensor, model, step: int) -> dict[str, Tensor]:
        return {"tv": tv_loss(image, self.weight)}


def standard_terms(guides: GuideSchedule, start: Tensor, init_weight: float, tv_weight: float,
                   cutn: Callable[[int], int] | None = None) -> list[LossTerm]:
    """The terms a run's settings ask for, in the order their labels appear in Step.losses."""
    terms: list[LossTerm] = [PromptLosses(guides, cutn)]
    if init_weight:
        terms.append(InitPull(start, init_weight))
    if tv_weight:
        terms.append(TotalVariation(tv_weight))
    return terms


__all__ = ["Target", "Guide", "GuideSchedule", "LossTerm", "PromptLosses", "InitPull", "TotalVariation",
           "standard_terms"]
