"""Q-Delta: the chunked form and the Triton state pass against the step-by-step recurrence."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nanog1.core.qdelta import QDelta
from nanog1.core.qdelta_chunk import qdelta_chunked, torch_scan
from nanog1.core.qdelta_reference import qdelta_recurrent

F64 = torch.float64


def _inputs(b=2, h=3, length=100, dk=8, dv=12, dtype=F64, device="cpu", seed=0, grad=False):
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    q = F.normalize(rnd(b, h, length, dk), dim=-1)
    k = F.normalize(rnd(b, h, length, dk), dim=-1)
    v = rnd(b, h, length, dv)
    beta = torch.rand(b, h, length, generator=gen, dtype=dtype)
    lam = torch.rand(b, h, length, generator=gen, dtype=dtype)
    g = -0.5 * torch.rand(b, h, length, generator=gen, dtype=dtype)
    h0 = rnd(b, h, dk, dv)
    ins = [x.to(device).requires_grad_(grad) for x in (q, k, v, beta, lam, g, h0)]
    return ins


def _explicit_recurrence(q, k, v, beta, lam, g):
    """S_t = α_t S_{t−1}(I − β_t r_t k_tᵀ) + β_t v_t k_tᵀ as explicit matrices, one head, S: d_v×d_k."""
    dk, dv = q.shape[-1], v.shape[-1]
    s = torch.zeros(dv, dk, dtype=q.dtype)
    eye = torch.eye(dk, dtype=q.dtype)
    outs = []
    for t in range(q.shape[0]):
        r = k[t] + lam[t] * q[t]
        s = g[t].exp() * s @ (eye - beta[t] * torch.outer(r, k[t])) + beta[t] * torch.outer(v[t], k[t])
        outs.append(s @ q[t])
    return torch.stack(outs)


def test_reference_matches_the_papers_update_written_as_matrices():
    q, k, v, beta, lam, g, _ = _inputs(b=1, h=1, length=40)
    o, _ = qdelta_recurrent(q, k, v, beta, lam, g)
    want = _explicit_recurrence(q[0, 0], k[0, 0], v[0, 0], beta[0, 0], lam[0, 0], g[0, 0])
    torch.testing.assert_close(o[0, 0], want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk", [16, 32, 64])
def test_chunked_forward_matches_recurrence_in_float64(chunk):
    q, k, v, beta, lam, g, h0 = _inputs(length=100)
    o_ref, s_ref = qdelta_recurrent(q, k, v, beta, lam, g, initial_state=h0)
    o, s = qdelta_chunked(q, k, v, beta, lam, g, initial_state=h0, chunk_size=chunk)
    torch.testing.assert_close(o, o_ref, rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(s, s_ref, rtol=1e-11, atol=1e-11)


def test_chunked_gradients_match_recurrence_in_float64():
    ins = _inputs(length=75, grad=True)
    gen = torch.Generator().manual_seed(5)
    w_o = torch.randn(2, 3, 75, 12, generator=gen, dtype=F64)
    w_s = torch.randn(2, 3, 8, 12, generator=gen, dtype=F64)
    grads = []
    for fn, kw in ((qdelta_recurrent, {}), (qdelta_chunked, {"chunk_size": 32})):
        o, s = fn(*ins[:6], initial_state=ins[6], **kw)
        loss = (o * w_o).sum() + (s * w_s).sum()
        grads.append(torch.autograd.grad(loss, ins))
    for name, a, b in zip("q k v beta lam g h0".split(), *grads, strict=True):
        assert a.abs().max() > 0, name
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize("fn", [qdelta_recurrent, qdelta_chunked])
def test_padding_is_skipped_left_and_right(fn):
    q, k, v, beta, lam, g, _ = _inputs(b=2, length=50)
    pad = torch.zeros(2, 50, dtype=torch.bool)
    pad[0, :13] = True  # left padding
    pad[1, 37:] = True  # right padding
    o, _ = fn(q, k, v, beta, lam, g, pad_mask=pad)
    for i, keep in ((0, slice(13, 50)), (1, slice(0, 37))):
        alone, _ = fn(*(x[i : i + 1, :, keep] for x in (q, k, v, beta, lam, g)))
        torch.testing.assert_close(o[i : i + 1, :, keep], alone, rtol=1e-12, atol=1e-12)
    assert o[0, :, :13].abs().max() == 0 and o[1, :, 37:].abs().max() == 0


def test_padded_gradients_match_recurrence():
    ins = _inputs(length=45, grad=True)
    pad = torch.zeros(2, 45, dtype=torch.bool)
    pad[0, :9] = True
    pad[1, 30:] = True
    grads = []
    for fn in (qdelta_recurrent, qdelta_chunked):
        o, s = fn(*ins[:6], initial_state=ins[6], pad_mask=pad)
        grads.append(torch.autograd.grad(o.square().sum() + s.sum(), ins))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)


def test_lambda_zero_reduces_to_gated_delta_rule():
    q, k, v, beta, lam, g, _ = _inputs(b=1, h=1, length=30)
    o, _ = qdelta_recurrent(q, k, v, beta, torch.zeros_like(lam), g)
    s = torch.zeros(12, 8, dtype=F64)
    outs = []
    for t in range(30):
        kt, a = k[0, 0, t], g[0, 0, t].exp()
        s = a * s - a * beta[0, 0, t] * torch.outer(s @ kt, kt) + beta[0, 0, t] * torch.outer(v[0, 0, t], kt)
        outs.append(s @ q[0, 0, t])
    torch.testing.assert_close(o[0, 0], torch.stack(outs), rtol=1e-12, atol=1e-12)
    o_fb, _ = qdelta_recurrent(q, k, v, beta, lam, g)
    assert (o_fb - o).abs().max() > 1e-3  # the query feedback changes the output


def _layer(causal, seed=0, **kw):
    torch.manual_seed(seed)
    return QDelta(hidden_size=32, rank=16, heads=4, causal=causal, **kw).double()


def test_step_decode_equals_full_forward():
    layer = _layer(True)
    x = torch.randn(2, 70, 32, dtype=F64)
    full = layer(x)
    cache = layer.init_cache(2)
    steps = []
    for t in range(70):
        y_t, cache = layer.step(x[:, t : t + 1], cache)
        steps.append(y_t)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-11, atol=1e-11)
    assert cache.state.shape == (2, 4, 4, 8) and cache.conv.shape == (2, 3, 64)


@pytest.mark.parametrize("causal", [True, False])
def test_layer_padded_batch_equals_samples_alone(causal):
    layer = _layer(causal)
    x = torch.randn(2, 60, 32, dtype=F64)
    pad = torch.zeros(2, 60, dtype=torch.bool)
    pad[0, :17] = True
    pad[1, 41:] = True
    y = layer(x, padding_mask=pad)
    torch.testing.assert_close(y[0:1, 17:], layer(x[0:1, 17:]), rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(y[1:2, :41], layer(x[1:2, :41]), rtol=1e-11, atol=1e-11)
    assert y[pad].abs().max() == 0


@pytest.mark.parametrize("causal", [True, False])
def test_layer_sees_the_future_only_when_bidirectional(causal):
    layer = _layer(causal)
    x = torch.randn(1, 40, 32, dtype=F64)
    x2 = x.clone()
    x2[:, -1] += 1.0
    change = (layer(x)[:, :30] - layer(x2)[:, :30]).abs().max()
    assert (change > 1e-6) == (not causal)


def test_layer_trains_every_parameter_and_rejects_bad_use():
    layer = _layer(True)
    x = torch.randn(2, 33, 32, dtype=F64)
    layer(x).square().mean().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().max() > 0, name
    with pytest.raises(ValueError, match="return_weights"):
        layer(x, return_weights=True)
    with pytest.raises(ValueError, match="causal"):
        _layer(False).step(x[:, :1], layer.init_cache(2))
    with pytest.raises(ValueError, match="query"):
        QDelta(32, 16, 4, True, query="mlp")


def test_query_feedback_off_zeroes_lambda():
    on, off = _layer(True, query_feedback=True), _layer(True, query_feedback=False)
    x = torch.randn(1, 20, 32, dtype=F64)
    assert (on(x) - off(x)).abs().max() > 1e-6
    assert off._streams(off._conv_full(off.qkv(x)), x).lam.abs().max() == 0


@pytest.mark.gpu
def test_triton_scan_matches_torch_scan_forward_and_backward():
    from nanog1.core.qdelta_triton import triton_scan

    ins = _inputs(b=2, h=3, length=200, dk=16, dv=40, dtype=torch.float32, device="cuda", grad=True)
    results = []
    for scan in (torch_scan, triton_scan):
        o, s = qdelta_chunked(*ins[:6], initial_state=ins[6], scan=scan)
        torch.manual_seed(3)
        loss = (o * torch.randn_like(o)).sum() + (s * torch.randn_like(s)).sum()
        results.append((o, s, *torch.autograd.grad(loss, ins)))
    for a, b in zip(*results, strict=True):
        assert torch.isfinite(b).all()
        assert ((a - b).norm() / a.norm()).item() < 1e-5


@pytest.mark.gpu
def test_layer_on_gpu_matches_float64_cpu():
    layer = _layer(True)
    x = torch.randn(2, 300, 32, dtype=F64)
    want = layer(x)
    got = layer.float().cuda()(x.float().cuda()).double().cpu()
    assert ((got - want).norm() / want.norm()).item() < 1e-4


def test_build_mixer_dispatches_qdelta():
    from nanog1.core.mixers import build_mixer

    torch.manual_seed(0)
    layer = build_mixer("qdelta", hidden_size=32, rank=16, heads=4, causal=False)
    assert isinstance(layer, QDelta) and not layer.causal
    assert layer(torch.randn(2, 9, 32)).shape == (2, 9, 32)


def test_layer_without_conv_decodes_and_bf16_tracks_float64():
    layer = _layer(True, conv_size=1, chunk_size=16)
    x = torch.randn(1, 21, 32, dtype=F64)
    cache = layer.init_cache(1)
    assert cache.conv is None
    steps = []
    for t in range(21):
        y_t, cache = layer.step(x[:, t : t + 1], cache)
        steps.append(y_t)
    full = layer(x)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-11, atol=1e-11)
    layer = layer.to(torch.bfloat16)
    low = layer(x.to(torch.bfloat16)).double()
    assert ((low - full).norm() / full.norm()).item() < 5e-2
    cache = layer.init_cache(1)
    assert cache.state.dtype == torch.float32 and cache.conv is None
    y_t, cache = layer.step(x[:, :1].to(torch.bfloat16), cache)
    assert y_t.dtype == torch.bfloat16 and cache.state.dtype == torch.float32
    torch.testing.assert_close(y_t.double(), low[:, :1], rtol=5e-2, atol=5e-2)


_FUSED_SCRIPT = """
import torch
from test_qdelta import _inputs
from nanog1.core.qdelta_fused import qdelta_fused
from nanog1.core.qdelta_reference import qdelta_recurrent
worst = 0.0
for length, dk, dv, pad in ((130, 16, 24, True), (64, 32, 64, False), (70, 8, 130, True),
                           (64, 128, 16, False)):
    ins = _inputs(b=2, h=2, length=length, dk=dk, dv=dv, grad=True)
    mask = torch.zeros(2, length, dtype=torch.bool)
    if pad:
        mask[1, -37:] = True
        mask[0, :3] = True
    o, s = qdelta_recurrent(*ins[:6], initial_state=ins[6], pad_mask=mask)
    w_o, w_s = torch.randn_like(o), torch.randn_like(s)
    ref = [o, s, *torch.autograd.grad((o * w_o).sum() + (s * w_s).sum(), ins)]
    f32 = [x.detach().float().requires_grad_() for x in ins]
    o2, s2 = qdelta_fused(*f32[:6], initial_state=f32[6], pad_mask=mask)
    got = [o2, s2, *torch.autograd.grad((o2 * w_o.float()).sum() + (s2 * w_s.float()).sum(), f32)]
    worst = max([worst] + [((a - b.double()).norm() / a.norm()).item() for a, b in zip(ref, got)])
print("WORST", worst)
"""


@pytest.mark.slow
def test_fused_kernels_in_interpreter_match_float64_recurrence():
    """Fused Q-Delta forward and every gradient, padded and not, in Triton's CPU interpreter (float32)."""
    from interpreter import run_in_interpreter

    script = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n" + _FUSED_SCRIPT
    assert float(run_in_interpreter(script).split("WORST")[-1]) < 1e-5


def _fused_vs_recurrence(length, dk, dv, dtype, pad):
    from nanog1.core.qdelta_fused import qdelta_fused

    ins = _inputs(b=2, h=3, length=length, dk=dk, dv=dv, device="cuda", grad=True)
    mask = torch.zeros(2, length, dtype=torch.bool, device="cuda")
    if pad:
        mask[1, length // 3 :] = True
        mask[0, :5] = True
    o, s = qdelta_recurrent(*ins[:6], initial_state=ins[6], pad_mask=mask)
    w_o, w_s = torch.randn_like(o), torch.randn_like(s)
    ref = [o, s, *torch.autograd.grad((o * w_o).sum() + (s * w_s).sum(), ins)]
    low = [x.detach().to(dtype if i < 3 else torch.float32).requires_grad_() for i, x in enumerate(ins)]
    o2, s2 = qdelta_fused(*low[:6], initial_state=low[6], pad_mask=mask)
    assert o2.dtype == dtype and s2.dtype == torch.float32
    loss = (o2.float() * w_o.float()).sum() + (s2 * w_s.float()).sum()
    got = [o2, s2, *torch.autograd.grad(loss, low)]
    return [((a - b.double()).norm() / a.norm()).item() for a, b in zip(ref, got, strict=True)]


@pytest.mark.gpu
@pytest.mark.parametrize(
    "length, dk, dv, pad",
    [(300, 64, 64, True), (64, 16, 40, False), (1000, 64, 32, True), (300, 8, 128, True)],
)
def test_fused_kernels_match_float64_recurrence_on_gpu(length, dk, dv, pad):
    """Forward, final state and every gradient in fp32; d_v 128 runs as two value blocks."""
    errors = _fused_vs_recurrence(length, dk, dv, torch.float32, pad)
    assert max(errors) < 1e-5, errors


@pytest.mark.gpu
@pytest.mark.parametrize("dk, dv", [(64, 64), (16, 128), (128, 128)])
def test_fused_kernels_with_bf16_inputs_track_float64(dk, dv):
    """bf16 inputs, head width 128 included (d_k 128 on 8 warps; d_v 128 as two value blocks)."""
    errors = _fused_vs_recurrence(1000, dk, dv, torch.bfloat16, True)
    assert max(errors) < 3e-2, errors


@pytest.mark.gpu
def test_layer_uses_fused_kernels_and_matches_chunked_path(monkeypatch):
    import nanog1.core.qdelta_fused as fused

    layer = _layer(True).float().cuda()
    x = torch.randn(2, 150, 32, device="cuda")
    pad = torch.zeros(2, 150, dtype=torch.bool, device="cuda")
    pad[1, 100:] = True
    calls, original = [], fused.qdelta_fused
    monkeypatch.setattr(fused, "qdelta_fused", lambda *a, **k: calls.append(1) or original(*a, **k))
    got = layer(x, padding_mask=pad)
    monkeypatch.setenv("NANOG1_QDELTA_KERNEL", "chunked")
    want = layer(x, padding_mask=pad)
    assert calls and ((got - want).norm() / want.norm()).item() < 1e-5


_DECODE_SCRIPT = """
import torch
from nanog1.core.qdelta_decode import qdelta_step_fused
from nanog1.core.qdelta_reference import qdelta_step
torch.manual_seed(0)
worst = 0.0
for dk, dv in ((8, 64), (16, 40), (64, 130)):
    h = torch.randn(3, 2, dk, dv)
    q, k = (torch.nn.functional.normalize(torch.randn(3, 2, dk), dim=-1) for _ in range(2))
    v = torch.randn(3, 2, dv)
    beta, lam, g = torch.rand(3, 2), torch.rand(3, 2), -torch.rand(3, 2)
    before = h.clone()
    o, h2 = qdelta_step_fused(h, q, k, v, beta, lam, g)
    o_ref, h_ref = qdelta_step(*(x.double() for x in (h, q, k, v, beta, lam, g)))
    assert torch.equal(h, before)
    for got, want in ((o, o_ref), (h2, h_ref)):
        worst = max(worst, ((got - want).norm() / want.norm()).item())
print("WORST", worst)
"""


@pytest.mark.slow
def test_fused_decode_step_in_interpreter_matches_float64_step():
    """The one-kernel decode step (fp32, odd widths, d_v over one value block) against the float64 step."""
    from interpreter import run_in_interpreter

    assert float(run_in_interpreter(_DECODE_SCRIPT).split("WORST")[-1]) < 1e-5


@pytest.mark.gpu
def test_fused_decode_step_matches_float64_step_on_gpu(monkeypatch):
    """The layer's fused step (the CUDA default; NANOG1_QDELTA_DECODE=torch forces PyTorch) decodes what
    the float64 PyTorch step does."""
    import nanog1.core.qdelta_decode as decode

    layer = _layer(True).cuda()
    x = torch.randn(2, 12, 32, device="cuda", dtype=torch.float64)
    calls, original = [], decode.qdelta_step_fused
    monkeypatch.setattr(decode, "qdelta_step_fused", lambda *a: calls.append(1) or original(*a))
    outs = {}
    for mode, model, inputs in (("torch", layer, x), ("fused", copy.deepcopy(layer).float(), x.float())):
        monkeypatch.setenv("NANOG1_QDELTA_DECODE", mode)
        cache, ys = model.init_cache(2), []
        for t in range(12):
            y, cache = model.step(inputs[:, t : t + 1], cache)
            ys.append(y.double())
        outs[mode] = torch.cat(ys, 1)
    assert len(calls) == 12
    assert ((outs["fused"] - outs["torch"]).norm() / outs["torch"].norm()).item() < 1e-5
