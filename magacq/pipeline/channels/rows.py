"""Rows for a MatrixBuffer written in batches, kept (not lost) while the buffer is full."""

from typing import Any

import numpy as np


class BatchedRows:
    """Rows for one MatrixBuffer, written in batches; kept (not lost) while the buffer is full."""

    def __init__(self, buf: Any) -> None:
        self.buf = buf
        self.rows: list[tuple[float, ...]] = []
        self.pending: list[np.ndarray] = []

    def add(self, *row: float) -> None:
        self.rows.append(row)

    def flush(self) -> None:
        from buffers import BufferOverflow

        if self.rows:
            self.pending.append(np.asarray(self.rows, dtype=np.float64))
            self.rows = []
        while self.pending:
            try:
                self.buf.write(self.pending[0])
            except BufferOverflow:
                return  # the writer is behind: try again at the next flush
            self.pending.pop(0)
