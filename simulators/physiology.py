"""Synthetic patients: profiles, baselines, noise and circadian drift.

Each signal is ``mean(t) + noise(t)`` where ``noise`` is an AR(1) process with
stationary standard deviation ``sigma`` and correlation time ``tau_s``
(``phi = exp(-dt / tau_s)``), clipped at 3 sigma so that the documented bounds
below are hard bounds, not probabilities. Values are then rounded as a device
reports them (HR, SpO2, RR, BP, glucose to whole units, temperature to 0.01).

Baselines and hard bounds of every patient outside its own episode
(motion-flagged readings excepted), against the default adult rules
(``vitalstream/data/rules-default.yaml``). The margins keep "no alert for a
healthy patient" true:

=============  ================  ==========================  ==================================
signal         baseline          hard bound                  rule: margin
=============  ================  ==========================  ==================================
heart_rate     58-78 /min        45 .. 78+4+20+9 = 111       tachycardia > 120: 9;
               circadian +-4, walking +15..20                bradycardia <= 40: 5
spo2           97-98.5 %         >= 95.2 -> 95 (rounded)     desaturation < 90: 5
resp_rate      14-17 /min        11 .. 17+3+3 = 23           tachypnoea >= 25: 2; bradypnoea <= 8: 3
body_temp      36.8-36.9 Cel     36.40 .. 37.30              fever >= 38.0: 0.70; hypothermia <= 35: 1.4
               circadian +-0.25 (nadir ~05:00 UTC, peak ~17:00 UTC)
bp_systolic    114-126 mm[Hg]    114-5-12 = 97 .. 143        hypotension <= 90: 7; crisis >= 180: 37
 hypertensive  145-155 mm[Hg]    <= 155+5+12 = 172           crisis >= 180: 8
bp_diastolic   72-82 mm[Hg]      <= 82+3+9 = 94              crisis >= 120: 26
 hypertensive  92-98 mm[Hg]      <= 98+3+9 = 110             crisis >= 120: 10
glucose        90-110 mg/dL      >= 81 (80 via mmol/L)       hypoglycaemia < 70: 10
=============  ================  ==========================  ==================================

Episode companions stay inside too: fever adds <= 18 /min of HR (<= 109), a
desaturation <= 8 /min of HR and <= 3 /min of RR. A hypertensive patient may
sit above the crisis rule's 170 mm[Hg] clear level, so a crisis can take a
while to resolve.

Sources for the ranges: adult resting HR 60-100 /min, SpO2 95-100 %, RR 12-20
/min (e.g. NEWS2, Royal College of Physicians 2017); oral temperature
36.5-37.2 Cel with an early-morning nadir (Mackowiak et al., JAMA 1992); home BP
~120/80, stage-2 hypertension >= 140/90 (ACC/AHA 2017); HR and BP dip at night.
Circadian phase uses UTC hours: every simulated patient lives at UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from vitalstream.simulators.episodes import (
    ActivityBout,
    Episode,
    Gap,
    bout_hr_rise,
    episode_weight,
    plan_bouts,
    plan_episode,
    plan_gap,
)

PROFILES = ("healthy", "hypertensive", "tachycardia", "desaturation", "fever", "crisis",
            "dropout", "motion")
DEFAULT_MIX = {"healthy": 0.40, "hypertensive": 0.10, "tachycardia": 0.10, "desaturation": 0.10,
               "fever": 0.10, "crisis": 0.05, "dropout": 0.08, "motion": 0.07}
# Ill patients rest: no walking, so an episode's HR is never mixed with exercise.
_WALKERS = frozenset({"healthy", "hypertensive", "dropout", "motion"})

# signal -> (sigma, tau_s, decimals)
NOISE: dict[str, tuple[float, float, int]] = {
    "heart_rate": (3.0, 60.0, 0),
    "spo2": (0.6, 30.0, 0),
    "resp_rate": (1.0, 60.0, 0),
    "body_temp": (0.05, 600.0, 2),
    "bp_systolic": (4.0, 60.0, 0),
    "bp_diastolic": (3.0, 60.0, 0),
    "glucose": (3.0, 1800.0, 0),
}
CLIP_SIGMAS = 3.0
# (amplitude, hour of peak UTC)
CIRCADIAN = {"heart_rate": (4.0, 16.0), "bp_systolic": (5.0, 15.0), "bp_diastolic": (3.0, 15.0),
             "body_temp": (0.25, 17.0)}


@dataclass(frozen=True, slots=True)
class SamplingRates:
    """Seconds between samples per signal family; None switches a family off."""

    vitals_s: float = 5.0  # heart_rate, spo2, resp_rate
    temp_s: float | None = 60.0
    bp_s: float | None = 300.0  # home cuff; the crisis profile uses bp_fast_s
    bp_fast_s: float = 60.0
    steps_s: float | None = 60.0
    glucose_s: float | None = 300.0  # CGM


@dataclass(frozen=True, slots=True)
class PatientSpec:
    patient_id: str
    profile: str
    hr_base: float
    spo2_base: float
    rr_base: float
    temp_base: float
    sbp_base: float
    dbp_base: float
    glucose_base: float
    bp_interval_s: float | None
    episode: Episode | None = None
    bouts: tuple[ActivityBout, ...] = ()
    gap: Gap | None = None
    motion_events: int = 0


@dataclass(slots=True)
class SignalTrace:
    """Samples of one signal in canonical units; ``t_s`` is true time from the start."""

    t_s: np.ndarray
    values: np.ndarray
    motion: np.ndarray  # bool: a motion-artefact reading (flagged by the device)


@dataclass(slots=True)
class PatientTrace:
    spec: PatientSpec
    signals: dict[str, SignalTrace] = field(default_factory=dict)


def assign_profiles(n: int, mix: dict[str, float], rng: np.random.Generator) -> list[str]:
    """Exactly round(n * share) of each profile (largest remainder), in random order."""
    names = [p for p in mix if mix[p] > 0]
    for p in names:
        if p not in PROFILES:
            raise ValueError(f"unknown profile {p!r}; known: {', '.join(PROFILES)}")
    total = sum(mix[p] for p in names)
    exact = [n * mix[p] / total for p in names]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(names)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    out = [p for p, c in zip(names, counts) for _ in range(c)]
    rng.shuffle(out)
    return out


def make_patient(patient_id: str, profile: str, duration_s: float, rates: SamplingRates,
                 rng: np.random.Generator) -> PatientSpec:
    hypertensive = profile in ("hypertensive", "crisis")
    return PatientSpec(
        patient_id=patient_id,
        profile=profile,
        hr_base=float(rng.uniform(58.0, 78.0)),
        spo2_base=float(rng.uniform(97.0, 98.5)),
        rr_base=float(rng.uniform(14.0, 17.0)),
        temp_base=float(rng.uniform(36.8, 36.9)),
        sbp_base=float(rng.uniform(145.0, 155.0) if hypertensive else rng.uniform(114.0, 126.0)),
        dbp_base=float(rng.uniform(92.0, 98.0) if hypertensive else rng.uniform(72.0, 82.0)),
        glucose_base=float(rng.uniform(90.0, 110.0)),
        bp_interval_s=rates.bp_fast_s if profile == "crisis" else rates.bp_s,
        episode=plan_episode(profile, duration_s, rng),
        bouts=tuple(plan_bouts(duration_s, rng)) if profile in _WALKERS else (),
        gap=plan_gap(duration_s, rng) if profile == "dropout" else None,
        motion_events=int(rng.integers(3, 9)) if profile == "motion" else 0,
    )


def ar1(n: int, dt_s: float, sigma: float, tau_s: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) noise, clipped at CLIP_SIGMAS * sigma."""
    if n == 0:
        return np.zeros(0)
    phi = math.exp(-dt_s / tau_s)
    innov = rng.standard_normal(n)
    innov[1:] *= math.sqrt(1.0 - phi * phi)
    out = np.empty(n)
    x = 0.0
    # A plain loop: n is small per signal and numpy has no recursive filter.
    for i, e in enumerate(innov.tolist()):
        x = phi * x + e if i else e
        out[i] = x
    return np.clip(out * sigma, -CLIP_SIGMAS * sigma, CLIP_SIGMAS * sigma)


def circadian(signal: str, t_s: np.ndarray, start_s: float) -> np.ndarray:
    amp, peak_h = CIRCADIAN.get(signal, (0.0, 0.0))
    if amp == 0.0:
        return np.zeros_like(t_s)
    hours = ((start_s + t_s) % 86_400.0) / 3600.0
    return amp * np.cos(2.0 * math.pi * (hours - peak_h) / 24.0)


def _ticks(interval_s: float | None, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    if interval_s is None:
        return np.zeros(0)
    if interval_s < 1.0:
        raise ValueError("sampling intervals below 1 s are not supported (device stamps are ms)")
    phase = float(rng.uniform(0.0, interval_s))
    return np.arange(phase, duration_s, interval_s)


def _series(spec: PatientSpec, signal: str, base: float, t_s: np.ndarray, dt_s: float,
            start_s: float, rng: np.random.Generator) -> np.ndarray:
    sigma, tau_s, decimals = NOISE[signal]
    mean = base + circadian(signal, t_s, start_s)
    if signal in ("heart_rate", "resp_rate") and spec.bouts:
        rise = bout_hr_rise(t_s, list(spec.bouts))
        mean = mean + (rise if signal == "heart_rate" else rise * 0.15)
    ep = spec.episode
    if ep is not None:
        w = episode_weight(t_s, ep)
        if ep.signal == signal:
            mean = (1.0 - w) * mean + w * ep.target
        for sig, mode, amount in ep.companion:
            if sig == signal:
                mean = mean + w * amount if mode == "rise" else (1.0 - w) * mean + w * amount
    values = np.round(mean + ar1(len(t_s), dt_s, sigma, tau_s, rng), decimals)
    if signal == "spo2":
        values = np.minimum(values, 100.0)
    return values


def _steps(spec: PatientSpec, t_s: np.ndarray, dt_s: float, rng: np.random.Generator) -> np.ndarray:
    """Steps counted over (t - dt, t]: cadence times walking time, plus fidgeting."""
    walk = np.zeros_like(t_s)
    for b in spec.bouts:
        overlap = np.clip(np.minimum(t_s, b.end_s) - np.maximum(t_s - dt_s, b.start_s), 0.0, None)
        walk += overlap / 60.0 * b.cadence_per_min
    fidget = np.where(rng.random(len(t_s)) < 0.3, rng.poisson(4.0 * dt_s / 60.0, len(t_s)), 0)
    return (rng.poisson(walk) + fidget).astype(float)


def simulate(spec: PatientSpec, rates: SamplingRates, duration_s: float, start_ns: int,
             rng: np.random.Generator) -> PatientTrace:
    """Every sample of every signal of one patient over [0, duration_s) true seconds."""
    start_s = start_ns / 1e9
    trace = PatientTrace(spec)
    families: list[tuple[float | None, tuple[tuple[str, float], ...]]] = [
        (rates.vitals_s, (("heart_rate", spec.hr_base), ("spo2", spec.spo2_base),
                          ("resp_rate", spec.rr_base))),
        (rates.temp_s, (("body_temp", spec.temp_base),)),
        (spec.bp_interval_s, (("bp_systolic", spec.sbp_base), ("bp_diastolic", spec.dbp_base))),
        (rates.glucose_s, (("glucose", spec.glucose_base),)),
    ]
    for interval_s, members in families:
        t = _ticks(interval_s, duration_s, rng)
        if interval_s is None:
            continue
        for signal, base in members:
            trace.signals[signal] = SignalTrace(t, _series(spec, signal, base, t, interval_s,
                                                           start_s, rng), np.zeros(len(t), bool))
    if "bp_systolic" in trace.signals:
        sbp, dbp = trace.signals["bp_systolic"], trace.signals["bp_diastolic"]
        # Cuffs report MAP; DBP + (SBP - DBP) / 3 is the usual estimate.
        mean = np.round(dbp.values + (sbp.values - dbp.values) / 3.0)
        trace.signals["bp_mean"] = SignalTrace(sbp.t_s, mean, np.zeros(len(mean), bool))
    if rates.steps_s is not None:
        t = _ticks(rates.steps_s, duration_s, rng)
        trace.signals["steps"] = SignalTrace(t, _steps(spec, t, rates.steps_s, rng),
                                             np.zeros(len(t), bool))
    if spec.motion_events:
        _add_motion(trace, spec.motion_events, rng)
    if spec.gap is not None:
        for name, s in trace.signals.items():
            keep = (s.t_s < spec.gap.start_s) | (s.t_s >= spec.gap.end_s)
            trace.signals[name] = SignalTrace(s.t_s[keep], s.values[keep], s.motion[keep])
    return trace


def _add_motion(trace: PatientTrace, count: int, rng: np.random.Generator) -> None:
    """Spikes a moving wrist produces: HR jumps to 150-190, SpO2 drops to 75-85; flagged."""
    hr, spo2 = trace.signals.get("heart_rate"), trace.signals.get("spo2")
    if hr is None or len(hr.t_s) < 3:
        return
    idx = rng.choice(np.arange(1, len(hr.t_s) - 1), size=min(count, len(hr.t_s) - 2), replace=False)
    hr.values[idx] = np.round(rng.uniform(150.0, 190.0, len(idx)))
    hr.motion[idx] = True
    if spo2 is not None:
        spo2.values[idx] = np.round(rng.uniform(75.0, 85.0, len(idx)))
        spo2.motion[idx] = True
