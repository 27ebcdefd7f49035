"""The nudge engine: follow-up reminders and care-team tasks for chronic care.

``NudgePolicy`` (a frozen config, ``from_yaml``/``from_dict``/``default()``) builds
one ``NudgeLogic`` per patient under the operator contract
(``vitalstream.operators.contract``). It takes ``Reading``, ``TagChange`` and
``CareEvent`` records and emits ``Nudge``, ``NudgeSuppressed`` and ``Exposure``
(``vitalstream.care``). Clinical alerts are not its business: it refuses an
``Alert`` (TypeError), so nothing clinical can ever wait behind a nudge cap.

Policy YAML (the packaged default is ``vitalstream/data/nudges-default.yaml``;
durations are whole seconds; every key below is the whole vocabulary, anything
else is a ``ConfigError`` naming the strategy and the key)::

    timezone: Europe/London        # IANA zone of patients who sent no CareEvent(kind="timezone")
    quiet_hours:                   # optional; the patient's local wall-clock time, [start, end)
      start: "21:00"               # quoted: YAML 1.1 reads 21:00 as the number 1260
      end: "08:00"                 # start > end spans midnight
      channels: [sms, app]         # optional: only these are held (default: every channel)
    caps:                          # per patient, over ALL strategies
      - {channel: sms, per: day, max: 1}   # per: day (local calendar day) | week (local ISO week)
      - {channel: "*", per: day, max: 2}   # "*": all channels together
    digest_s: 900                  # same kind+channel ready within this: one message
    max_delay_s: 172800            # optional default: a nudge not sendable this long after
                                   # it fell due is suppressed "expired" (never otherwise dropped)
    strategies:                    # list order is priority: first wins a slot
      - name: bp-missing           # unique; nudge ids and state are by name
        when:                      # exactly one trigger, plus optional programme
          no_reading: {signal: bp_systolic, for_s: 259200}  # silence of a signal
          programme: hypertension  # only patients with this tag or enrolment
        send: {kind: patient-reminder, channel: sms, message: "..."}  # kind: patient-reminder | care-task
        repeat_s: 259200           # no nudge due sooner than this after the last one sent;
                                   # a silence re-triggers every repeat_s while it lasts
        done_if: {reading: bp_systolic, since: trigger}  # since: trigger | due
        max_delay_s: 3600          # overrides the default above
        experiment:                # variants by vitalstream.operators.experiment.assign
          name: bp-reminder-2026
          seed: "..."
          variants: {holdout: 0.2, sms: 0.4, app: 0.4}   # name: weight
          holdout: holdout         # default "holdout": that variant is sent nothing
          overrides: {app: {channel: app, message: "..."}}   # per-variant send fields

Triggers (``when``):

- ``tag_set: T`` - tag T appears (``TagChange`` set, or ``CareEvent`` manual-tag);
  an update or a repeat of a tag already held is no trigger.
- ``no_reading: {signal, for_s}`` - no reading of the signal for ``for_s`` since the
  last one (or since joining the programme, or since the patient's first record).
  Implicit ``done_if``: a reading of that signal after the last one.
- ``after_event: E`` with ``expect: {signal, within_s}`` - no reading of the signal in
  the ``within_s`` after event E (visit, meal, enrol, leave, manual-tag, clear-tag);
  a reading after the deadline but before the send still counts (implicit ``done_if``).
- ``after_event: E`` with ``delay_s`` - a follow-up ``delay_s`` after event E.
- ``schedule: {every_s}`` - a recall every ``every_s`` from joining the programme.

What happens to a triggered nudge, in order (see ``vitalstream.operators.nudge.logic``):
an ``Exposure`` the first time the patient meets the strategy's experiment (whatever
follows: intention to treat); "holdout"; "repeat"; held to the end of quiet hours;
grouped with others of its kind+channel for ``digest_s`` ("digested" for all but the
highest priority, whose ``Nudge.digest_of`` names them); "already-done"; "expired";
caps ("cap", or "priority" when a higher-priority nudge of the same slot took the
room). Every one of those is a ``NudgeSuppressed`` with its reason and detail, and
``NudgeLogic.suppressed_counts()`` (also ``NudgeState.suppressed``) counts them.

Time is event time: each logic's clock is the latest event time it has seen, moved
on by ``on_notify(now_ns)``; ``notify_at()`` is the next deadline (a silence
reaching ``for_s``, a timer, the end of quiet hours, a digest's close, a recall),
so a patient who sends nothing is still reminded. ``Nudge.due_ns`` is the trigger's
event time and ``at_ns`` its send time, both from event times, so ``nudge_id``
(patient, strategy, due_ns) is the same in a replay.

Order matters (a reading that comes after a nudge was sent cannot recall it), so
the engine wants its patient's items in event order; a re-sent item changes nothing.

>>> from vitalstream.care import TagChange
>>> policy = NudgePolicy.default()
>>> logic = policy.build(key="p0042")
>>> t = 1_777_626_000 * 1_000_000_000  # 2026-05-01 09:00 UTC, 10:00 in London
>>> out, _ = logic.on_item(TagChange("p0042", "hypertension", "set", "bp-guideline", t, None,
...                                  0.9, t))
>>> [type(x).__name__ for x in out], logic.notify_at() - t   # the welcome task: digest_s later
([], 900000000000)
>>> out, _ = logic.on_notify(t + 900 * 1_000_000_000)
>>> out[0].strategy, out[0].channel, out[0].reason
('hypertension-welcome', 'care-team', 'hypertension-welcome: tag hypertension set (bp-guideline) at 2026-05-01 09:00 UTC')
"""

from vitalstream.operators.nudge.logic import NudgeLogic, NudgeState, Pending
from vitalstream.operators.nudge.policy import NudgePolicy
from vitalstream.operators.nudge.strategy import Cap, DoneIf, QuietHours, Send, Strategy, Trigger

__all__ = ["Cap", "DoneIf", "NudgeLogic", "NudgePolicy", "NudgeState", "Pending", "QuietHours",
           "Send", "Strategy", "Trigger"]
