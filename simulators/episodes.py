"""Injected clinical episodes, activity bouts and sensor gaps, with their shapes.

An episode moves one signal from the patient's own trace to a clinical target
and back: a smoothstep ramp up (``onset_s`` -> ``start_s``), a plateau
(``start_s`` -> ``end_s``) at the target plus the signal's usual AR(1) noise, and
a ramp down (``end_s`` -> ``recovered_s``). Times are seconds of true time from
the scenario start; the scenario turns them into device-stamped nanoseconds for
the ground truth.

Targets sit well past the default adult thresholds the pipeline ships, so the
whole plateau crosses even at the noise bound (noise is clipped at 3 sigma,
see ``physiology.NOISE``), and values are rounded as the device reports them:

====================  ==========================  =================  ==================
rule                  threshold (adult default)   plateau target     plateau at 3 sigma
====================  ==========================  =================  ==================
tachycardia           heart_rate > 120 /min       135-150 /min       >= 126 /min
desaturation          spo2 < 90 %                 87.5 %             86-89 % (rounded)
desaturation_severe   spo2 < 85 %                 80 %               <= 82 % (rounded)
fever                 body_temp >= 38.0 Cel       38.5-39.2 Cel      >= 38.35 Cel
fever_icu             body_temp >= 38.3 Cel       (the same episode: both fire)
hypertensive_crisis   SBP >= 180 or DBP >= 120    SBP 200-215        SBP >= 185 mm[Hg]
====================  ==========================  =================  ==================

``desaturation_severe`` assumes the common 85 % cut-off for severe hypoxaemia;
a moderate episode never goes below 86 %, so it fires ``desaturation`` only.
Activity bouts raise heart rate by 15-20 /min and are *not* episodes: the
ground truth lists them with ``"episode": false`` so a detector flagging them
can be scored as a false positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Documented thresholds (margins above are computed against these). Tests keep
# their own copy typed from the clinical sources; nothing downstream imports these.
THRESHOLDS = {
    "tachycardia": ("heart_rate", ">", 120.0),
    "desaturation": ("spo2", "<", 90.0),
    "desaturation_severe": ("spo2", "<", 85.0),
    "fever": ("body_temp", ">=", 38.0),
    "fever_icu": ("body_temp", ">=", 38.3),
    "hypertensive_crisis": ("bp_systolic", ">=", 180.0),
}


@dataclass(frozen=True, slots=True)
class Episode:
    """One injected episode on one signal (times in true seconds from start)."""

    kind: str  # tachycardia | desaturation | fever | hypertensive_crisis
    signal: str
    rule: str  # the most specific rule expected to fire
    rules: tuple[str, ...]  # every rule expected to fire
    onset_s: float
    start_s: float
    end_s: float
    recovered_s: float
    target: float  # plateau level, canonical unit
    # Other signals moved alongside: (signal, "rise" | "level", amount).
    companion: tuple[tuple[str, str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class ActivityBout:
    """A walk: steps rise, HR rises by ``hr_rise`` /min. Not an episode."""

    start_s: float
    end_s: float
    hr_rise: float
    cadence_per_min: float


@dataclass(frozen=True, slots=True)
class Gap:
    """The device sends nothing in [start_s, end_s) (strap off, battery, out of range)."""

    start_s: float
    end_s: float


def _window(duration_s: float, rng: np.random.Generator, max_plateau_s: float,
            min_plateau_s: float) -> tuple[float, ...]:
    """(onset, start, end, recovered): ramps of 5 % of the run, plateau half of it.

    The plateau is stretched to ``min_plateau_s`` (what the default rule needs to
    fire: its ``for_s`` or N-of-M readings, plus a margin) when the run is long
    enough; in a shorter run it shrinks to fit, and the rule may not fire.
    """
    ramp = float(np.clip(0.05 * duration_s, 10.0, 120.0))
    plateau = min(max(0.5 * duration_s, min_plateau_s), max_plateau_s)
    room = 0.95 * duration_s - 2 * ramp  # leave the end of the run for recovery
    plateau = min(plateau, room - 0.05 * duration_s)
    onset = min(float(rng.uniform(0.10, 0.25)) * duration_s, room - plateau)
    return onset, onset + ramp, onset + ramp + plateau, onset + 2 * ramp + plateau


def plan_episode(profile: str, duration_s: float, rng: np.random.Generator) -> Episode | None:
    """The episode of a profile, or None for profiles without one."""
    if profile == "tachycardia":
        w = _window(duration_s, rng, 1800.0, 330.0)  # for_s 300
        return Episode("tachycardia", "heart_rate", "tachycardia", ("tachycardia",), *w,
                       target=float(rng.uniform(135.0, 150.0)))
    if profile == "desaturation":
        severe = bool(rng.random() < 0.3)
        w = _window(duration_s, rng, 900.0, 180.0)  # for_s 120
        if severe:
            return Episode("desaturation", "spo2", "desaturation_severe",
                           ("desaturation_severe", "desaturation"), *w, target=80.0,
                           companion=(("heart_rate", "rise", 8.0), ("resp_rate", "rise", 3.0)))
        return Episode("desaturation", "spo2", "desaturation", ("desaturation",), *w,
                       target=87.5, companion=(("heart_rate", "rise", 5.0), ("resp_rate", "rise", 2.0)))
    if profile == "fever":
        w = _window(duration_s, rng, 3600.0, 200.0)  # 2 of 3 readings 60 s apart
        target = float(rng.uniform(38.5, 39.2))
        # ~8 /min of HR per degree of fever (Karjalainen & Viitasalo 1986).
        rise = 8.0 * (target - 37.0)
        # a single reading >= 38.3 fires fever_icu first; "2 of 3 >= 38.0" (fever) follows
        return Episode("fever", "body_temp", "fever_icu", ("fever_icu", "fever"), *w, target=target,
                       companion=(("heart_rate", "rise", rise), ("resp_rate", "rise", 2.0)))
    if profile == "crisis":
        w = _window(duration_s, rng, 1800.0, 130.0)  # one cuff reading, 60 s apart
        return Episode("hypertensive_crisis", "bp_systolic", "hypertensive_crisis",
                       ("hypertensive_crisis",), *w, target=float(rng.uniform(200.0, 215.0)),
                       companion=(("bp_diastolic", "level", float(rng.uniform(118.0, 128.0))),))
    return None


def plan_bouts(duration_s: float, rng: np.random.Generator) -> list[ActivityBout]:
    """At most one walk per 10 minutes, each 2-4 min, with probability 0.6."""
    bouts: list[ActivityBout] = []
    slot = 600.0
    for k in range(max(1, int(duration_s // slot))):
        if rng.random() >= 0.6:
            continue
        length = float(rng.uniform(120.0, 240.0))
        lo, hi = k * slot, min((k + 1) * slot, duration_s) - length
        if hi <= lo:
            continue
        start = float(rng.uniform(lo, hi))
        bouts.append(ActivityBout(start, start + length, float(rng.uniform(15.0, 20.0)),
                                  float(rng.uniform(90.0, 115.0))))
    return bouts


def plan_gap(duration_s: float, rng: np.random.Generator) -> Gap:
    """One silence of 15-25 % of the run, not at the very start or end."""
    length = float(rng.uniform(0.15, 0.25)) * duration_s
    start = float(rng.uniform(0.2, 0.6)) * duration_s
    return Gap(start, start + length)


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def episode_weight(t_s: np.ndarray, ep: Episode) -> np.ndarray:
    """0 outside the episode, 1 on the plateau, a smoothstep on both ramps."""
    up = smoothstep((t_s - ep.onset_s) / max(ep.start_s - ep.onset_s, 1e-9))
    down = 1.0 - smoothstep((t_s - ep.end_s) / max(ep.recovered_s - ep.end_s, 1e-9))
    return np.minimum(up, down)


def bout_hr_rise(t_s: np.ndarray, bouts: list[ActivityBout], ramp_s: float = 60.0) -> np.ndarray:
    """HR rise (/min) from walking at each time (HR follows exertion within about a minute)."""
    level = np.zeros_like(t_s, dtype=float)
    for b in bouts:
        up = smoothstep((t_s - b.start_s) / ramp_s)
        down = 1.0 - smoothstep((t_s - b.end_s) / ramp_s)
        level = np.maximum(level, np.minimum(up, down) * b.hr_rise)
    return level
