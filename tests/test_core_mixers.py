"""Core mixers against plain float64 references: padding, causality, caches, gradients, parameter counts."""

from __future__ import annotations

import sys

import core_reference as ref
import pytest
import torch
from seeds import stable_seed

from nanog1.core import NonlinearQuery, build_mixer

KINDS = ["qcompass", "savo", "mha", "mha_rank"]
# (H, r, h): q/k narrower than the content; SAVO routing its Q-value (h·r < H); r = H (equal widths)
SIZES = [(16, 8, 2), (24, 4, 2), (16, 16, 4)]


def make(kind, hidden, rank, heads, causal, query="linear", seed=0):
    torch.manual_seed(seed)
    return build_mixer(kind, hidden, rank, heads, causal, query=query).double()


def random_padding(batch: int, length: int, pattern: str, gen: torch.Generator) -> torch.Tensor:
    """Bool [B, L], True = padding; every row keeps at least one real token."""
    if pattern == "right":
        lengths = torch.randint(1, length + 1, (batch,), generator=gen)
        lengths[0] = length
        return torch.arange(length)[None, :] >= lengths[:, None]
    pad = torch.rand(batch, length, generator=gen) < 0.4
    pad[:, torch.randint(0, length, (1,), generator=gen)] = False
    return pad


@pytest.mark.parametrize("pattern", ["right", "irregular"])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_padded_batch_equals_reference_per_sample(kind, size, causal, pattern):
    hidden, rank, heads = size
    m = make(kind, hidden, rank, heads, causal)
    gen = torch.Generator().manual_seed(stable_seed(kind, size, causal, pattern))
    x = torch.randn(3, 9, hidden, generator=gen, dtype=torch.float64)
    pad = random_padding(3, 9, pattern, gen)
    y = m(x, pad)
    assert torch.isfinite(y).all()
    for b in range(3):
        real = ~pad[b]
        expected, _ = ref.mixer(m, x[b, real])
        torch.testing.assert_close(y[b, real], expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_nonlinear_query_matches_reference(kind, causal):
    m = make(kind, 16, 8, 2, causal, query="nonlinear", seed=1)
    proj = m.q_proj if kind.startswith("mha") else m.state_proj
    assert isinstance(proj, NonlinearQuery)
    with torch.no_grad():  # move the norms off their identity init so the reference is exercised fully
        proj.norm_in.weight.uniform_(0.5, 1.5)
        proj.norm_out.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    y = m(x)
    for b in range(2):
        torch.testing.assert_close(y[b], ref.mixer(m, x[b])[0], rtol=1e-10, atol=1e-10)
    linear = make(kind, 16, 8, 2, causal, seed=1)
    assert not torch.allclose(linear(x), y)


def test_nonlinear_query_full_width_is_paper_form():
    """Full-width MHA query: Q(X) = X + f(X), no W_q, f with H² + O(H) parameters (arXiv:2603.13381)."""
    hidden = 64
    m = build_mixer("mha", hidden, hidden, 4, True, query="nonlinear")
    assert m.q_proj.anchor is None
    assert sum(p.numel() for p in m.q_proj.parameters()) == hidden * hidden + 2 * hidden
    x = torch.randn(3, hidden)
    with torch.no_grad():
        m.q_proj.up.weight.zero_()  # f ≡ LayerNorm(0) = 0, so the query must be exactly the identity
        torch.testing.assert_close(m.q_proj(x), x)


@pytest.mark.parametrize("kind", KINDS)
def test_no_leak_from_future_or_padding(kind):
    m = make(kind, 16, 8, 2, causal=True)
    x = torch.randn(2, 10, 16, dtype=torch.float64)
    y = m(x)
    t = 5
    x2 = x.clone()
    x2[:, t + 1:] += torch.randn_like(x2[:, t + 1:])
    y2 = m(x2)
    torch.testing.assert_close(y2[:, :t + 1], y[:, :t + 1], rtol=0, atol=1e-12)
    assert not torch.allclose(y2[:, t + 1:], y[:, t + 1:])
    bi = make(kind, 16, 8, 2, causal=False)  # the same probe sees the leak in a bidirectional mixer
    assert not torch.allclose(bi(x2)[:, :t + 1], bi(x)[:, :t + 1])
    pad = torch.zeros(2, 10, dtype=torch.bool)
    pad[:, 2] = True
    x3 = x.clone()
    x3[:, 2] += 10.0
    for mixer in (m, bi):
        real = ~pad[0]
        torch.testing.assert_close(mixer(x3, pad)[:, real], mixer(x, pad)[:, real], rtol=0, atol=1e-12)


def test_token_major_cache_holds_the_same_tokens_and_grows():
    """SAVO's CUDA cache layout: the same [B, h, T, d] view as head-major, one contiguous row per token."""
    from nanog1.core.caches import RoutingCache
    from nanog1.core.kernels import decode_reference

    torch.manual_seed(0)
    a = RoutingCache.empty(2, (4, 3), (1, 5), dtype=torch.float64, capacity=2)
    b = RoutingCache.empty(2, (4, 3), (1, 5), dtype=torch.float64, capacity=2, token_major=True)
    for n in (1, 2, 1, 3):  # grows twice
        k, v = torch.randn(2, 4, n, 3, dtype=torch.float64), torch.randn(2, 1, n, 5, dtype=torch.float64)
        a.append(k, v)
        b.append(k, v)
    assert b.length == 7 and b.keys.shape == a.keys.shape and (b.keys.stride(1), b.keys.stride(2)) == (3, 12)
    for x, y in zip(a.valid(), b.valid(), strict=True):
        assert torch.equal(x, y)
    q = torch.randn(2, 4, 3, dtype=torch.float64)
    ours, heads_first = (decode_reference(q, *c.valid(), None, 0.5) for c in (b, a))
    torch.testing.assert_close(ours, heads_first, rtol=1e-12, atol=0)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("query", ["linear", "nonlinear"])
@pytest.mark.parametrize("kind", KINDS)
def test_step_decoding_equals_forward(kind, query, size):
    hidden, rank, heads = size
    m = make(kind, hidden, rank, heads, causal=True, query=query)
    x = torch.randn(2, 9, hidden, dtype=torch.float64)
    full = m(x)
    cache = m.init_cache(2, dtype=torch.float64, capacity=2)  # forces the buffers to grow
    steps = []
    for t in range(9):
        y_t, cache = m.step(x[:, t:t + 1], cache)
        steps.append(y_t)
    assert cache.length == 9
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_step_needs_causal(kind):
    m = make(kind, 16, 8, 2, causal=False)
    with pytest.raises(ValueError, match="causal"):
        m.step(torch.randn(1, 1, 16, dtype=torch.float64), m.init_cache(1, dtype=torch.float64))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("size", SIZES[:2])
@pytest.mark.parametrize("kind", KINDS)
def test_gradients_match_reference(kind, size, causal):
    hidden, rank, heads = size
    m = make(kind, hidden, rank, heads, causal, query="nonlinear" if kind == "savo" else "linear")
    x = torch.randn(2, 8, hidden, dtype=torch.float64, requires_grad=True)
    pad = torch.zeros(2, 8, dtype=torch.bool)
    pad[1, 5:] = True
    probe = torch.randn(2, 8, hidden, dtype=torch.float64)
    real = ~pad
    (m(x, pad) * probe)[real].sum().backward()
    ours = [x.grad.clone()] + [p.grad.clone() for p in m.parameters()]
    x.grad = None
    m.zero_grad()
    loss = sum((ref.mixer(m, x[b, real[b]])[0] * probe[b, real[b]]).sum() for b in range(2))
    loss.backward()
    theirs = [x.grad] + [p.grad for p in m.parameters()]
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_savo_routes_qvalue_or_content_with_equal_results():
    m = make("savo", 24, 4, 2, causal=True)
    assert m.route_qvalue  # h·r = 8 < H = 24
    x = torch.randn(2, 6, 24, dtype=torch.float64)
    pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    y_qvalue = m(x, pad)
    m.route_qvalue = False
    torch.testing.assert_close(m(x, pad), y_qvalue, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_return_weights_matches_reference(kind, causal):
    m = make(kind, 16, 8, 2, causal)
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[1, 4:] = True
    y, w = m(x, pad, return_weights=True)
    assert w.shape == (2, 2, 7, 7)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 2, 7, dtype=torch.float64))
    real = ~pad
    torch.testing.assert_close(y[real], m(x, pad)[real], rtol=1e-10, atol=1e-10)
    for b in range(2):
        n = int(real[b].sum())
        expected_y, expected_w = ref.mixer(m, x[b, :n])
        torch.testing.assert_close(w[b][:, :n, :n], expected_w, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(y[b, :n], expected_y, rtol=1e-10, atol=1e-10)
        assert (w[b][:, :n, n:] == 0).all()  # real rows never read padding


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_padded_query_rows_are_finite(kind, causal):
    """Padded rows with no real key (left padding, causal; an all-padding sample) must not be NaN."""
    m = make(kind, 16, 8, 2, causal=causal)
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    pad = torch.tensor([[True, True, False, False, False, False], [True] * 6])
    assert torch.isfinite(m(x, pad)).all()
    assert torch.isfinite(m(x, pad, return_weights=True)[0]).all()
    torch.testing.assert_close(m(x, pad)[0, 2:], ref.mixer(m, x[0, 2:])[0], rtol=1e-10, atol=1e-10)


def test_projection_weight_counts_follow_the_issue():
    def weights(kind):
        return sum(p.numel() for p in build_mixer(kind, 512, 64, 8, True).parameters() if p.dim() >= 2)

    hidden, rank = 512, 64
    assert weights("qcompass") == 2 * hidden * rank + hidden * hidden == 327_680
    assert weights("mha") == 4 * hidden * hidden == 1_048_576
    assert weights("savo") == 3 * hidden * rank + hidden * hidden
    assert weights("mha_rank") == 4 * hidden * rank


def test_cache_bytes_per_token():
    hidden, rank = 512, 64
    per_token = {}
    for kind in KINDS:
        m = build_mixer(kind, hidden, rank, 8, True)
        cache = m.init_cache(1)
        _, cache = m.step(torch.randn(1, 1, hidden), cache)
        per_token[kind] = cache.bytes_per_token()
    assert per_token["savo"] == 2 * rank * 4
    assert per_token["qcompass"] == (rank + hidden) * 4
    assert per_token["mha"] == 2 * hidden * 4
    assert per_token["savo"] / per_token["mha"] == 0.125


def test_build_mixer_rejects_bad_arguments(monkeypatch):
    with pytest.raises(ValueError, match="unknown mixer"):
        build_mixer("lstm", 16, 8, 2, True)
    with pytest.raises(ValueError, match="query"):
        build_mixer("savo", 16, 8, 2, True, query="quadratic")
    with pytest.raises(ValueError, match="divide"):
        build_mixer("qcompass", 16, 6, 4, True)
    monkeypatch.setitem(sys.modules, "nanog1.core.qdelta", None)  # makes the import fail
    with pytest.raises(ValueError, match="qdelta"):
        build_mixer("qdelta", 16, 8, 2, True)


@pytest.mark.gpu
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_bf16_on_fused_kernels_matches_fp64(kind, causal):
    """On CUDA, bf16 matches float64; where route() takes SDPA, unpadded on flash alone and padded on the
    memory-efficient kernel (narrow q/k take the rank-r kernel on Hopper, see the next test)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.manual_seed(0)
    m = build_mixer(kind, 128, 16, 4, causal).cuda().double()
    x = torch.randn(2, 256, 128, device="cuda", dtype=torch.float64)
    pad = torch.zeros(2, 256, dtype=torch.bool, device="cuda")
    pad[1, 200:] = True
    with torch.no_grad():
        expected, expected_padded = m(x), m(x, pad)
        m = m.to(torch.bfloat16)
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            y = m(x.bfloat16())
        with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION]):
            y_padded = m(x.bfloat16(), pad)
    for ours, ref64 in ((y, expected), (y_padded[~pad], expected_padded[~pad])):
        assert float((ours.double() - ref64).norm() / ref64.norm()) < 2e-2


@pytest.mark.gpu
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_kernel_paths_left_padding_and_decode(kind):
    """On CUDA, causal left padding runs the rank-r Triton kernel and step() its decode kernel: both
    must equal the float64 forward on the real rows."""
    torch.manual_seed(1)
    m = build_mixer(kind, 128, 16, 4, True).cuda().double()
    x = torch.randn(2, 192, 128, device="cuda", dtype=torch.float64)
    pad = torch.zeros(2, 192, dtype=torch.bool, device="cuda")
    pad[1, :37] = True  # left padding: SDPA would need an L×L mask here
    with torch.no_grad():
        expected_padded, expected = m(x, pad), m(x)
        m = m.to(torch.bfloat16)
        y_padded = m(x.bfloat16(), pad)
        cache = m.init_cache(2, device="cuda", dtype=torch.bfloat16)
        steps = []
        for t in range(24):
            y_t, cache = m.step(x[:, t : t + 1].bfloat16(), cache)
            steps.append(y_t)
    decoded = torch.cat(steps, dim=1).double()
    for ours, ref64 in ((y_padded[~pad].double(), expected_padded[~pad]), (decoded, expected[:, :24])):
        assert torch.isfinite(ours).all()
        assert float((ours - ref64).norm() / ref64.norm()) < 2e-2


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["qcompass", "savo"])
@pytest.mark.parametrize("causal,pad", [(True, None), (False, None), (False, "right"), (True, "left"),
                                        (True, "rand"), (False, "rand")])
def test_cuda_forced_paths_agree_and_auto_follows_the_table(kind, causal, pad, monkeypatch):
    """NANOG1_ROUTE=kernel and =sdpa give the float64 result on real rows; auto takes the table's path."""
    import nanog1.core.routing as routing
    from nanog1.core.route_dispatch import table_path

    torch.manual_seed(3)
    m = build_mixer(kind, 512, 64, 8, causal).cuda().double()
    x = torch.randn(2, 300, 512, device="cuda", dtype=torch.float64)
    mask = None
    if pad is not None:
        mask = torch.zeros(2, 300, dtype=torch.bool, device="cuda")
        mask[1, 230:] = True
        if pad == "left":
            mask = mask.flip(1)
        elif pad == "rand":
            mask[0] = torch.rand(300, device="cuda") < 0.3
            mask[0, 0] = False
    real = slice(None) if mask is None else ~mask
    with torch.no_grad():
        want = m(x, mask)[real]
        m = m.to(torch.bfloat16)
        for path in ("kernel", "sdpa"):
            monkeypatch.setenv("NANOG1_ROUTE", path)
            got = m(x.bfloat16(), mask)[real].double()
            assert float((got - want).norm() / want.norm()) < 2e-2, path
        monkeypatch.setenv("NANOG1_ROUTE", "auto")
        calls, original = [], routing.routing_attention
        spy = lambda *a, **k: calls.append(1) or original(*a, **k)  # noqa: E731
        monkeypatch.setattr(routing, "routing_attention", spy)
        m(x.bfloat16(), mask)
    major = torch.cuda.get_device_capability()[0]
    expected = table_path(major, True, causal, "none" if mask is None else "mask", 300)
    irregular_causal = causal and pad in ("left", "rand")
    assert bool(calls) == (expected == "kernel" or irregular_causal)


@pytest.mark.gpu
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("v_heads", [1, 8])
def test_cuda_sdpa_narrow_qk_matches_float64_with_gradients(causal, v_heads, monkeypatch):
    """route() on SDPA with q/k narrower than v (SAVO's 8 vs 64) and no mask hands cuDNN the narrow q/k
    unpadded on Hopper; output and q/k/v gradients equal the float64 softmax routing."""
    import torch.nn.functional as F

    import nanog1.core.routing as routing

    widths, original = [], F.scaled_dot_product_attention
    monkeypatch.setattr(routing.F, "scaled_dot_product_attention",
                        lambda q, *a, **k: widths.append(q.shape[-1]) or original(q, *a, **k))
    torch.manual_seed(5)
    q, k = (torch.randn(2, 8, 300, 8, device="cuda", dtype=torch.float64) for _ in range(2))
    v = torch.randn(2, v_heads, 300, 64, device="cuda", dtype=torch.float64)
    w = torch.randn(2, 8, 300, 64, device="cuda", dtype=torch.float64)
    leaves = [t.bfloat16().requires_grad_() for t in (q, k, v)]
    out = routing.route(*leaves, scale=8 ** -0.5, causal=causal, path="sdpa")
    got = [out, *torch.autograd.grad((out.double() * w).sum(), leaves)]
    ref_leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    want, _ = routing.route_explicit(*ref_leaves, scale=8 ** -0.5, causal=causal)
    want = [want, *torch.autograd.grad((want * w).sum(), ref_leaves)]
    for a, b in zip(got, want, strict=True):
        assert float((a.double() - b).norm() / b.norm()) < 2e-2
    assert widths == [8 if torch.cuda.get_device_capability()[0] >= 9 else 64]
