"""Private service processes on free ports: what ``vitalstream demo``, the benchmarks and the
tests start (Debian's mosquitto, redis-server, victoria-metrics and influxd binaries).

This is product code (the demo runs on it), not a test helper: the tests import it, never
the other way round.
"""

from vitalstream.stream.embedded.services import (Mosquitto, RedisServer, Service, ServiceError,
                                                   ServiceStartError, ServiceTimeout,
                                                   ServiceUnavailable, free_port)
from vitalstream.stream.embedded.stores import InfluxDB1, VictoriaMetrics

__all__ = ["InfluxDB1", "Mosquitto", "RedisServer", "Service", "ServiceError", "ServiceStartError",
           "ServiceTimeout", "ServiceUnavailable", "VictoriaMetrics", "free_port"]
