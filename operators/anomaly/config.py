"""Detector configs from plain dicts (the ``detectors:`` section of the rule file).

>>> cfg = build_detector({"kind": "ewz", "half_life_s": 21600, "threshold": 4.0})
>>> cfg
EwZScore(signal=None, half_life_s=21600.0, threshold=4.0, warmup_n=30, warmup_s=0.0, anomaly_weight=0.0, min_sd=None, split=None, direction=None, kind='ewz')
>>> cfgs = build_detectors({"heart_rate": {"kind": "ewz"}, "vitals": {"kind": "hst", "n_trees": 4}})
>>> cfgs["heart_rate"].signal, cfgs["vitals"].n_trees
('heart_rate', 4)
>>> build_detector({"kind": "ewz", "half_life": 3})
Traceback (most recent call last):
...
vitalstream.errors.ConfigError: anomaly_config: bad_detector: unknown option(s) ['half_life'] for kind 'ewz'
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from vitalstream.errors import ConfigError
from vitalstream.operators.anomaly.base import DetectorConfig
from vitalstream.operators.anomaly.ewz import EwZScore
from vitalstream.operators.anomaly.hst import HalfSpaceTreesScore
from vitalstream.operators.anomaly.quantile import RollingQuantileScore

KINDS: dict[str, type] = {"ewz": EwZScore, "quantile": RollingQuantileScore,
                          "hst": HalfSpaceTreesScore}
_TUPLES = ("split", "features")


def _fail(detail: str) -> ConfigError:
    return ConfigError("anomaly_config", None, "bad_detector", detail)


def build_detector(config: Mapping[str, Any]) -> DetectorConfig:
    """A detector config from a dict with ``kind`` (default ``ewz``) and its options."""
    options = dict(config)
    kind = options.pop("kind", "ewz")
    cls = KINDS.get(kind)
    if cls is None:
        raise _fail(f"unknown kind {kind!r}; expected one of {sorted(KINDS)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "kind"}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise _fail(f"unknown option(s) {unknown} for kind {kind!r}")
    for name, value in list(options.items()):
        if name in _TUPLES and value is not None:
            options[name] = tuple(value)
        elif isinstance(value, int) and not isinstance(value, bool) and fields[name].type in (
                "float", "float | None"):
            options[name] = float(value)
    cfg = cls(**options)
    _check(cfg)
    return cfg


def build_detectors(mapping: Mapping[str, Mapping[str, Any]]) -> dict[str, DetectorConfig]:
    """Configs per name; a univariate detector's signal defaults to its name."""
    out: dict[str, DetectorConfig] = {}
    for name, config in mapping.items():
        config = dict(config)
        config.setdefault("signal", name)
        out[name] = build_detector(config)
    return out


def _check(cfg: Any) -> None:
    if not (isinstance(cfg.threshold, (int, float)) and math.isfinite(cfg.threshold)
            and cfg.threshold > 0):
        raise _fail(f"threshold must be a positive number, got {cfg.threshold!r}")
    if getattr(cfg, "half_life_s", 1.0) <= 0:
        raise _fail("half_life_s must be > 0")
    if not 0.0 <= getattr(cfg, "anomaly_weight", 0.0) <= 1.0:
        raise _fail("anomaly_weight must be within [0, 1]")
    for name in ("warmup_n", "window_size", "n_trees", "height"):
        v = getattr(cfg, name, 1)
        if not isinstance(v, int) or v < (0 if name == "warmup_n" else 1):
            raise _fail(f"{name} must be a positive integer, got {v!r}")
    if getattr(cfg, "direction", None) not in (None, "both", "low", "high"):
        raise _fail(f"direction {cfg.direction!r}; expected 'both', 'low' or 'high'")
    for part in getattr(cfg, "split", None) or ():
        if part not in ("activity", "period"):
            raise _fail(f"split part {part!r}; expected 'activity' or 'period'")
