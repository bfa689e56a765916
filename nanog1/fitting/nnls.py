"""Batched non-negative least squares (Lawson–Hanson active set, vectorised over samples).

Every sample's problem min ||v - W x||, x >= 0 is solved in Gram form (G = WᵀW, b = Wᵀv) so one
step costs a batched k × k solve, whatever the number of channels. All samples advance together;
a sample whose KKT conditions hold simply stops changing. Runs on CPU or GPU in float64.
"""

from __future__ import annotations

import torch

_EPS = 1e-12


def _masked_solve(G: torch.Tensor, b: torch.Tensor, passive: torch.Tensor) -> torch.Tensor:
    """Least squares restricted to each row's passive set: zero outside it (Cholesky, LU fallback)."""
    p = passive.to(G.dtype)
    Gp = G * (p.unsqueeze(-1) * p.unsqueeze(-2)) + torch.diag_embed(1 - p)
    rhs = (b * p).unsqueeze(-1)
    L, info = torch.linalg.cholesky_ex(Gp)
    if bool((info == 0).all()):
        return torch.cholesky_solve(rhs, L).squeeze(-1) * p
    return torch.linalg.solve(Gp, rhs).squeeze(-1) * p


def _active_set_guess(G: torch.Tensor, b: torch.Tensor, allowed: torch.Tensor, steps: int) -> torch.Tensor:
    """Primal-dual active-set iterations: a near-optimal feasible start for Lawson–Hanson.

    Each step solves on the guessed support, then keeps coordinates with positive value and frees
    zero ones whose gradient points inward. It usually lands on the exact support in a few steps;
    Lawson–Hanson then certifies (or repairs) it, so exactness never rests on this guess. Only rows
    whose support still changes are solved again.
    """
    passive = allowed.clone()
    x = torch.zeros_like(b)
    todo = torch.arange(len(b), device=b.device)
    for _ in range(steps):
        if len(todo) == 0:
            break
        z = _masked_solve(G[todo], b[todo], passive[todo])
        w = _gradient(G[todo], b[todo], z.clamp_min(0))
        cur = passive[todo]
        nxt = allowed[todo] & ((cur & (z > 0)) | (~cur & (w > 0)))
        x[todo] = z.clamp_min(0)
        moved = (nxt != cur).any(-1)
        passive[todo] = nxt
        todo = todo[moved]
    return x


def _gradient(G: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Negative gradient b - G x of the objective ½xᵀGx - bᵀx (per row)."""
    return b - (G @ x.unsqueeze(-1)).squeeze(-1)


def _line_search(x: torch.Tensor, z: torch.Tensor, passive: torch.Tensor):
    """Move rows from x toward infeasible z until the first passive coordinate hits zero."""
    neg = passive & (z <= 0)
    ratio = torch.where(neg, x / (x - z).clamp_min(_EPS), torch.full_like(x, float("inf")))
    alpha = ratio.min(dim=-1).values.clamp(0, 1).unsqueeze(-1)
    x = x + alpha * (z - x)
    zeroed = passive & (x <= _EPS * x.abs().amax(-1, keepdim=True).clamp_min(1.0))
    return torch.where(zeroed, torch.zeros_like(x), x), passive & ~zeroed


def _inner_loop(G, b, x, passive, rows: torch.Tensor, max_inner: int):
    """Lawson–Hanson inner loop on row indices `rows`: solve on the passive set, backtrack while the
    solution is infeasible. Updates x and passive in place."""
    for _ in range(max_inner):
        if len(rows) == 0:
            break
        z = _masked_solve(G[rows], b[rows], passive[rows])
        bad = (passive[rows] & (z <= 0)).any(-1)
        good = rows[~bad]
        x[good] = torch.where(passive[good], z[~bad], torch.zeros_like(z[~bad]))
        rows = rows[bad]
        x[rows], passive[rows] = _line_search(x[rows], z[bad], passive[rows])


def nnls_gram(
    G: torch.Tensor,
    b: torch.Tensor,
    allowed: torch.Tensor | None = None,
    x0: torch.Tensor | None = None,
    tol: float = 1e-10,
    max_iter: int | None = None,
    guess_steps: int = 12,
) -> torch.Tensor:
    """Solve min ½xᵀGx - bᵀx, x >= 0 for a batch of rows (Lawson–Hanson, all rows at once).

    G: (k, k) shared or (n, k, k) per row; b: (n, k). `allowed` (n, k) bool restricts each row to a
    subset of coordinates (the rest stay 0); `x0` (n, k) >= 0 warm-starts from a feasible point,
    else `guess_steps` primal-dual active-set steps give the start.
    Rows converge when every allowed zero coordinate has gradient <= tol · max|b| of that row.
    """
    n, k = b.shape
    if G.dim() == 2:
        G = G.expand(n, k, k)
    allowed = torch.ones_like(b, dtype=torch.bool) if allowed is None else allowed.clone()
    if x0 is None:
        x0 = _active_set_guess(G, b, allowed, guess_steps) if guess_steps else torch.zeros_like(b)
    x = torch.where(allowed, x0.clamp_min(0), torch.zeros_like(b))
    passive = x > 0
    scale = b.abs().amax(-1).clamp_min(1e-300) * tol
    _inner_loop(G, b, x, passive, passive.any(-1).nonzero(as_tuple=True)[0], 3 * k + 3)
    blocked = torch.zeros_like(passive)
    for _ in range(max_iter or 3 * k + 10):
        w = _gradient(G, b, x)
        cand = allowed & ~passive & ~blocked & (w > scale.unsqueeze(-1))
        rows = cand.any(-1).nonzero(as_tuple=True)[0]
        if len(rows) == 0:
            break
        j = torch.where(cand[rows], w[rows], torch.full_like(w[rows], -float("inf"))).argmax(-1)
        added = torch.nn.functional.one_hot(j, k).bool()
        trial = passive[rows] | added
        z = _masked_solve(G[rows], b[rows], trial)
        # A coordinate whose own LS value is not positive cannot enter (classic LH cycling guard).
        refused = (z * added).sum(-1) <= 0
        blocked[rows] = (blocked[rows] & refused.unsqueeze(-1)) | (added & refused.unsqueeze(-1))
        go = rows[~refused]
        passive[go] = trial[~refused]
        _inner_loop(G, b, x, passive, go, 3 * k + 3)
    return x


def nnls(
    W: torch.Tensor, V: torch.Tensor, allowed: torch.Tensor | None = None, tol: float = 1e-10
) -> torch.Tensor:
    """Exposures X (n × k) minimising ||V[i] - W X[i]|| with X >= 0, for all rows of V (n × c) at once."""
    W = W.to(torch.float64)
    V = V.to(device=W.device, dtype=torch.float64)
    return nnls_gram(W.T @ W, V @ W, allowed=allowed, tol=tol)


def objective(W: torch.Tensor, V: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Per-row residual norm ||V[i] - W X[i]|| (the quantity scipy.optimize.nnls reports)."""
    return torch.linalg.vector_norm(V - X @ W.T, dim=-1)
