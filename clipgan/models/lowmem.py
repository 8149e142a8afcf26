"""Low-memory mode: gradient checkpointing inside the taming Decoder.

The decoder's activations at full resolution dominate a step's memory above ~384 px
(128 channels x H x W, about seven saved tensors per ResnetBlock). With checkpointing,
each block keeps only its input for the backward pass and recomputes its insides there,
one block at a time: roughly one extra decoder forward per step for a several-fold drop
in saved activations. Nothing about the weights changes: the state dict keys are the
same, and `disable_low_memory` restores the plain forward.
"""

from __future__ import annotations

import contextlib
import types

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

_MARK = "_clipgan_low_memory"


def _ckpt(fn, *args):
    """Checkpoint `fn(*args)` when a backward pass will need it; plain call otherwise."""
    if torch.is_grad_enabled() and any(isinstance(a, Tensor) and a.requires_grad for a in args):
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


def _tail(decoder: nn.Module, h: Tensor) -> Tensor:
    from taming.modules.diffusionmodules.model import nonlinearity

    return decoder.conv_out(nonlinearity(decoder.norm_out(h)))


def _low_memory_forward(self, z: Tensor) -> Tensor:
    """taming Decoder.forward with every block, upsample and the output head checkpointed."""
    self.last_z_shape = z.shape
    temb = None
    h = self.conv_in(z)
    h = _ckpt(lambda x: self.mid.block_2(self.mid.attn_1(self.mid.block_1(x, temb)), temb), h)
    for i_level in reversed(range(self.num_resolutions)):
        up = self.up[i_level]
        for i_block in range(self.num_res_blocks + 1):
            if len(up.attn) > 0:
                h = _ckpt(lambda x, b=up.block[i_block], a=up.attn[i_block]: a(b(x, temb)), h)
            else:
                h = _ckpt(lambda x, b=up.block[i_block]: b(x, temb), h)
        if i_level != 0:
            h = _ckpt(up.upsample, h)
    if self.give_pre_end:
        return h
    return _ckpt(lambda x: _tail(self, x), h)


def _decoder(model: nn.Module) -> nn.Module:
    return getattr(model, "decoder", model)


def enable_low_memory(model: nn.Module) -> nn.Module:
    """Checkpoint the decoder of a clipgan VQGAN (or a bare taming Decoder), in place.

    Gradients are unchanged (the decoder is deterministic in eval mode: dropout 0);
    the state dict is untouched. Returns the model for chaining.
    """
    dec = _decoder(model)
    if not getattr(dec, _MARK, False):
        dec.forward = types.MethodType(_low_memory_forward, dec)
        setattr(dec, _MARK, True)
    return model


def disable_low_memory(model: nn.Module) -> nn.Module:
    """Undo `enable_low_memory`: the class's own forward again."""
    dec = _decoder(model)
    if getattr(dec, _MARK, False):
        del dec.forward
        delattr(dec, _MARK)
    return model


def is_low_memory(model: nn.Module) -> bool:
    return bool(getattr(_decoder(model), _MARK, False))


@contextlib.contextmanager
def low_memory(model: nn.Module, on: bool = True):
    """Checkpoint the decoder for the duration of a `with` block (nothing when `on` is false)."""
    if not on or is_low_memory(model):
        yield model
        return
    enable_low_memory(model)
    try:
        yield model
    finally:
        disable_low_memory(model)
