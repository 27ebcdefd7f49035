"""A local append-only spool for writes the store could not take.

When InfluxDB is down the pipeline keeps running and keeps acknowledging: a
batch is "safely processed" once it is fsync'ed here. Files are replayed in
order when the server answers again and deleted only after a successful write.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


class Spool:
    def __init__(self, directory: str | os.PathLike) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        existing = sorted(self.dir.glob("*.lp"))
        self._seq = int(existing[-1].stem) + 1 if existing else 0

    def append(self, body: str) -> Path:
        path = self.dir / f"{self._seq:012d}.lp"
        self._seq += 1
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # a crash mid-write leaves a .tmp, never half a batch
        return path

    def pending(self) -> list[Path]:
        return sorted(self.dir.glob("*.lp"))

    def __len__(self) -> int:
        return len(self.pending())

    def replay(self, write: Callable[[str], None]) -> int:
        """Write spooled batches oldest first; stop at the first failure (it propagates)."""
        n = 0
        for path in self.pending():
            write(path.read_text(encoding="utf-8"))
            path.unlink()
            n += 1
        return n
