"""Schedules over a run's steps: the learning rate and the cutouts per step (Settings.lr_schedule,
Settings.cut_schedule). Pure functions of the step and the run's length, so a resumed run gets the
same values at each step as one that never stopped. No torch here."""

from __future__ import annotations

import math

from clipgan.config import CUT_START, LR_FLOOR, CutSchedule, LrSchedule


def scheduled(settings) -> bool:
    """Whether a run of these Settings has an lr or cutout schedule on (not both constant)."""
    return (settings.lr_schedule, settings.cut_schedule) != (LrSchedule.constant.value, CutSchedule.constant.value)


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """The share of the settings' lr at `step` (0-based) of a run of `steps`."""
    if schedule == LrSchedule.constant.value or steps < 2:
        return 1.0
    if schedule == LrSchedule.cosine.value:
        t = min(max(step, 0), steps - 1) / (steps - 1)
        return LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * t))
    raise ValueError(f"unknown lr schedule {schedule!r}")


def cutn_at(schedule: str, cutn: int, step: int, steps: int) -> int:
    """Cutouts at `step` of a run of `steps`: early steps only settle the layout, which fewer
    cutouts see as well, and each cutout costs a CLIP image-tower pass."""
    if schedule == CutSchedule.constant.value:
        return cutn
    if schedule == CutSchedule.ramp.value:
        start = max(1, round(cutn * CUT_START))
        half = max(1, steps // 2)
        if step >= half:
            return cutn
        return start + round((cutn - start) * step / half)
    raise ValueError(f"unknown cut schedule {schedule!r}")
