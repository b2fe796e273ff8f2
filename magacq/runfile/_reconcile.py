"""After a run: make the run file's ``video_frames`` list exactly the frames of its video file.

The writer lists what the recorder reported, but a writer that stopped first (a full disk, a
crash) never reads the recorder's last reports, and a recorder that died between a flush and
its report leaves flushed frames unreported. The video file's ``video_seq`` is the truth: row k
holds the sequence number of frame k of the video, and sequence number s is row s of the run
file's ``frames`` (the producer numbers the frames it stores 0, 1, 2, ... in the order it
stores them). :func:`reconcile_video` lists the video's unlisted frames from there (taking them
out of ``video_skipped``), moves listed frames the video does not hold to ``video_skipped``,
cuts from the video the frames the run file has no ``frames`` row for, and (after a writer that
stopped early) lists as skipped the stored frames listed nowhere. A video file whose recorder
died is recovered like a run file: its open-for-write flags are cleared.
"""

from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from magacq.runfile._recover import clear_write_flags


class Reconciled(NamedTuple):
    """What :func:`reconcile_video` changed (all 0: the listing was right)."""

    listed: int  # video frames added to ``video_frames``
    moved: int  # ``video_frames`` rows past the end of the video, moved to ``video_skipped``
    cut: int  # video frames removed: the run file has no ``frames`` row for them
    skipped: int  # stored frames listed nowhere, added to ``video_skipped`` (``unlisted``)


def reconcile_video(run_path: Path, *, unlisted: bool = False) -> Reconciled:
    """Make ``video_frames`` of the closed run file ``run_path`` match its linked video file
    (only the lengths are read when they agree), once the recorder has ended: the video file's
    open-for-write flags, left by a recorder that died, are cleared as the run file's are, so
    that `retrack` and the ``replay`` camera open it. ``unlisted`` (the writer stopped before its
    end-of-run pass): also list under ``video_skipped`` the stored frames the video should hold
    (every ``every``-th) but that are listed nowhere.

    Raises
    ------
    OSError, RuntimeError
        A file cannot be read or written (left as it was, or partly reconciled).
    """
    with h5py.File(run_path, "r") as f:
        links = [n for n in ("video", "roi_video") if n in f.keys()]
        link = f.get(links[0], getlink=True) if links else None
        if not isinstance(link, h5py.ExternalLink) or "video_frames" not in f:
            return Reconciled(0, 0, 0, 0)
        path, name = run_path.parent / link.filename, link.path.lstrip("/")
        clear_write_flags(path)  # a recorder that died left them: nothing would open the file
        with h5py.File(path, "r", swmr=True) as v:
            n = min(len(v[name]), len(v["video_seq"]))
            beyond = len(v[name]) - n  # frames whose video_seq rows never reached the file
            m = len(f["video_frames"])
            seq = v["video_seq"][m:n] if n > m else np.empty(0, v["video_seq"].dtype)
            every = int(v.attrs["every"])
        extra = f["video_frames"][n:]
        s = seq["seq"]
        lo = int(s[0]) if len(s) else 0
        stored = f["frames"][lo : int(s[-1]) + 1] if len(s) else f["frames"][:0]
    ok = (s >= lo) & (s < lo + len(stored))
    ok[ok] = stored["timestamp"][s[ok] - lo] == seq["timestamp"][ok]
    good = len(ok) if ok.all() else int(np.argmin(ok))  # the rest cannot be listed: cut
    added = stored[s[:good] - lo][["frame", "timestamp"]].astype(extra.dtype)
    cut = len(s) - good + beyond
    if not (len(added) or len(extra) or cut or unlisted):
        return Reconciled(0, 0, 0, 0)
    if cut:
        _cut_video(path, name, min(m, n) + good)
    with h5py.File(run_path, "r+") as f:
        frames, skipped = f["video_frames"], f["video_skipped"]
        _set_tail(frames, min(m, n), added)
        rows = skipped[:]
        listed = np.isin(rows["frame"], added["frame"])
        first = int(np.argmax(listed)) if listed.any() else len(rows)
        _set_tail(skipped, first, np.concatenate([rows[first:][~listed[first:]], extra]))
        nowhere = extra[:0]
        if unlisted:
            due = f["frames"][::every][["frame", "timestamp"]].astype(extra.dtype)
            known = np.concatenate([frames.fields("frame")[:], skipped.fields("frame")[:]])
            nowhere = due[~np.isin(due["frame"], known)]
            _set_tail(skipped, len(skipped), nowhere)
        f.attrs["video_frames"], f.attrs["video_skipped"] = len(frames), len(skipped)
    return Reconciled(len(added), len(extra), cut, len(nowhere))


def _cut_video(path: Path, name: str, n: int) -> None:
    """Keep the first ``n`` frames of the video file (its write flags already cleared)."""
    with h5py.File(path, "r+") as v:
        for ds in (v[name], v["video_seq"]):
            ds.resize((n, *ds.shape[1:]))


def _set_tail(ds: h5py.Dataset, start: int, rows: np.ndarray) -> None:
    """Rows ``start:`` of the table ``ds`` replaced by ``rows``."""
    ds.resize((start + len(rows),))
    ds[start:] = rows
