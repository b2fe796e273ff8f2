"""The exact covariance of averaged periodogram ordinates of the camera's samples.

The frames' covariance ``Sigma`` in a segment of ``n`` is ``(c0 - amp) I + amp R`` with
``R_st = r^|s-t|`` (:mod:`._camera`). ``R`` is a circulant matrix less a rank-2 term from the
segment's ends: ``R = C - (u w^T + w u^T) / (1 - r^n)``, ``u_s = r^s``, ``w_s = r^(n-s)``. The
DFT makes ``C`` diagonal, so the Fourier coefficients ``X_k`` (``0 < k < n / 2``) have
``E[X X^H] = diag(D) + a (U V^H + V U^H)`` and ``E[X X^T] = a (U V^T + V U^T)`` with
``U_k = 1 / (1 - r e_k)``, ``V_k = r e_k* / (1 - r e_k*)``, ``e_k = exp(-2 pi i k / n)``,
``a = -amp (1 - r^n)``; neighbouring segments share their ends:
``E[X_b X_b+1^H] = amp (1 - r^n)^2 V U^H`` (and ``V U^T``). For Gaussian coefficients
``cov(|X_j|^2, |X_k|^2) = |E[X_j X_k*]|^2 + |E[X_j X_k]|^2``. The low-rank terms correlate the
lowest ordinates strongly when a segment holds few correlation times (a soft trap): the
independent-ordinate likelihood then believes itself 1.5-2x more precise than it is.
"""

import numpy as np

from magacq.analysis._camera import camera_covariance

__all__ = ["ordinate_score_cov"]

Terms = list[tuple[np.ndarray, np.ndarray]]


def _abs2_form(g: np.ndarray, terms: Terms) -> np.ndarray:
    """``g |L|^2 g^T`` for ``L = sum p q^T`` over ``terms`` (``|.|^2`` element by element)."""
    out = np.zeros((len(g), len(g)))
    for p, q in terms:
        for p2, q2 in terms:
            out += np.real(np.outer(g @ (p * np.conj(p2)), g @ (q * np.conj(q2))))
    return out


def ordinate_score_cov(
    g: np.ndarray,
    k: np.ndarray,
    segment: int,
    n_blocks: int,
    var: float,
    tau: float,
    frame_rate: float,
    exposure_s: float,
) -> np.ndarray:
    """``g C g^T``: ``C`` the covariance of the averaged periodogram ordinates at Fourier
    indices ``k`` (of ``n_blocks`` adjacent segments of ``segment`` frames), each divided by
    its expectation; ``g`` is ``(n_params, len(k))``."""
    c0, amp, r = camera_covariance(var, tau, frame_rate, exposure_s)
    n = segment
    e = np.exp(-2j * np.pi * k / n)
    rn = r**n
    u = 1.0 / (1.0 - r * e)
    v = r * np.conj(e) / (1.0 - r * np.conj(e))
    a = -amp * (1.0 - rn)
    d = n * ((c0 - amp) + amp * (1.0 - r * r) / np.abs(1.0 - r * e) ** 2)
    low = a * 2.0 * np.real(u * np.conj(v))  # the rank-2 term's diagonal
    g = g / (d + low)  # each |X_k|^2 over its expectation
    diag = g @ (g * (np.abs(d + low) ** 2 - low**2)).T
    within = (diag + _abs2_form(g, [(a * u, np.conj(v)), (a * v, np.conj(u))])
              + _abs2_form(g, [(a * u, v), (a * v, u)]))  # fmt: skip
    b = amp * (1.0 - rn) ** 2
    cross = _abs2_form(g, [(b * v, np.conj(u))]) + _abs2_form(g, [(b * v, u)])
    return (n_blocks * within + (n_blocks - 1) * (cross + cross.T)) / n_blocks**2
