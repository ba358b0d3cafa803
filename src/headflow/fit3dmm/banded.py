"""Block-banded quadratic problems over the frames of a clip, with optional box constraints.

The fitter's coefficient and pose steps both minimise, over per-frame variable blocks x_t (K,),

    sum_t ( 1/2 x_t^T H_t x_t - g_t^T x_t )  +  mu/2 * sum_t || w * (x_{t-1} - 2 x_t + x_{t+1}) ||^2

(H_t dense K x K, already holding the data term and any diagonal prior), optionally subject to
lo <= x <= hi. Ordered frame-major (index t*K + k) the matrix is symmetric banded with lower
bandwidth 2K: the dense diagonal blocks plus the second-difference operator, which couples only the
same k of frames t, t+1, t+2. It is factorised once with LAPACK's banded Cholesky
(`scipy.linalg.cholesky_banded`, O(T K^3)), and the box is handled by ADMM around that one factor.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_solve_banded, cholesky_banded


def second_difference_gram(T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Diagonals (offsets 0, 1, 2) of D2^T D2 for the (T-2, T) second-difference operator D2.

    Returns three (T,) arrays; entry t of offset o is (D2^T D2)[t + o, t] (zero past the end).
    Interior rows are (1, -4, 6, -4, 1); T < 3 gives all zeros (no second difference exists).
    """
    d0, d1, d2 = np.zeros(T), np.zeros(T), np.zeros(T)
    if T >= 3:
        n = T - 2  # rows j: x_j - 2 x_{j+1} + x_{j+2}
        d0[:n] += 1.0
        d0[1:n + 1] += 4.0
        d0[2:n + 2] += 1.0
        d1[:n] += -2.0        # (j, j+1)
        d1[1:n + 1] += -2.0   # (j+1, j+2)
        d2[:n] += 1.0         # (j, j+2)
    return d0, d1, d2


def assemble(blocks: np.ndarray, smooth: np.ndarray | None = None, diag: np.ndarray | None = None) -> np.ndarray:
    """Lower banded storage (`scipy.linalg.cholesky_banded(lower=True)` layout) of the frame-major matrix.

    Args:
        blocks: (T, K, K) symmetric per-frame blocks H_t.
        smooth: (K,) per-variable weight mu * w_k^2 of the second-difference penalty; None: none
            (the band is then only the K - 1 within-block diagonals).
        diag: (T, K) extra diagonal (added to the blocks' diagonals).

    Returns:
        ab (u + 1, T*K) with ab[i - j, j] = A[i, j] for i >= j, u = 2K (smoothing) or K - 1.
    """
    T, K, _ = blocks.shape
    u = 2 * K if smooth is not None and T >= 3 else K - 1
    ab = np.zeros((u + 1, T * K))
    for d in range(K):
        # Offset d inside each block: A[tK + l + d, tK + l] = H_t[l + d, l], l < K - d.
        ab[d].reshape(T, K)[:, :K - d] = np.diagonal(blocks, offset=-d, axis1=1, axis2=2)
    if diag is not None:
        ab[0] += diag.reshape(-1)
    if u == 2 * K:
        d0, d1, d2 = second_difference_gram(T)
        ab[0] += (d0[:, None] * smooth[None, :]).reshape(-1)
        ab[K] += (d1[:, None] * smooth[None, :]).reshape(-1)
        ab[2 * K] += (d2[:, None] * smooth[None, :]).reshape(-1)
    return ab


def smooth_apply(x: np.ndarray, smooth: np.ndarray) -> np.ndarray:
    """(D2^T D2 (x) diag(smooth)) x for x (T, K): the gradient of the smoothing penalty."""
    T = len(x)
    out = np.zeros_like(x)
    if T >= 3:
        d2x = x[:-2] - 2 * x[1:-1] + x[2:]
        out[:-2] += d2x
        out[1:-1] -= 2 * d2x
        out[2:] += d2x
    return out * smooth[None, :]


class BandedSolver:
    """Cholesky factor of a banded SPD matrix; `solve` takes (T, K) right-hand sides."""

    def __init__(self, ab: np.ndarray, K: int) -> None:
        self.K = K
        self.factor = cholesky_banded(ab, lower=True, overwrite_ab=True, check_finite=False)

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        flat = cho_solve_banded((self.factor, True), rhs.reshape(-1), check_finite=False)
        return flat.reshape(rhs.shape)


def solve_box_admm(blocks: np.ndarray, rhs: np.ndarray, lo: float, hi: float, smooth: np.ndarray | None = None,
                   prior: np.ndarray | None = None, x0: np.ndarray | None = None, dual0: np.ndarray | None = None,
                   rho: float = 1.0, max_iter: int = 60, tol: float = 1e-4, relax: float = 1.6
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """min 1/2 x^T A x - rhs^T x  s.t.  lo <= x <= hi, A = blockdiag(blocks) + diag(prior) + smoothing.

    ADMM (Boyd et al. 2011, sec. 5.2) in the Jacobi metric E = diag(A): x-update
    (A + rho E) x = rhs + rho E (z - u), z = clip(x + u), over-relaxed. One banded Cholesky of
    A + rho E serves every iteration. Warm start with the previous (z, u).

    Returns:
        z (T, K) feasible solution, the scaled dual u (T, K) for a warm start, iterations used.
    """
    T, K, _ = blocks.shape
    diag_blocks = np.diagonal(blocks, axis1=1, axis2=2)
    E = diag_blocks + (prior if prior is not None else 0.0)
    if smooth is not None and T >= 3:
        E = E + second_difference_gram(T)[0][:, None] * smooth[None, :]
    E = np.maximum(E, 1e-12 * max(float(E.max()), 1e-30))
    extra = (prior if prior is not None else 0.0) + rho * E
    solver = BandedSolver(assemble(blocks, smooth, np.broadcast_to(extra, (T, K))), K)
    z = np.clip(x0, lo, hi) if x0 is not None else np.clip(np.zeros((T, K)), lo, hi)
    u = dual0.copy() if dual0 is not None else np.zeros((T, K))
    scale = np.sqrt(E)
    it = 0
    for it in range(1, max_iter + 1):
        x = solver.solve(rhs + rho * E * (z - u))
        xr = relax * x + (1 - relax) * z
        z_new = np.clip(xr + u, lo, hi)
        u += xr - z_new
        primal = np.linalg.norm(scale * (x - z_new))
        dual = rho * np.linalg.norm(scale * (z_new - z))
        z = z_new
        ref = max(np.linalg.norm(scale * x), np.linalg.norm(scale * z), 1e-12)
        if primal <= tol * ref and dual <= tol * ref:
            break
    return z, u, it


def solve_box_dense(H: np.ndarray, g: np.ndarray, lo, hi, x0: np.ndarray | None = None, max_iter: int = 100,
                    tol: float = 1e-10) -> np.ndarray:
    """min 1/2 x^T H x - g^T x  s.t.  lo <= x <= hi for one small dense SPD H (exact at convergence).

    Projected Newton (Bertsekas 1982): variables at a bound whose gradient pushes outward are held,
    a Newton step on the others, projected back on the box with an Armijo backtracking search. A
    QP's active set settles in a few iterations; each is one small Cholesky.
    """
    lo = np.broadcast_to(np.asarray(lo, np.float64), g.shape)
    hi = np.broadcast_to(np.asarray(hi, np.float64), g.shape)
    x = np.linalg.solve(H, g) if x0 is None else np.asarray(x0, np.float64)
    if x0 is None and (x >= lo).all() and (x <= hi).all():
        return x
    x = np.clip(x, lo, hi)
    f = 0.5 * x @ H @ x - g @ x
    scale = max(float(np.abs(np.diag(H)).max()), 1e-300)
    for _ in range(max_iter):
        grad = H @ x - g
        held = ((x <= lo) & (grad > 0)) | ((x >= hi) & (grad < 0))
        free = ~held
        if not free.any():
            break
        step = np.zeros_like(x)
        step[free] = -np.linalg.solve(H[np.ix_(free, free)], grad[free])
        t = 1.0
        while True:
            x_new = np.clip(x + t * step, lo, hi)
            f_new = 0.5 * x_new @ H @ x_new - g @ x_new
            if f_new <= f + 1e-4 * grad @ (x_new - x) or t < 1e-8:
                break
            t *= 0.5
        moved = np.abs(x_new - x).max()
        x, f_old, f = x_new, f, f_new
        if moved * scale <= tol * max(1.0, np.abs(g).max()) or f_old - f <= tol * abs(f_old) * 1e-3:
            break
    return x
