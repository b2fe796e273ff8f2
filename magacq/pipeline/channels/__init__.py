"""The streams and command channels between a run's processes, each defined once: the
MatrixBuffers' columns (``events``, ``motor_channel``, ``lock_channel``, ``live_force``,
``status``), the heartbeats (``heartbeat``), stop flags no dying process can wedge (``flag``),
batched rows (``rows``) and attaching to a run's channel from any program (``channel``).
Programs started separately (``magacq view``, a user's script) use these alone."""
