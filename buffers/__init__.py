"""Shared-memory buffers that carry frames and results between magacq's processes."""
