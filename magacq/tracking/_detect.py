"""Automatic bead detection: ring-symmetric spots, not mere bright spots.

A bead in bright field is a set of concentric light and dark rings around the background level.
Candidates are the strongest local maxima of the smoothed absolute deviation from background;
each is kept when (1) its pixels are well explained by their radial mean (radial symmetry) and
(2) its radial profile goes clearly both above and below the background (rings). A bright spot
of dust or a hot pixel is symmetric but has no dark ring; an edge or a scratch is not symmetric.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Bead:
    """A detected bead: centre in pixels (x along columns) and its score in 0..1."""

    x: int
    y: int
    score: float


def detect_beads(
    image: np.ndarray,
    roi_size: int,
    *,
    max_beads: int = 50,
    min_score: float = 0.5,
) -> list[Bead]:
    """Find beads in ``image`` whose ``roi_size`` square ROI lies wholly in the frame.

    Parameters
    ----------
    image : numpy.ndarray
        One frame or an average of a few, shaped ``(height, width)``.
    roi_size : int
        Side of the ROI in pixels; beads closer than this to each other or to the edge are skipped.
    max_beads : int
        Keep at most this many, best first.
    min_score : float
        Minimum radial-symmetry score (0..1).

    Returns
    -------
    list of Bead
        Sorted by score, best first; ROIs do not overlap.
    """
    img = np.asarray(image, dtype=np.float64)
    height, width = img.shape
    half = roi_size // 2
    if height < roi_size or width < roi_size:
        return []
    background = float(np.median(img))
    noise = 1.4826 * float(np.median(np.abs(img - background))) + 1e-9
    deviation = _box_mean(np.abs(img - background), max(3, roi_size // 8))
    # Only centres whose ROI fits wholly in the frame are candidates.
    energy = np.full_like(deviation, -np.inf)
    energy[half : height - half, half : width - half] = deviation[
        half : height - half, half : width - half
    ]
    threshold = float(np.median(deviation)) + 2.0 * noise / max(3, roi_size // 8)
    found: list[Bead] = []
    for _ in range(max(4 * max_beads, 16)):
        flat = int(np.argmax(energy))
        cy, cx = divmod(flat, width)
        if not energy[cy, cx] > threshold:
            break
        energy[
            max(0, cy - roi_size + 1) : cy + roi_size, max(0, cx - roi_size + 1) : cx + roi_size
        ] = -np.inf
        bead = _score(img, cx, cy, roi_size, background, noise)
        if bead is not None and bead.score >= min_score:
            found.append(bead)
    found.sort(key=lambda b: -b.score)
    kept: list[Bead] = []
    for bead in found:  # refinement may move centres: keep ROIs apart
        if all(max(abs(bead.x - k.x), abs(bead.y - k.y)) >= roi_size for k in kept):
            kept.append(bead)
        if len(kept) == max_beads:
            break
    return kept


def _box_mean(img: np.ndarray, size: int) -> np.ndarray:
    """Mean over a ``size`` x ``size`` box centred on each pixel (edges clamped)."""
    pad = size // 2
    padded = np.pad(img, ((pad + 1, pad), (pad + 1, pad)), mode="edge")
    c = padded.cumsum(0).cumsum(1)
    h, w = img.shape
    s = c[size : size + h, size : size + w] - c[:h, size : size + w] - c[size : size + h, :w]
    return (s + c[:h, :w]) / (size * size)


def _score(
    img: np.ndarray, cx: int, cy: int, roi_size: int, background: float, noise: float
) -> Bead | None:
    height, width = img.shape
    half = roi_size // 2
    x, y = float(cx), float(cy)
    for _ in range(3):  # refine the centre: centroid of the deviation, then re-centre the window
        ix, iy = int(round(x)), int(round(y))
        if not (half <= ix <= width - half and half <= iy <= height - half):
            return None
        patch = img[iy - half : iy - half + roi_size, ix - half : ix - half + roi_size]
        weight = (patch - background) ** 2
        total = weight.sum()
        if total <= 0:
            return None
        grid = np.arange(roi_size) - half
        x = ix + float((weight.sum(0) * grid).sum() / total)
        y = iy + float((weight.sum(1) * grid).sum() / total)
    ix, iy = int(round(x)), int(round(y))
    if not (half <= ix <= width - half and half <= iy <= height - half):
        return None
    patch = img[iy - half : iy - half + roi_size, ix - half : ix - half + roi_size]
    yy, xx = np.mgrid[:roi_size, :roi_size]
    r = np.hypot(xx - (x - ix + half), yy - (y - iy + half))
    inside = r < half
    bins = r[inside].astype(np.int64)
    values = patch[inside]
    counts = np.bincount(bins)
    profile = np.bincount(bins, values) / np.maximum(counts, 1)
    residual = values - profile[bins]
    spread = values - values.mean()
    symmetry = 1.0 - float((residual**2).sum()) / max(float((spread**2).sum()), 1e-12)
    # Rings: the profile must go clearly above and clearly below the background.
    significance = (profile - background) / (noise / np.sqrt(np.maximum(counts, 1)))
    has_rings = significance.max() > 5.0 and significance.min() < -5.0
    if not has_rings:
        return None
    return Bead(ix, iy, max(0.0, min(1.0, symmetry)))
