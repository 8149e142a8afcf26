"""Benchmarks: the classic VQGAN+CLIP step as a reference, and `python -m clipgan.bench.speed`."""
