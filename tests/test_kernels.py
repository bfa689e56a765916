"""Rank-r routing kernels: reference semantics on CPU, Triton kernels against float64 on the GPU."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from interpreter import run_in_interpreter
from seeds import stable_seed

from nanog1.core.kernels import (
    decode_reference,
    kernel_available,
    reference_attention,
    routing_attention,
    routing_decode,
)
from nanog1.core.routing import route, route_step

ROOT = Path(__file__).resolve().parents[1]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def padding(kind: str | None, batch: int, length: int, device="cpu") -> torch.Tensor | None:
    """None, right/left padding of 0 and 7 tokens, or random padding with a fully hidden prefix in row 0."""
    if kind is None:
        return None
    if kind == "rand":
        mask = torch.rand(batch, length, device=device) < 0.3
        mask[0, :4] = True
        return mask
    pos = torch.arange(length, device=device)[None]
    mask = pos >= torch.tensor([length] + [length - 7] * (batch - 1), device=device)[:, None]
    return mask.flip(1) if kind == "left" else mask


def kernel_outputs(q, k, v, mask, causal, g=None):
    """((out, dq, dk, dv), g) of routing_attention at scale 8^-1/2; g (upstream gradient) random if None."""
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    out = routing_attention(*leaves, causal=causal, key_padding_mask=mask, scale=8 ** -0.5)
    g = torch.randn_like(out) if g is None else g
    return (out, *torch.autograd.grad(out, leaves, g)), g


def float64_reference(q, k, v, mask, causal, g):
    """(out, dq, dk, dv) of reference_attention in float64, the same function as kernel_outputs."""
    refs = [t.double().requires_grad_() for t in (q, k, v)]
    ref = reference_attention(*refs, causal=causal, key_padding_mask=mask, scale=8 ** -0.5)
    return (ref, *torch.autograd.grad(ref, refs, g.double()))


def naive(q, k, v, causal, mask, scale):
    """Row-by-row softmax over the visible keys in float64; rows with none are zero."""
    b, h, length, _ = q.shape
    out = torch.zeros(b, h, length, v.shape[-1], dtype=torch.float64)
    for bi in range(b):
        for hi in range(h):
            vh = v[bi, hi if v.shape[1] > 1 else 0].double()
            for i in range(length):
                keys = torch.arange(length if not causal else i + 1)
                if mask is not None:
                    keys = keys[~mask[bi, keys]]
                if len(keys):
                    w = torch.softmax(k[bi, hi, keys].double() @ q[bi, hi, i].double() * scale, 0)
                    out[bi, hi, i] = w @ vh[keys]
    return out


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("pad", [None, "right", "left", "rand"])
@pytest.mark.parametrize("v_heads", [1, 3])
def test_reference_matches_row_by_row_softmax(causal, pad, v_heads):
    torch.manual_seed(stable_seed(causal, pad, v_heads))
    q, k = torch.randn(2, 3, 11, 4), torch.randn(2, 3, 11, 4)
    v = torch.randn(2, v_heads, 11, 6)
    mask = padding(pad, 2, 11)
    out = reference_attention(q, k, v, causal=causal, key_padding_mask=mask, scale=0.7)
    assert rel(out, naive(q, k, v, causal, mask, 0.7)) < 1e-6


@pytest.mark.parametrize("causal,pad", [(True, None), (True, "right"), (False, None), (False, "rand")])
def test_reference_matches_core_route_on_real_rows(causal, pad):
    torch.manual_seed(1)
    q, k, v = torch.randn(2, 4, 16, 8), torch.randn(2, 4, 16, 8), torch.randn(2, 1, 16, 32)
    mask = padding(pad, 2, 16)
    if pad == "rand":
        mask[0, :4] = False  # route() lets an all-padded row read everything; keep every row non-empty
    ours = reference_attention(q, k, v, causal=causal, key_padding_mask=mask, scale=0.35)
    core = route(q, k, v, scale=0.35, causal=causal, padding_mask=mask)
    real = slice(None) if mask is None else ~mask[:, None, :, None].expand_as(ours)
    assert rel(ours[real], core[real]) < 1e-5


def test_cpu_dispatch_uses_reference_and_is_differentiable():
    torch.manual_seed(2)
    q, k = torch.randn(1, 2, 9, 3, dtype=torch.float64), torch.randn(1, 2, 9, 3, dtype=torch.float64)
    v = torch.randn(1, 1, 9, 5, dtype=torch.float64)
    mask = padding("rand", 1, 9)
    assert not kernel_available(q, k, v)
    leaves = [t.requires_grad_() for t in (q, k, v)]
    assert torch.autograd.gradcheck(
        lambda a, b, c: routing_attention(a, b, c, causal=True, key_padding_mask=mask, scale=0.5), leaves)


@pytest.mark.parametrize("v_heads", [1, 4])
def test_decode_reference_matches_row_by_row(v_heads):
    torch.manual_seed(3)
    b, h, cap = 3, 4, 20
    q_t, k_cache = torch.randn(b, h, 2), torch.randn(b, h, cap, 2)
    v_cache = torch.randn(b, v_heads, cap, 8)
    lengths = torch.tensor([20, 6, 0])
    out = routing_decode(q_t, k_cache, v_cache, lengths, 0.9)
    for bi, n in enumerate(lengths.tolist()):
        for hi in range(h):
            expect = torch.zeros(8, dtype=torch.float64)
            if n:
                w = torch.softmax(k_cache[bi, hi, :n].double() @ q_t[bi, hi].double() * 0.9, 0)
                expect = w @ v_cache[bi, hi if v_heads > 1 else 0, :n].double()
            assert rel(out[bi, hi], expect) < 1e-5 or (n == 0 and out[bi, hi].abs().max() == 0)


def test_decode_equals_core_route_step_over_full_cache():
    torch.manual_seed(4)
    q_t, k_cache, v_cache = torch.randn(2, 8, 8), torch.randn(2, 8, 33, 8), torch.randn(2, 1, 33, 64)
    core = route_step(q_t[:, :, None], k_cache, v_cache, scale=8 ** -0.5)[:, :, 0]
    assert rel(routing_decode(q_t, k_cache, v_cache, None, 8 ** -0.5), core) < 1e-5


_INTERPRET_SCRIPT = """
import torch
import nanog1.core.kernels.routing_triton as rt
from nanog1.core.kernels.decode_triton import routing_decode_triton
from nanog1.core.kernels import decode_reference, reference_attention
torch.manual_seed(0)
worst = {"fp32": 0.0, "polyall": 0.0}
empty_rows_zero = True
for mode in worst:  # the exponentials on the exponential unit, then all by the polynomial (no PTX here)
    rt.EXP = rt.FWD_EXP = rt.EXP_MODES[mode]
    for atomic in (True, False):
        rt.ATOMIC_DQ = atomic
        for causal, pad in ((True, "rand"), (False, "right")):
            q, k = torch.randn(2, 2, 70, 8), torch.randn(2, 2, 70, 8)
            v = torch.randn(2, 1, 70, 16)
            mask = torch.arange(70)[None] >= torch.tensor([[70], [57]])
            if pad == "rand":
                mask = torch.rand(2, 70) < 0.3
            mask[0, :5] = pad == "rand"  # causal: row 0's first five queries see no key
            leaves = [t.clone().requires_grad_() for t in (q, k, v)]
            refs = [t.clone().requires_grad_() for t in (q, k, v)]
            out = rt.routing_attention_triton(*leaves, causal, mask, 0.35)
            ref = reference_attention(*refs, causal=causal, key_padding_mask=mask, scale=0.35)
            g = torch.randn_like(ref)
            grads = zip(torch.autograd.grad(out, leaves, g), torch.autograd.grad(ref, refs, g))
            pairs = [(out, ref), *grads]
            worst[mode] = max([worst[mode]] + [((a - b).norm() / b.norm()).item() for a, b in pairs])
            if causal:
                empty_rows_zero = empty_rows_zero and bool(out[0, :, :5].eq(0).all())
rt.EXP = rt.FWD_EXP = rt.EXP_MODES["fp32"]
print("POLY", worst["polyall"], "EMPTY", empty_rows_zero)
worst = worst["fp32"]
token_major = into_ok = True
for atomic, causal in ((True, True), (False, True), (True, False), (False, False)):
    # the one-node block's entry points: token-major views of packed projections, gradients token-major too
    rt.ATOMIC_DQ = atomic
    sa, c = torch.randn(2, 70, 2, 2, 8), torch.randn(2, 70, 2, 16)
    q, k, v = sa[:, :, 0].transpose(1, 2), sa[:, :, 1].transpose(1, 2), c.transpose(1, 2)
    out, lse = rt.attention_forward(q, k, v, causal, 0.35)
    g = torch.randn(2, 70, 2, 16).transpose(1, 2)
    grads = rt.attention_backward(g, q, k, v, out, lse, causal, 0.35)
    kept = (out, *grads[1:]) if atomic else (out, *grads)  # atomics leave dQ head-major
    token_major = token_major and all(t.stride(1) < t.stride(2) for t in kept)
    dqk = torch.full((2, 70, 2, 2, 8), float("nan"))  # the block's stacked gradient, written in place
    into = tuple(t.transpose(1, 2) for t in dqk.unbind(2))
    got = rt.attention_backward(g, q, k, v, out, lse, causal, 0.35, into=into)
    into_ok = into_ok and got[0].data_ptr() == into[0].data_ptr() and got[1].data_ptr() == into[1].data_ptr()
    into_ok = into_ok and all(torch.allclose(a, b, atol=1e-6) for a, b in zip(into, grads[:2]))
    refs = [t.clone().requires_grad_() for t in (q, k, v)]
    ref = reference_attention(*refs, causal=causal, key_padding_mask=None, scale=0.35)
    pairs = [(out, ref), *zip(grads, torch.autograd.grad(ref, refs, g))]
    worst = max([worst] + [((a - b).norm() / b.norm()).item() for a, b in pairs])
q, kc, vc = torch.randn(3, 8, 8), torch.randn(3, 8, 300, 8), torch.randn(3, 1, 300, 32)
lengths = torch.tensor([300, 77, 0])
a, b = routing_decode_triton(q, kc, vc, lengths, 0.35), decode_reference(q, kc, vc, lengths, 0.35)
worst = max(worst, ((a - b).norm() / b.norm()).item())
print("TOKEN_MAJOR", token_major, "INTO", into_ok)
print("WORST", worst)
"""


_DECODE_LAYOUT_SCRIPT = """
import torch
from nanog1.core.kernels.decode_triton import routing_decode_triton
from nanog1.core.kernels import decode_reference
torch.manual_seed(0)
worst = 0.0
for heads, d, cap, lens in ((8, 8, 300, [300, 77, 0]), (2, 4, 200, [130, 64, 1]), (3, 8, 129, [129, 128, 5])):
    q = torch.randn(3, heads, d)
    for token_major in (False, True):
        kc = torch.randn(3, cap, heads, d).transpose(1, 2) if token_major else torch.randn(3, heads, cap, d)
        vc = torch.randn(3, 1, cap, 32)
        lengths = torch.tensor(lens)
        a, b = routing_decode_triton(q, kc, vc, lengths, 0.35), decode_reference(q, kc, vc, lengths, 0.35)
        worst = max(worst, ((a - b).norm() / b.norm()).item())
print("WORST", worst)
"""


def test_decode_kernel_layouts_in_interpreter():
    """The split decode kernel in Triton's CPU interpreter (float32) against the reference: head-major and
    token-major key caches (SAVO's CUDA layout), unmasked interior blocks and a masked last block, lengths
    0 / 1 / a block multiple, and heads·d_qk narrower than the block (columns read again, weighted 0)."""
    assert float(run_in_interpreter(_DECODE_LAYOUT_SCRIPT).split("WORST")[-1]) < 1e-5


@pytest.mark.slow
def test_triton_kernels_in_interpreter_mode():
    """Both Triton kernels in Triton's CPU interpreter (float32), where triton is installed, with the
    exponentials on the exponential unit and by the polynomial; the block's entry points return their
    gradients in the inputs' token-major layout (dQ too where its own pass writes it) or write dQ, dK
    straight into the caller's stacked gradient (both dQ forms)."""
    out = run_in_interpreter(_INTERPRET_SCRIPT)
    assert float(out.split("WORST")[-1]) < 1e-4
    assert "TOKEN_MAJOR True INTO True" in out
    # every exponential by the polynomial (NANOG1_ROUTING_EXP/_FWD_EXP=polyall): its error, not more, and
    # rows that see no key still zeros (a -inf score is exactly 0)
    poly, empty = out.split("POLY")[-1].split("EMPTY")
    assert float(poly) < 5e-4 and empty.split()[0] == "True"


_TMA_SCRIPT = """
import itertools, torch
import nanog1.core.kernels.routing_triton as rt
from nanog1.core.kernels import reference_attention
torch.manual_seed(0)
worst, legal = 0.0, True
for atomic, causal, pad, token_major in itertools.product((True, False), (True, False), (None, "rand"),
                                                       (False, True)):
    rt.ATOMIC_DQ = atomic
    if token_major:  # the block's layout: q, k views of one packed projection, rows 2·2·8 wide
        sa = torch.randn(2, 70, 2, 2, 8)
        q, k = sa[:, :, 0].transpose(1, 2), sa[:, :, 1].transpose(1, 2)
    else:
        q, k = torch.randn(2, 2, 70, 8), torch.randn(2, 2, 70, 8)
    v = torch.randn(2, 1, 70, 16)
    mask = None if pad is None else torch.rand(2, 70) < 0.3
    legal = legal and rt._tma_ok(q, k, v)
    for tma in (True, False):
        rt.TMA = tma
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        out = rt.routing_attention_triton(*leaves, causal, mask, 0.35)
        g = torch.randn_like(out) if tma else g
        got = [out, *torch.autograd.grad(out, leaves, g)]
        if tma:
            with_tma = got
    refs = [t.clone().requires_grad_() for t in (q, k, v)]
    ref = reference_attention(*refs, causal=causal, key_padding_mask=mask, scale=0.35)
    want = [ref, *torch.autograd.grad(ref, refs, g)]
    worst = max([worst] + [((a - b).norm() / b.norm()).item() for a, b in zip(with_tma, want)])
print("LEGAL", legal, "ILLEGAL", rt._tma_ok(torch.randn(2, 2, 70, 9)[..., :8]))
print("WORST", worst)


class OnGpu:  # a CPU tensor that says it lives on a CUDA device (the auto rule's inputs only)
    is_cuda, device = True, torch.device("cpu")

    def __init__(self, t):
        self.t = t

    def __getattr__(self, name):
        return getattr(self.t, name)


t, rt.TMA = OnGpu(torch.randn(1, 2, 64, 8)), None
rt._capability = lambda index: (9, 0)
auto = [rt._tma(4096, t), rt._tma(8192, t)]
rt._capability = lambda index: (8, 0)
auto.append(rt._tma(32768, t))
print("AUTO", auto)
"""


def test_tma_loads_match_float64_in_interpreter():
    """The interior loops' tiles loaded through TMA descriptors (NANOG1_ROUTING_TMA=1) in Triton's CPU
    interpreter (float32) against the float64 reference: causal and bidirectional, no and random key padding,
    both dQ forms, head-major and token-major (the block's packed projection) q/k; q/k are 8 wide, so the
    16-wide descriptor box reads zeros past them. A row stride TMA cannot take (9 floats) is refused."""
    out = run_in_interpreter(_TMA_SCRIPT)
    assert "LEGAL True ILLEGAL False" in out
    # auto (the default): on sm_90 from TMA_MIN_LEN rows, not below it, not before sm_90
    assert "AUTO [False, True, False]" in out
    assert float(out.split("WORST")[-1].split()[0]) < 1e-4


def test_polynomial_exponential_matches_exp2_on_cpu():
    """The FMA-pipe 2^x (nanog1.core.kernels.exp2_poly, emulated in torch step by step): within its stated
    relative error over every exponent a softmax meets, exactly 0 below -126 and at -inf (masked scores)."""
    from nanog1.core.kernels import exp2_poly

    x = torch.linspace(-125.0, 1.0, 1_000_003)
    got, want = exp2_poly.exp2_poly_torch(x).double(), torch.exp2(x.double())
    assert float(((got - want).abs() / want).max()) <= exp2_poly.MAX_REL_ERROR
    low = torch.tensor([float("-inf"), -1e30, -126.5, -127.0])
    assert exp2_poly.exp2_poly_torch(low).eq(0).all()
    smallest = torch.tensor([-126.0, -125.7])  # the smallest normals: still 2^x within 2e-4
    want = torch.exp2(smallest.double())
    assert torch.allclose(exp2_poly.exp2_poly_torch(smallest).double(), want, rtol=2e-4, atol=0)


def test_polynomial_exponential_ptx_splits_the_pack():
    """The inline PTX: ``pack - 1`` elements on the exponential unit, the last by the polynomial whose
    immediates are exactly the float32 coefficients; one output and one input register per element."""
    import struct

    from nanog1.core.kernels import exp2_poly

    for pack in (2, 4):
        text = exp2_poly.ptx(pack)
        assert text.count("ex2.approx.ftz.f32") == pack - 1
        assert f"selp.b32 ${pack - 1}, 0, b, under;" in text and f"${2 * pack - 1}, " in text
        assert exp2_poly.constraints(pack).split(",") == ["=r"] * pack + ["r"] * pack
        imms = {struct.unpack("<f", bytes.fromhex(h)[::-1])[0] for h in
                (w[2:10] for w in text.replace(",", " ").replace(";", " ").split() if w.startswith("0f"))}
        assert {float(torch.tensor(c, dtype=torch.float32)) for c in exp2_poly.COEFFS} <= imms
    with pytest.raises(ValueError):
        exp2_poly.ptx(1)


@pytest.mark.gpu
@pytest.mark.parametrize("atomic", [True, False])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("pad", [None, "right", "left", "rand"])
@pytest.mark.parametrize("v_heads", [1, 8])
def test_kernel_matches_float64_reference(atomic, causal, pad, v_heads, monkeypatch):
    import nanog1.core.kernels.routing_triton as rt

    monkeypatch.setattr(rt, "ATOMIC_DQ", atomic)
    torch.manual_seed(stable_seed(atomic, causal, pad, v_heads))
    dev, dt = "cuda", torch.bfloat16
    q, k = torch.randn(2, 8, 300, 8, device=dev, dtype=dt), torch.randn(2, 8, 300, 8, device=dev, dtype=dt)
    v = torch.randn(2, v_heads, 300, 64, device=dev, dtype=dt)
    mask = padding(pad, 2, 300, dev)
    assert kernel_available(q, k, v)
    outputs, g = kernel_outputs(q, k, v, mask, causal)
    for got, want in zip(outputs, float64_reference(q, k, v, mask, causal, g), strict=True):
        assert got.shape == want.shape and bool(got.isfinite().all())
        assert rel(got, want) < 2e-2


@pytest.mark.gpu
@pytest.mark.parametrize("causal", [True, False])
def test_every_tile_candidate_matches_float64(causal, monkeypatch):
    """Each configuration the autotuners may pick, pinned alone: forward/dQ tiles and dK/dV tiles (with
    dQ by atomics and by its own pass), random padding, SAVO's shared v, against float64."""
    import nanog1.core.kernels.routing_triton as rt

    torch.manual_seed(stable_seed(causal))
    dev, dt = "cuda", torch.bfloat16
    q, k = (torch.randn(2, 8, 1000, 8, device=dev, dtype=dt) for _ in range(2))
    v = torch.randn(2, 1, 1000, 64, device=dev, dtype=dt)
    mask = padding("rand", 2, 1000, dev)
    g = torch.randn(2, 8, 1000, 64, device=dev, dtype=dt)
    want = float64_reference(q, k, v, mask, causal, g)
    cands = (rt.FWD_CANDIDATES, rt.DQ_CANDIDATES, rt.BWD_CANDIDATES)
    for i, atomic in itertools.product(range(max(map(len, cands))), (True, False)):
        for kernel, cfgs in zip((rt._fwd_kernel, rt._dq_kernel, rt._bwd_kernel), cands, strict=True):
            monkeypatch.setattr(kernel, "configs", [cfgs[i % len(cfgs)]])
        for launch in (rt._FWD, rt._DQ, rt._BWD):
            launch.cache.clear()
        monkeypatch.setattr(rt, "ATOMIC_DQ", atomic)
        got = kernel_outputs(q, k, v, mask, causal, g)[0]
        errs = [rel(a, b) for a, b in zip(got, want, strict=True)]
        assert max(errs) < 2e-2, (i, atomic, errs)


@pytest.mark.gpu
def test_decode_kernel_matches_float64_reference():
    torch.manual_seed(5)
    dev, dt = "cuda", torch.bfloat16
    q_t = torch.randn(5, 8, 8, device=dev, dtype=dt)
    k_cache = torch.randn(5, 8, 5000, 8, device=dev, dtype=dt)
    v_cache = torch.randn(5, 1, 5000, 64, device=dev, dtype=dt)
    lengths = torch.tensor([5000, 4097, 1, 0, 2500], device=dev)
    out = routing_decode(q_t, k_cache, v_cache, lengths, 0.35)
    ref = decode_reference(q_t.double(), k_cache.double(), v_cache.double(), lengths, 0.35)
    assert bool(out.isfinite().all()) and bool((out[3] == 0).all())
    assert rel(out, ref) < 1e-2


@pytest.mark.gpu
@pytest.mark.parametrize("length,causal,pad,v_heads", [(300, True, "rand", 1), (301, False, "right", 8),
                                                       (64, True, None, 8), (4100, True, "left", 1)])
def test_cached_launch_equals_triton_dispatch(length, causal, pad, v_heads, monkeypatch):
    """Repeat launches skip Triton's dispatch (cache hits) and compute what Triton's own path computes.

    L = 4100 runs the dQ-by-atomics backward, the shorter ones the default two-pass backward.
    """
    import nanog1.core.kernels.routing_triton as rt

    torch.manual_seed(length)
    dev, dt = "cuda", torch.bfloat16
    q, k = (torch.randn(3, 8, length, 8, device=dev, dtype=dt) for _ in range(2))
    v = torch.randn(3, v_heads, length, 64, device=dev, dtype=dt)
    mask = padding(pad, 3, length, dev)
    g = torch.randn(3, 8, length, 64, device=dev, dtype=dt)

    def run():
        return kernel_outputs(q, k, v, mask, causal, g)[0]

    monkeypatch.setattr(rt, "ATOMIC_DQ", length > 4096)
    run()  # first call per shape: Triton's path, then cached
    second_pass = rt._DELTA if rt.ATOMIC_DQ else rt._DQ
    hits = (rt._FWD.hits, rt._BWD.hits, second_pass.hits)
    cached = run()
    assert (rt._FWD.hits, rt._BWD.hits, second_pass.hits) == (hits[0] + 1, hits[1] + 1, hits[2] + 1)
    monkeypatch.setenv("NANOG1_TRITON_FAST_LAUNCH", "0")
    plain = run()
    assert rt._FWD.hits == hits[0] + 1
    out_c, dq_c, dk_c, dv_c = cached
    out_p, dq_p, dk_p, dv_p = plain
    assert torch.equal(out_c, out_p) and torch.equal(dk_c, dk_p) and torch.equal(dv_c, dv_p)
    assert rel(dq_c, dq_p) < 1e-3  # dQ is summed with fp32 atomics, whose order may differ
    for got, want in zip(cached, float64_reference(q, k, v, mask, causal, g), strict=True):
        assert rel(got, want) < 2e-2


@pytest.mark.gpu
@pytest.mark.parametrize("atomic", [True, False])
@pytest.mark.parametrize("mode", ["bf16x2", "poly", "poly2", "polyall"])
def test_backward_with_other_exponentials_matches_float64(atomic, mode, monkeypatch):
    """The opt-in exponential modes (packed bf16x2 on sm_90+ in the backward; the polynomial on part or all
    of the elements, forward and backward) keep outputs and gradients within bf16 tolerance."""
    import nanog1.core.kernels.routing_triton as rt

    if mode == "bf16x2" and torch.cuda.get_device_capability() < (9, 0):
        pytest.skip("ex2.approx.bf16x2 needs sm_90")
    monkeypatch.setattr(rt, "EXP", rt.EXP_MODES[mode])
    monkeypatch.setattr(rt, "FWD_EXP", rt.EXP_MODES[mode if mode != "bf16x2" else "fp32"])
    monkeypatch.setattr(rt, "ATOMIC_DQ", atomic)
    torch.manual_seed(11)
    dev, dt = "cuda", torch.bfloat16
    q, k = (torch.randn(2, 8, 700, 8, device=dev, dtype=dt) for _ in range(2))
    v = torch.randn(2, 1, 700, 64, device=dev, dtype=dt)
    mask = padding("rand", 2, 700, dev)
    outputs, g = kernel_outputs(q, k, v, mask, True)
    for got, want in zip(outputs, float64_reference(q, k, v, mask, True, g), strict=True):
        assert bool(got.isfinite().all()) and rel(got, want) < 2e-2
    assert bool(outputs[0][0, :, :4].eq(0).all())  # the fully hidden prefix sees no key: zeros


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["poly", "poly2", "polyall"])
def test_polynomial_exponential_on_gpu_matches_emulation(mode):
    """The kernels' 2^x in each polynomial mode, on a vector through the same jit helper: every element
    within the polynomial's error of 2^x, the polynomial's elements as the torch emulation computes them
    (to 2 ulp: FMA against separate multiply-add), 0 below -126 and at -inf; and the polynomial is used."""
    from exp2_probe import exp2_by_mode

    from nanog1.core.kernels import exp2_poly

    n = 1 << 14
    x = torch.empty(n, device="cuda").uniform_(-125.0, 0.5)
    x[:4] = torch.tensor([float("-inf"), -1e30, -126.5, -130.0])
    y = exp2_by_mode(x, mode)
    want = torch.exp2(x.double())
    assert y[:4].eq(0).all()
    err = ((y[4:].double() - want[4:]).abs() / want[4:])
    assert float(err.max()) <= exp2_poly.MAX_REL_ERROR
    emulated = exp2_poly.exp2_poly_torch(x)
    ulp2 = 2 * torch.finfo(torch.float32).eps * y.abs()
    poly = (y == emulated) | ((y.double() - emulated.double()).abs() <= ulp2)
    share = float(poly[4:].float().mean())
    assert share >= {"poly": 0.25, "poly2": 0.5, "polyall": 1.0}[mode] - 0.01
    assert float((err > 1e-6).float().mean()) > 0.1  # the polynomial's error shows: not all on the ex2 unit


@pytest.mark.gpu
@pytest.mark.parametrize("length,causal", [(8192, True), (8191, True), (2048, False), (2047, False)])
def test_default_backward_picks_dq_pass_by_length(length, causal, monkeypatch):
    """By default dQ comes by fp32 atomics (a δ launch) from L = 8192 on causally, from 2048 bidirectionally,
    and from its own pass below."""
    import nanog1.core.kernels.routing_triton as rt

    monkeypatch.setattr(rt, "ATOMIC_DQ", None)
    torch.manual_seed(length)
    dev, dt = "cuda", torch.bfloat16
    q, k = (torch.randn(2, 2, length, 8, device=dev, dtype=dt) for _ in range(2))
    v = torch.randn(2, 1, length, 64, device=dev, dtype=dt)
    mask = padding("right", 2, length, dev)
    launches = (len(rt._DELTA.cache) + rt._DELTA.hits, len(rt._DQ.cache) + rt._DQ.hits)
    outputs, g = kernel_outputs(q, k, v, mask, causal)
    atomic = length >= (rt.ATOMIC_DQ_MIN_LEN if causal else rt.ATOMIC_DQ_MIN_LEN_BIDIR)
    assert len(rt._DELTA.cache) + rt._DELTA.hits == launches[0] + atomic
    assert len(rt._DQ.cache) + rt._DQ.hits == launches[1] + (not atomic)
    for got, want in zip(outputs, float64_reference(q, k, v, mask, causal, g), strict=True):
        assert bool(got.isfinite().all()) and rel(got, want) < 2e-2
