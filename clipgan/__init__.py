"""clipgan: CLIP-guided VQGAN image generation.

Heavy modules (torch, open_clip, kornia) load on first use, so `clipgan --help` stays fast.
"""

__version__ = "0.1.0"
__all__ = ["generate", "iterate", "Settings", "Result", "ClipganError"]


def __getattr__(name):
    if name == "generate":  # every image model (clipgan.run)
        from clipgan.run import generate
        return generate
    if name == "Result":
        from clipgan import pipeline
        return getattr(pipeline, name)
    if name == "iterate":
        from clipgan.optimize import iterate
        return iterate
    if name == "Settings":
        from clipgan.config import Settings
        return Settings
    if name == "ClipganError":
        from clipgan.errors import ClipganError
        return ClipganError
    raise AttributeError(f"module 'clipgan' has no attribute {name!r}")
