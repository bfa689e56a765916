"""Sparse signature selection: batched forward/backward stepwise NNLS (SigProfilerAssignment-like).

Starting from the permanent signatures (SBS1/SBS5 by default), each round tries every absent
signature for every sample, adds the one that lowers the relative L2 error ||v - Wx|| / ||v|| most
if it lowers it by more than `add_penalty`, then removes signatures whose removal raises that error
by less than `remove_penalty`. All candidate fits of all samples are one batched NNLS call.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nanog1.fitting.nnls import nnls_gram


@dataclass(frozen=True)
class SelectionConfig:
    """Penalties are differences in relative L2 error (SigProfilerAssignment defaults 0.05 / 0.01)."""

    add_penalty: float = 0.05
    remove_penalty: float = 0.01
    permanent: tuple[int, ...] = ()
    max_signatures: int | None = None
    chunk: int = 32768


def _compact(support: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column indices of each row's support, padded to the widest row, and the validity mask."""
    k = max(int(support.sum(-1).max()), 1)
    order = torch.argsort((~support).to(torch.int8), dim=-1, stable=True)[:, :k]
    valid = support.gather(1, order)
    return order, valid


def fit_supports(G: torch.Tensor, b: torch.Tensor, support: torch.Tensor, x0: torch.Tensor | None = None):
    """NNLS of each row restricted to its support (rows × K bool); returns full-width exposures."""
    idx, valid = _compact(support)
    Gs = G[idx.unsqueeze(-1), idx.unsqueeze(-2)]
    bs = b.gather(1, idx)
    xs0 = None if x0 is None else x0.gather(1, idx) * valid
    xs = nnls_gram(Gs, bs, allowed=valid, x0=xs0)
    out = torch.zeros_like(b)
    return out.scatter_add(1, idx, xs * valid)


def relative_error(G: torch.Tensor, b: torch.Tensor, vv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """||v - Wx|| / ||v|| per row, from the Gram form (vv = ||v||²)."""
    quad = ((x @ G) * x).sum(-1)
    sq = (vv - 2 * (b * x).sum(-1) + quad).clamp_min(0)
    return sq.sqrt() / vv.sqrt().clamp_min(1e-300)


def _pair_supports(support: torch.Tensor, pair_row: torch.Tensor, pair_col: torch.Tensor, add: bool):
    """Compact (indices, validity) of each pair's support: the row's support plus or minus one column."""
    base_idx, base_valid = _compact(support)
    idx, valid = base_idx[pair_row], base_valid[pair_row]
    if add:
        idx = torch.cat([idx, pair_col.unsqueeze(-1)], dim=-1)
        valid = torch.cat([valid, torch.ones_like(valid[:, :1])], dim=-1)
    else:
        valid = valid & (idx != pair_col.unsqueeze(-1))
    return idx, valid


def _pair_errors(G, b, vv, x, pair_row, idx, valid) -> torch.Tensor:
    """Relative error of each pair's NNLS fit, solved in the compact support space (warm-started)."""
    Gs = G[idx.unsqueeze(-1), idx.unsqueeze(-2)]
    bs = b[pair_row].gather(1, idx)
    x0 = x[pair_row].gather(1, idx) * valid
    xs = nnls_gram(Gs, bs, allowed=valid, x0=x0)
    quad = ((xs.unsqueeze(-2) @ Gs).squeeze(-2) * xs).sum(-1)
    sq = (vv[pair_row] - 2 * (bs * xs).sum(-1) + quad).clamp_min(0)
    return sq.sqrt() / vv[pair_row].sqrt().clamp_min(1e-300)


def _best_change(G, b, vv, support, x, toggles, add: bool, chunk: int):
    """For each row, the toggle (add or drop one signature) with the lowest error: (error, column)."""
    pair_row, pair_col = toggles.nonzero(as_tuple=True)
    n, k = support.shape
    table = torch.full((n, k), float("inf"), dtype=b.dtype, device=b.device)
    for s in range(0, len(pair_row), chunk):
        r, c = pair_row[s : s + chunk], pair_col[s : s + chunk]
        idx, valid = _pair_supports(support, r, c, add)
        table[r, c] = _pair_errors(G, b, vv, x, r, idx, valid)
    best_err, best_col = table.min(-1)
    return best_err, torch.where(torch.isfinite(best_err), best_col, torch.full_like(best_col, -1))


def _backward(G, b, vv, support, x, err, fixed, cfg: SelectionConfig, rows: torch.Tensor):
    """Remove, one at a time, signatures whose removal costs less than remove_penalty."""
    while bool(rows.any()):
        toggles = support & ~fixed & rows.unsqueeze(-1) & (support.sum(-1, keepdim=True) > 1)
        new_err, col = _best_change(G, b, vv, support, x, toggles, False, cfg.chunk)
        drop = (col >= 0) & (new_err - err < cfg.remove_penalty)
        if not bool(drop.any()):
            break
        r = drop.nonzero(as_tuple=True)[0]
        support[r, col[r]] = False
        x[r] = fit_supports(G, b[r], support[r], x[r] * support[r])
        err[r] = relative_error(G, b[r], vv[r], x[r])
        rows = drop
    return support, x, err


def select_signatures(
    W: torch.Tensor,
    V: torch.Tensor,
    cfg: SelectionConfig | None = None,
    candidates: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sparse exposures X (n × k) for catalogues V (n × c) and signatures W (c × k).

    `candidates` (n × k bool) limits which signatures each row may add (permanent ones always enter).
    """
    cfg = cfg or SelectionConfig()
    W = W.to(torch.float64)
    V = V.to(device=W.device, dtype=torch.float64)
    G, b, vv = W.T @ W, V @ W, (V * V).sum(-1)
    n, k = b.shape
    fixed = torch.zeros(n, k, dtype=torch.bool, device=W.device)
    fixed[:, list(cfg.permanent)] = True
    support = fixed.clone()
    x = fit_supports(G, b, support) if cfg.permanent else torch.zeros_like(b)
    err = relative_error(G, b, vv, x)
    active = vv > 0
    limit = cfg.max_signatures or k
    for _ in range(k):
        grad = b - x @ G
        toggles = ~support & (grad > 0) & active.unsqueeze(-1) & (support.sum(-1, keepdim=True) < limit)
        if candidates is not None:
            toggles &= candidates.to(toggles.device)
        new_err, col = _best_change(G, b, vv, support, x, toggles, True, cfg.chunk)
        add = (col >= 0) & ((err - new_err > cfg.add_penalty) | ~support.any(-1))
        if not bool(add.any()):
            break
        r = add.nonzero(as_tuple=True)[0]
        support[r, col[r]] = True
        x[r] = fit_supports(G, b[r], support[r], x[r])
        err[r] = relative_error(G, b[r], vv[r], x[r])
        support, x, err = _backward(G, b, vv, support, x, err, fixed, cfg, add.clone())
        active = add
    return x
