"""vitalstream: a streaming processor for wearable telemetry.

The package is laid out by role (see README.md, "Architecture"):

- ``vitalstream.operators``: engine-free per-key logic (windows, rules, dedup,
  anomaly detectors) with snapshot/resume and an injectable clock.
- ``vitalstream.stream``: runtimes (bytewax default, a reference runner) that
  host the operators.
- ``vitalstream.connectors``: MQTT source, payload codecs, BLE decoders.
- ``vitalstream.sinks``: InfluxDB and Redis Streams writers.
- ``vitalstream.simulators``: synthetic patients and devices with ground truth.
"""

from vitalstream.errors import VitalstreamError
from vitalstream.model import Alert, DeadLetter, Reading, WindowAggregate

__all__ = ["Alert", "DeadLetter", "Reading", "VitalstreamError", "WindowAggregate"]
__version__ = "0.1.0"
