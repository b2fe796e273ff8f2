"""The output of an unfinished re-tracking, kept so that running the same command again resumes it.

The new run file is written as ``OUT.part`` and renamed to ``OUT`` when complete. Its
``retracked`` table lists the stacks done and how many ``tracks`` rows they had made by then. To
resume, ``OUT.part`` (closed cleanly or not: the file is read as a SWMR reader reads it, up to its
last flush) is renamed ``OUT.resume``, the stacks it lists are copied with their tracks into a
fresh ``OUT.part``, and ``OUT.resume`` is removed once that is flushed. A ``OUT.resume`` left by a
crash mid-copy is the one to resume from.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from magacq.errors import ConfigError
from magacq.runfile import read_attrs, read_table


@dataclass
class Previous:
    """What an unfinished re-tracking had done: the stacks and their tracks."""

    stacks: set[tuple[int, int]]
    retracked: np.ndarray  # RETRACKED_DTYPE rows
    tracks: np.ndarray  # TRACKS_DTYPE rows


def part_path(out: Path) -> Path:
    return out.with_name(out.name + ".part")


def _resume_path(out: Path) -> Path:
    return out.with_name(out.name + ".resume")


def take_previous(out: Path, signature: str) -> tuple[Previous | None, Path | None]:
    """The previous attempt at ``out`` (or None) and the file it was read from, to remove with
    :func:`forget` once the new ``.part`` holds it.

    Raises
    ------
    ConfigError
        The unfinished file is of another re-tracking (other source, method, Z-LUT or stack size).
    """
    part, resume = part_path(out), _resume_path(out)
    if not resume.exists():
        if not part.exists():
            return None, None
        part.replace(resume)
    try:
        attrs = read_attrs(resume)
        if attrs.get("retrack_signature") != signature:
            raise ConfigError(
                f"{part}: an unfinished re-tracking with other settings (source, method, Z-LUT "
                "or stack size); remove it or give another --out"
            )
        retracked = read_table(resume, "retracked")
        tracks = read_table(resume, "tracks")
    except ConfigError:
        resume.replace(part)  # leave it as it was found
        raise
    # the tables are flushed together, but keep only stacks whose tracks are all there
    retracked = retracked[retracked["tracks"] <= len(tracks)]
    end = int(retracked["tracks"].max()) if len(retracked) else 0
    stacks = {(int(a), int(b)) for a, b in zip(retracked["start"], retracked["stop"], strict=True)}
    return Previous(stacks, retracked, tracks[:end]), resume


def forget(resume: Path | None) -> None:
    """Remove the previous attempt's file once the new one holds what it had."""
    if resume is not None:
        resume.unlink(missing_ok=True)
