"""A local append-only spool for writes the store could not take.

When InfluxDB is down the pipeline keeps running and keeps acknowledging: a
batch is "safely processed" once it is fsync'ed here. Files are replayed in
order when the server answers again. A file is deleted only once every point in
it was dealt with (stored, or refused for good and handed back as a dead
letter); when the server goes away again halfway through a file, the file is
replaced, atomically and fsync'ed, by the points not yet dealt with, so a
replay neither loses a point nor reports a refused one twice.
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

    @staticmethod
    def _write_durably(path: Path, body: str) -> None:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # a crash mid-write leaves a .tmp, never half a batch

    def append(self, body: str) -> Path:
        path = self.dir / f"{self._seq:012d}.lp"
        self._seq += 1
        self._write_durably(path, body)
        return path

    def pending(self) -> list[Path]:
        return sorted(self.dir.glob("*.lp"))

    def __len__(self) -> int:
        return len(self.pending())

    def replay(self, store: Callable[[str], str]) -> int:
        """Hand spooled batches to ``store`` oldest first; the number of files finished.

        ``store`` returns the part of the batch it could not deal with: ``""``
        when every point was stored or refused for good (the file is deleted),
        else the rest, which replaces the file, and the replay stops there so
        that order is kept (the store is down again). An exception from
        ``store`` propagates and leaves the file as it was.
        """
        n = 0
        for path in self.pending():
            body = path.read_text(encoding="utf-8")
            rest = store(body)
            if rest:
                if rest != body:
                    self._write_durably(path, rest)
                break
            path.unlink()
            n += 1
        return n
