"""Plain reference implementations of the core mixers and block, for the core tests.

One sample at a time ([L, H]), one head at a time, explicit softmax: written from the issue's
definitions, sharing no code with nanog1.core beyond reading the modules' parameters.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from nanog1.core import MHA, SAVO, Block, NonlinearQuery, QCompass


def linear(x: Tensor, layer: nn.Linear) -> Tensor:
    y = x @ layer.weight.T
    return y if layer.bias is None else y + layer.bias


def gelu(u: Tensor) -> Tensor:
    return 0.5 * u * (1.0 + torch.erf(u / math.sqrt(2.0)))


def layer_norm(z: Tensor, weight: Tensor, bias: Tensor | None, eps: float = 1e-5) -> Tensor:
    mean = z.mean(-1, keepdim=True)
    var = ((z - mean) ** 2).mean(-1, keepdim=True)
    out = (z - mean) / torch.sqrt(var + eps) * weight
    return out if bias is None else out + bias


def rms_norm(z: Tensor, weight: Tensor, eps: float = 1e-5) -> Tensor:
    return z / torch.sqrt((z * z).mean(-1, keepdim=True) + eps) * weight


def query(x: Tensor, proj: nn.Module) -> Tensor:
    """Linear query, or the nonlinear residual anchor(x) + LN(W2·GELU(W1·RMSNorm(x)))."""
    if isinstance(proj, nn.Linear):
        return linear(x, proj)
    assert isinstance(proj, NonlinearQuery)
    f = linear(gelu(linear(rms_norm(x, proj.norm_in.weight), proj.down)), proj.up)
    f = layer_norm(f, proj.norm_out.weight, None)
    base = x if proj.anchor is None else linear(x, proj.anchor)
    return base + f


def attend(q: Tensor, k: Tensor, v: Tensor, causal: bool) -> tuple[Tensor, Tensor]:
    """One head: softmax(q·kᵀ/√d_q [causal])·v and the weights."""
    logits = q @ k.T / math.sqrt(q.shape[-1])
    if causal:
        future = torch.ones_like(logits, dtype=torch.bool).triu(1)
        logits = logits.masked_fill(future, float("-inf"))
    weights = torch.softmax(logits, dim=-1)
    return weights @ v, weights


def _qkv(m: nn.Module, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    if isinstance(m, QCompass):
        return query(x, m.state_proj), linear(x, m.action_proj), x
    if isinstance(m, SAVO):
        s, a = query(x, m.state_proj), linear(x, m.action_proj)
        return s, a, linear(s * a, m.content_proj)
    assert isinstance(m, MHA)
    return query(x, m.q_proj), linear(x, m.k_proj), linear(x, m.v_proj)


def mixer(m: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """Reference mixer on one unpadded sample x [L, H] -> ([L, H], weights [h, L, L])."""
    q, k, v = _qkv(m, x)
    h = m.heads
    dq, dv = q.shape[-1] // h, v.shape[-1] // h
    outs, weights = [], []
    for i in range(h):
        head_q, head_v = slice(i * dq, (i + 1) * dq), slice(i * dv, (i + 1) * dv)
        o, w = attend(q[:, head_q], k[:, head_q], v[:, head_v], m.causal)
        outs.append(o)
        weights.append(w)
    return linear(torch.cat(outs, dim=-1), m.out_proj), torch.stack(weights)


def block(b: Block, x: Tensor) -> Tensor:
    """Reference pre-norm block (LayerNorm, no dropout) on one sample x [L, H]."""
    y = x + mixer(b.mixer, layer_norm(x, b.norm_mix.weight, b.norm_mix.bias))[0]
    first, last = b.ffn[0], b.ffn[3]
    hidden = gelu(linear(layer_norm(y, b.norm_ffn.weight, b.norm_ffn.bias), first))
    return y + linear(hidden, last)
