"""What a run minimises: loss functions (tensors in, tensors out) and loss terms, the labelled
parts of a step's loss that `optimize.iterate` sums (CLIP prompts, total variation, the pull
towards the initial state). Terms never load models: they are handed perceptors and targets."""

from clipgan.losses.functions import (clamp_with_grad, init_loss, prompt_loss, replace_grad, spherical_distance,
                                      tv_loss, vector_quantize)
from clipgan.losses.terms import Guide, GuideSchedule, InitPull, LossTerm, PromptLosses, Target, TotalVariation

__all__ = ["clamp_with_grad", "init_loss", "prompt_loss", "replace_grad", "spherical_distance", "tv_loss",
           "vector_quantize", "Guide", "GuideSchedule", "InitPull", "LossTerm", "PromptLosses", "Target",
           "TotalVariation"]
