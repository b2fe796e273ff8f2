"""Tracking precision against photon budget, next to the Cramér-Rao bound of the same images.

For each photon budget (photoelectrons per background pixel) a Z-LUT is calibrated as
`magacq calibrate` would (20 noisy frames per 25 nm plane, random sub-pixel positions), then a
bead at a fixed position is imaged ``--frames`` times at a few heights and tracked; the standard
deviations of x, y, z are the precision. The Cramér-Rao bound comes from the image model itself:
Fisher information of independent pixels with Poisson shot noise plus Gaussian read noise
(variance mu + sigma_r^2), derivatives of the expected image mu = photons * I(x, y, z) by central
finite differences of ``simulators.optics.BeadImager.render`` in x, y and z.

    .venv/bin/python benchmarks/precision_vs_photons.py [--frames 200]
"""

import argparse

import numpy as np

from magacq.tracking import ProfileSpec, build_zlut, track_rois
from simulators.noise import to_counts
from simulators.optics import BeadImager, OpticsParams

ROI = 64
NM_PER_PX = 100.0
READ_NOISE_E = 2.0
Z_STEP = 25.0
Z_RANGE = (-2000.0, -200.0)
POSITION = (31.7, 32.4)


def crb(imager: BeadImager, x: float, y: float, z: float, photons: float) -> np.ndarray:
    """Cramér-Rao bounds (x nm, y nm, z nm) for one frame of the bead at (x, y, z)."""
    mu = photons * imager.render(x, y, z)
    steps = [(1e-3, 0.0, 0.0), (0.0, 1e-3, 0.0), (0.0, 0.0, 0.5)]
    grads = []
    for dx, dy, dz in steps:
        hi = imager.render(x + dx, y + dy, z + dz)
        lo = imager.render(x - dx, y - dy, z - dz)
        grads.append(photons * (hi - lo) / (2 * max(dx, dy, dz)))
    var = mu + READ_NOISE_E**2
    fisher = np.array([[np.sum(a * b / var) for b in grads] for a in grads])
    sd = np.sqrt(np.diag(np.linalg.inv(fisher)))
    return sd * np.array([NM_PER_PX, NM_PER_PX, 1.0])


def calibrate(imager: BeadImager, photons: float, rng: np.random.Generator):
    z = np.repeat(np.arange(Z_RANGE[0], Z_RANGE[1] + 1, Z_STEP), 20)
    xy = ROI / 2 + rng.uniform(-0.5, 0.5, (2, len(z)))
    img = np.stack([imager.render(a, b, c) for a, b, c in zip(xy[0], xy[1], z, strict=True)])
    spec = ProfileSpec.for_roi(ROI)
    res = track_rois(to_counts(img, photons, READ_NOISE_E, 16, rng), spec=spec)
    return build_zlut(res.profiles, z, Z_STEP, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--photons", type=float, nargs="+", default=[250, 1000, 4000, 16000])
    ap.add_argument("--heights", type=float, nargs="+", default=[-1700.0, -1100.0, -450.0])
    ap.add_argument("--method", default="fit")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    imager = BeadImager(OpticsParams(), ROI)
    x0, y0 = POSITION
    print(
        f"64x64 ROI, {NM_PER_PX:.0f} nm/px, read noise {READ_NOISE_E} e-, LUT step {Z_STEP} nm, "
        f"{args.frames} frames per point, method {args.method}; std / CRB in nm"
    )
    print(
        f"{'photons':>8}{'z nm':>8}{'std x':>8}{'CRB x':>8}{'ratio':>7}"
        f"{'std y':>8}{'std z':>8}{'CRB z':>8}{'ratio':>7}{'z bias':>8}"
    )
    for photons in args.photons:
        zlut = calibrate(imager, photons, rng)
        for z in args.heights:
            img = np.broadcast_to(imager.render(x0, y0, z), (args.frames, ROI, ROI))
            res = track_rois(
                to_counts(img, photons, READ_NOISE_E, 16, rng), None, zlut, method=args.method
            )
            ok = res.flags == 0
            sx, sy = np.std(res.x[ok]) * NM_PER_PX, np.std(res.y[ok]) * NM_PER_PX
            sz = np.std(res.z[ok])
            bx, _, bz = crb(imager, x0, y0, z, photons)
            print(
                f"{photons:8.0f}{z:8.0f}{sx:8.3f}{bx:8.3f}{sx / bx:7.2f}{sy:8.3f}"
                f"{sz:8.3f}{bz:8.3f}{sz / bz:7.2f}{np.mean(res.z[ok]) - z:8.2f}"
                + ("" if ok.all() else f"  ({(~ok).sum()} flagged)")
            )


if __name__ == "__main__":
    main()
