"""The entry points of a run's child processes and what runs in them: the devices process
(``devices``: camera frame loop; ``motion``: its motion thread), the trackers (``tracker``), the
writer (``writer``, with ``frame_map`` and ``clock``: frames, events and latency on one clock),
the recorder (``recorder``), the protocol process (``protocol_runner``, ``lock_runner``) and the
kernel compile child (``warmup``)."""
