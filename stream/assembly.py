"""The one assembly: settings in, operators out, for every runtime.

bytewax (``stream.app``), faust (``stream.faust_app``), the reference runner,
``vitalstream import`` and the quarantine replay all build their operators here,
so one config file means the same windows, rules, detectors, dedup and identity
everywhere. This is also the one place where the settings' seconds become the
operators' integer nanoseconds (``ns``). Nothing here imports a runtime engine.
"""

from __future__ import annotations

from typing import Callable

from vitalstream.errors import ConfigError
from vitalstream.operators.backfill import Backfill
from vitalstream.operators.bp_monitor import BpMonitor
from vitalstream.operators.concerns import Concerns
from vitalstream.operators.dedup import Dedup
from vitalstream.operators.liveness import ContactWatch, GatewayWatch, StaleData
from vitalstream.signals import Signal
from vitalstream.operators.normalise import Normaliser, PatientResolver, patient_from_payload
from vitalstream.operators.news2 import News2
from vitalstream.operators.news2_alerts import News2Rule
from vitalstream.operators.patient import PatientFlow
from vitalstream.operators.ratelimit import RateLimit
from vitalstream.operators.personal import PersonalRule
from vitalstream.operators.rules import RuleSet
from vitalstream.operators.shard import PatientHost
from vitalstream.operators.window import TumblingWindow
from vitalstream.stream.ingest import Ingest
from vitalstream.stream.settings import Settings, rules_document

NS = 1_000_000_000


def ns(seconds: float | None) -> int | None:
    """Settings' seconds as operators' integer nanoseconds (None stays None).

    >>> ns(1.5), ns(None), ns(0)
    (1500000000, None, 0)
    """
    return None if seconds is None else round(seconds * NS)


def window(settings: Settings) -> TumblingWindow:
    p = settings.pipeline
    return TumblingWindow(ns(p.window_size_s), ns(p.allowed_lateness_s))


def window_size_ns(settings: Settings) -> int:
    return ns(settings.pipeline.window_size_s)


def patient_flow(settings: Settings, *, detectors: bool = True, live: bool = True) -> PatientFlow:
    """Windows, rules and (unless ``detectors=False``, as for history) anomaly detectors;
    ``live=False`` (an import, all history): no separate back-fill path."""
    p = settings.pipeline
    doc = rules_document(settings)
    anomaly = None
    spec = settings.detectors if settings.detectors is not None else doc.get("detectors")
    if spec and detectors:
        from vitalstream.operators.anomaly.stage import AnomalyStage

        anomaly = AnomalyStage.from_config(spec)
    where = settings.rules_path or "packaged rules-default.yaml"
    try:
        rules = RuleSet.from_dicts(doc.get("rules", []))
        personal = tuple(PersonalRule.from_dict(d) for d in doc.get("personal") or []) \
            if anomaly is not None else ()
        news2, news2_rule = _news2(doc.get("news2"))
        bp = doc.get("bp")
        if bp is not None and not isinstance(bp, dict):
            raise ConfigError("rules", None, "bad_rule", f"bp: expected a mapping, got {bp!r}")
        bp = dict(bp or {})
        bp_alerts = bp.pop("alert", True)
        group = doc.get("group_alerts", True)
        if not isinstance(group, bool) or not isinstance(bp_alerts, bool):
            raise ConfigError("rules", None, "bad_rule", "group_alerts and bp.alert: true or false")
        stale = doc.get("stale")
        if stale is not None and not isinstance(stale, dict):
            raise ConfigError("rules", None, "bad_rule", f"stale: expected signal: seconds")
        return PatientFlow(window(settings), rules, ns(p.rule_delay_s), anomaly,
                           ns(p.evict_after_s), personal, news2, news2_rule,
                           BpMonitor(**bp) if "bp" in doc else None,
                           Concerns() if group else None, bp_alerts,
                           StaleData({Signal(str(k)).value: float(v) for k, v in stale.items()})
                           if stale else None,
                           Backfill(window(settings), p.backfill_idle_s)
                           if live and _backfills(settings) else None,
                           _contact(doc.get("contact")))
    except ConfigError as err:  # name the file the bad rule is in
        raise ConfigError(err.step, None, err.reason, f"{where}: {err.detail}") from None
    except (ValueError, TypeError) as err:  # TypeError: an unknown key of a section
        raise ConfigError("rules", None, "bad_rule", f"{where}: {err}") from None


def _contact(spec: object) -> ContactWatch | None:
    """The rules file's ``contact:`` section (``for_s``, ``severity``; ``false``: off)."""
    if spec is None or spec is False:
        return None
    if not isinstance(spec, dict):
        raise ConfigError("rules", None, "bad_rule", f"contact: expected a mapping or false, got {spec!r}")
    return ContactWatch(**spec)


def _news2(spec: object) -> tuple[News2 | None, News2Rule | None]:
    """The rules file's ``news2:`` section: scoring options, and ``alert`` (the alarm's
    form, ``alert_from``, ``end_after_s``; ``alert: false`` scores without alerting)."""
    if spec is None or spec is False:
        return None, None
    if not isinstance(spec, dict):
        raise ConfigError("rules", None, "bad_rule", f"news2: expected a mapping, got {spec!r}")
    spec = dict(spec)
    alert = spec.pop("alert", {})
    unknown = set(spec) - {"fresh_s", "spo2_scale"}
    if unknown:
        raise ConfigError("rules", None, "bad_rule", f"news2: unknown keys {sorted(unknown)}")
    news2 = News2(**spec)
    if alert is False:
        return news2, None
    if not isinstance(alert, dict):
        raise ConfigError("rules", None, "bad_rule", f"news2.alert: expected a mapping or false")
    return news2, News2Rule.from_dict(alert)


def patient_host(settings: Settings, *, flow: PatientFlow | None = None,
                 caught_up: Callable[[], bool] | None = None) -> PatientHost:
    p = settings.pipeline
    flow = flow if flow is not None else patient_flow(settings)
    return PatientHost(flow, ns(p.idle_grace_s), ns(p.baseline_ttl_s), caught_up,
                       gateways(settings, flow.stale))


def gateways(settings: Settings, stale: StaleData | None = None) -> GatewayWatch | None:
    """The rules file's ``gateways:`` section (``offline_after_s``, ``remember_s``;
    ``false``: off). The gateway's alarm must come before its patients' stale-data ones,
    or those would page before it could stand for them: a T not below every stale T is
    refused."""
    spec = rules_document(settings).get("gateways")
    if spec is None or spec is False:
        return None
    where = settings.rules_path or "packaged rules-default.yaml"
    try:
        if not isinstance(spec, dict):
            raise TypeError(f"expected a mapping or false, got {spec!r}")
        watch = GatewayWatch(**spec)
    except (TypeError, ValueError) as err:
        raise ConfigError("rules", None, "bad_rule", f"{where}: gateways: {err}") from None
    if stale is not None and stale.after_s and watch.offline_after_s >= min(stale.after_s.values()):
        raise ConfigError("rules", None, "bad_rule",
                          f"{where}: gateways.offline_after_s {watch.offline_after_s:g} s must "
                          f"be shorter than every stale: T ({min(stale.after_s.values()):g} s)")
    return watch


def dedup(settings: Settings) -> Dedup:
    return Dedup(ns(settings.pipeline.dedup_horizon_s))


def _backfills(settings: Settings) -> bool:
    """Does the live path flag back-fill? Not when device times are trusted whatever their
    age (``max_clock_skew_s: null``, recorded data), nor with ``backfill_after_s: null``."""
    p = settings.pipeline
    return p.max_clock_skew_s is not None and p.backfill_after_s is not None


def normaliser(settings: Settings) -> Normaliser:
    p = settings.pipeline
    return Normaliser(ns(p.max_clock_skew_s), ns(p.backfill_after_s), ns(p.backfill_max_s),
                      ns(p.future_limit_s), ns(p.past_limit_s))


def rate_limit(settings: Settings) -> RateLimit | None:
    """The per-device rate limit of stage A, or None: off by ``device_rate_per_s: null``,
    and whenever device times are trusted (``max_clock_skew_s: null``): recorded or
    time-compressed data (``simulate --time-scale``, replays) legitimately arrive faster
    than their devices measured."""
    p = settings.pipeline
    if p.device_rate_per_s is None or p.max_clock_skew_s is None:
        return None
    return RateLimit(p.device_rate_per_s, p.device_burst)


def resolver(settings: Settings) -> PatientResolver:
    """Who a reading belongs to: the payload's patient (else the device), or the registry."""
    identity = settings.pipeline.identity
    if identity == "payload":
        inner = patient_from_payload
    elif identity == "registry":
        from vitalstream.connectors.registry import DeviceRegistry, RegistryResolver
        from vitalstream.sinks.redis_streams import connect

        inner = RegistryResolver(DeviceRegistry(connect(settings.redis.url)))
    else:
        raise ConfigError("config", None, "bad_identity", f"pipeline.identity: {identity!r}")
    if not (settings.care.enabled and settings.care.persons):
        return inner
    # one identity per person: a merged patient id's readings go on as the person
    from vitalstream.connectors.persons import PersonRegistry, PersonResolver
    from vitalstream.sinks.redis_streams import connect

    return PersonResolver(PersonRegistry(connect(settings.redis.url)), inner)


def ingest(settings: Settings, *, patient_of: PatientResolver | None = None,
           shared_dedup=None, **kwargs) -> Ingest:
    """Stage A: decode, normalise, resolve identity, dedup (``shared_dedup``: one logic
    shared by several workers, else a private one); the per-device rate limit."""
    kwargs.setdefault("rate_limit", rate_limit(settings))
    return Ingest(normaliser(settings), shared_dedup if shared_dedup is not None else dedup(settings),
                  patient_of if patient_of is not None else resolver(settings), **kwargs)


def history_flow(settings: Settings) -> PatientFlow:
    """The per-patient flow for historical data: windows and rules, no detectors learning."""
    return patient_flow(settings, detectors=False, live=False)


def lifecycle(settings: Settings) -> "Lifecycle":
    """The alarm lifecycle policy: the rules file's ``lifecycle:`` section, else the defaults.

    ``latching``/``escalate``: lists of priorities; ``renotify_s``: priority -> seconds (null:
    never); ``tiers``: [{name, after_s}, ...]; ``flap``: {changes, window_s, stable_s};
    ``suppressible``: rules a source's alarm stands for; ``release_grace_s``."""
    from vitalstream.operators.lifecycle import Lifecycle, Tier

    spec = rules_document(settings).get("lifecycle")
    if spec is None:
        return Lifecycle()
    where = settings.rules_path or "packaged rules-default.yaml"
    try:
        if not isinstance(spec, dict):
            raise TypeError("expected a mapping")
        unknown = set(spec) - {"latching", "renotify_s", "escalate", "tiers", "flap",
                               "suppressible", "release_grace_s"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        kw: dict = {}
        if "latching" in spec:
            kw["latching"] = frozenset(spec["latching"])
        if "escalate" in spec:
            kw["escalate"] = frozenset(spec["escalate"])
        if "renotify_s" in spec:
            kw["renotify_s"] = {k: (None if v is None else float(v)) for k, v in spec["renotify_s"].items()}
        if "tiers" in spec:
            kw["tiers"] = tuple(Tier(str(t["name"]), float(t["after_s"])) for t in spec["tiers"])
        if "suppressible" in spec:
            kw["suppressible"] = frozenset(str(r) for r in spec["suppressible"])
        if "release_grace_s" in spec:
            kw["release_grace_s"] = float(spec["release_grace_s"])
        flap = spec.get("flap") or {}
        for key, name in (("changes", "flap_changes"), ("window_s", "flap_window_s"),
                          ("stable_s", "flap_stable_s")):
            if key in flap:
                kw[name] = int(flap[key]) if key == "changes" else float(flap[key])
        return Lifecycle(**kw)
    except (TypeError, ValueError, KeyError) as err:
        raise ConfigError("rules", None, "bad_lifecycle", f"{where}: lifecycle: {err}") from None


def care_flow(settings: Settings) -> "CareFlow":
    """The care stage: profile tags (the configured BP guideline), the nudge policy (its
    YAML also gives the patients' default time zone) and the experiments' outcomes."""
    from vitalstream.operators.care import CareFlow
    from vitalstream.operators.experiment.outcomes import OutcomeTracker
    from vitalstream.operators.nudge import NudgePolicy
    from vitalstream.operators.profile import ProfileRules, default_rules

    c = settings.care
    policy = NudgePolicy.from_yaml(c.nudges) if c.nudges else NudgePolicy.default()
    try:
        profile = ProfileRules(default_rules(c.guideline), timezone=policy.timezone)
    except ValueError as err:
        raise ConfigError("config", None, "bad_value", f"care.guideline: {err}") from None
    experiments = any(s.experiment is not None for s in policy.strategies)
    return CareFlow(profile, policy, OutcomeTracker() if experiments else None)
