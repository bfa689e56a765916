"""The one-node SAVO / Q-Compass block (nanog1.core.fused_block) against the modules' autograd path."""

from __future__ import annotations

import pytest
import torch
from interpreter import run_in_interpreter
from seeds import stable_seed

import nanog1.core.fused_block as fb
from nanog1.core import build_mixer
from nanog1.core.ragged import Ragged

# (H, r, h): q/k 8 wide per head under 16- or 32-wide values; SAVO routing its content (h·r = H) or not
SIZES = [(64, 16, 2), (64, 32, 4), (48, 48, 6)]


def _mixer(kind: str, size, causal: bool, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    m = build_mixer(kind, *size, causal).double()
    with torch.no_grad():  # off the init scale, so every term of the backward is exercised
        for p in m.parameters():
            p.uniform_(-0.5, 0.5)
    return m


def eligible(*args) -> bool:
    return fb.fused_dtype(*args) is not None


def _grads(m, x, w, forward):
    y = forward(x)
    return [y, *torch.autograd.grad((y * w).sum(), [x, *m.parameters()])]


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["savo", "qcompass"])
def test_fused_block_equals_autograd_path_in_float64(kind, size, causal):
    """Output, input and every weight gradient equal the module's own forward through autograd."""
    m = _mixer(kind, size, causal, seed=7)
    gen = torch.Generator().manual_seed(stable_seed(kind, size, causal))
    x = torch.randn(3, 13, size[0], generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 13, size[0], generator=gen, dtype=torch.float64)
    want = _grads(m, x, w, m)
    got = _grads(m, x, w, lambda t: fb.fused_forward(m, t, fb.compute_dtype(t), fb.MathAttention))
    assert got[0].grad_fn.name() == "RoutedBlockBackward"
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", ["savo", "qcompass"])
def test_fused_block_under_autocast_computes_in_bf16_and_returns_fp32_gradients(kind):
    """Under autocast the block computes in autocast's dtype, as the autograd path does, and hands back
    gradients in the parameters' (and input's) own dtype."""
    torch.manual_seed(2)
    m = build_mixer(kind, 64, 16, 2, True)
    x = torch.randn(2, 40, 64, requires_grad=True)
    w = torch.randn(2, 40, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = _grads(m, x, w, m)
        got = _grads(m, x, w, lambda t: fb.fused_forward(m, t, fb.compute_dtype(t), fb.MathAttention))
    assert got[0].dtype == want[0].dtype == torch.bfloat16
    for a, b, p in zip(got[1:], want[1:], [x, *m.parameters()], strict=True):
        assert a.dtype == p.dtype == torch.float32
        assert float((a - b).norm() / b.norm()) < 2e-2


def test_fused_block_takes_only_its_shapes(monkeypatch):
    """fused_dtype: on for an unmasked bf16 batch where cuDNN takes narrow q/k, off for every case the
    block does not cover (mask, ragged, weights, nonlinear query, SAVO's Q-value route, fp32, switches)."""
    monkeypatch.setattr(fb, "cudnn_narrow_supported", lambda dq, dv, length, device: dq < dv)
    monkeypatch.delenv("NANOG1_FUSED_BLOCK", raising=False)
    monkeypatch.delenv("NANOG1_ROUTE", raising=False)
    m = build_mixer("savo", 64, 32, 4, True)
    x = torch.randn(2, 9, 64, dtype=torch.bfloat16)
    assert eligible(m, x, None, None, False)
    assert not eligible(m, x, torch.zeros(2, 9, dtype=torch.bool), None, False)
    assert not eligible(m, x, None, Ragged.from_lengths([4, 5]), False)
    assert not eligible(m, x, None, None, True)
    assert not eligible(m, x.float(), None, None, False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert eligible(m, x.float(), None, None, False)
    # a nonlinear state; SAVO routing its Q-value (h·r < H)
    for args, query, want in (((64, 32, 4), "nonlinear", False), ((64, 16, 2), "linear", False)):
        assert eligible(build_mixer("savo", *args, True, query=query), x, None, None, False) == want
    for args, want in (((64, 16, 2), True), ((64, 64, 8), False)):  # equal q/k and value widths: not narrow
        assert eligible(build_mixer("qcompass", *args, True), x, None, None, False) == want
    for var, value in (("NANOG1_FUSED_BLOCK", "0"), ("NANOG1_ROUTE", "kernel")):
        monkeypatch.setenv(var, value)
        assert not eligible(m, x, None, None, False)
        monkeypatch.delenv(var)
    monkeypatch.setenv("NANOG1_ROUTE", "sdpa")
    assert eligible(m, x, None, None, False)


def test_block_attention_follows_the_dispatch_table(monkeypatch):
    """The block runs the rank-r kernel where route()'s table picks it for unmasked batches (any L, also past
    cuDNN's narrow limit), cuDNN where the table says SDPA or a path is forced to it, nothing elsewhere."""
    import nanog1.core.route_dispatch as rd

    monkeypatch.setattr(fb, "kernel_supports", lambda dq, dv, device: True)
    monkeypatch.setattr(fb, "device_major", lambda device: 9)
    monkeypatch.setattr(fb, "cudnn_narrow_supported", lambda dq, dv, n, device: dq < dv and n <= 4096)
    monkeypatch.setattr(rd, "DISPATCH", {(9, True, True, "none"): ((2047, "sdpa"), (1 << 62, "kernel")),
                                         (9, True, False, "none"): ((1 << 62, "sdpa"),)})
    monkeypatch.delenv("NANOG1_ROUTE", raising=False)
    causal, bidir = build_mixer("savo", 64, 32, 4, True), build_mixer("savo", 64, 32, 4, False)
    for mixer, length, want in ((causal, 2047, fb.CudnnAttention), (causal, 2048, fb.TritonAttention),
                                (causal, 9000, fb.TritonAttention), (bidir, 2048, fb.CudnnAttention),
                                (bidir, 9000, None)):
        x = torch.zeros(1, length, 64, dtype=torch.bfloat16)
        assert fb.block_attention(mixer, x) is want
        assert eligible(mixer, x, None, None, False) == (want is not None)
    monkeypatch.setenv("NANOG1_ROUTE", "sdpa")
    assert fb.block_attention(causal, torch.zeros(1, 2048, 64)) is fb.CudnnAttention
    assert fb.block_attention(causal, torch.zeros(1, 9000, 64)) is None
    monkeypatch.setattr(fb, "kernel_supports", lambda dq, dv, device: False)  # e.g. no Triton, CPU
    monkeypatch.setenv("NANOG1_ROUTE", "auto")
    assert fb.block_attention(causal, torch.zeros(1, 2048, 64)) is fb.CudnnAttention


def test_fused_block_turns_itself_off_when_the_attention_call_fails(monkeypatch):
    """A torch whose cuDNN op refuses the call: a warning, None (the caller's autograd path runs) and the
    block stays off for later calls."""
    monkeypatch.setattr(fb, "_broken", [])
    monkeypatch.setattr(fb, "cudnn_narrow_supported", lambda dq, dv, length, device: True)

    class Refusing:
        @staticmethod
        def forward(*args):
            raise TypeError("unexpected argument 'attn_bias'")

    m = build_mixer("qcompass", 64, 16, 2, True)
    x = torch.randn(2, 9, 64, dtype=torch.bfloat16)
    assert eligible(m, x, None, None, False)
    with pytest.warns(UserWarning, match="attn_bias"):
        assert fb.fused_forward(m, x, torch.bfloat16, Refusing) is None
    assert not eligible(m, x, None, None, False)


@pytest.mark.gpu
@pytest.mark.parametrize("length,kernel_from", [(257, None), (512, None), (2048, None), (2048, 2048)])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("kind", ["savo", "qcompass"])
def test_cuda_fused_block_matches_float64_with_gradients(kind, causal, length, kernel_from, monkeypatch):
    """On Hopper, the block under bf16 autocast runs as one node (on cuDNN or, where the dispatch table
    picks it, the rank-r kernel) and equals the float64 module: output, input gradient and every weight
    gradient (< 2e-2 relative). ``kernel_from``: the table's unmasked entries moved to take the kernel from
    that L (the block on the kernel at a length whose float64 reference stays small)."""
    import nanog1.core.route_dispatch as rd
    from nanog1.core.route_dispatch import table_path

    if torch.cuda.get_device_capability()[0] < 9:
        pytest.skip("the fused block runs on sm_90+")
    if kernel_from is not None:
        steps = ((kernel_from - 1, "sdpa"), (1 << 62, "kernel"))
        monkeypatch.setattr(rd, "DISPATCH", {**rd.DISPATCH, (9, True, True, "none"): steps,
                                             (9, True, False, "none"): steps})
    monkeypatch.delenv("NANOG1_FUSED_BLOCK", raising=False)
    monkeypatch.delenv("NANOG1_ROUTE", raising=False)
    torch.manual_seed(11)
    m = build_mixer(kind, 512, 64, 8, causal).cuda()
    x = torch.randn(3 if length < 2048 else 1, length, 512, device="cuda", requires_grad=True)
    w = torch.randn(*x.shape, device="cuda")
    kernel = table_path(9, True, causal, "none", length) == "kernel"
    assert fb.block_attention(m, x) is (fb.TritonAttention if kernel else fb.CudnnAttention)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        got = _grads(m, x, w, m)
    assert got[0].grad_fn.name() == "RoutedBlockBackward"
    m64, x64 = m.double(), x.detach().double().requires_grad_()
    want = _grads(m64, x64, w.double(), m64)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape and torch.isfinite(a).all()
        assert float((a.double() - b).norm() / b.norm()) < 2e-2


def test_cudnn_attention_contract_on_meta_tensors():
    """The private cuDNN ops take the arguments CudnnAttention passes (torch's meta kernels check the
    schema): forward output [B, h, L, dv]; backward dQ, dK, dV shaped like q, k, v (the block adds the
    Q-value terms and writes both into its [B, L, 2, h, d] gradient)."""
    b, length, h = 2, 16, 8
    sa = torch.empty(b * length, 128, device="meta", dtype=torch.bfloat16).view(b, length, 2, h, 8)
    q, k = sa[:, :, 0].transpose(1, 2), sa[:, :, 1].transpose(1, 2)
    c = torch.empty(b * length, 512, device="meta", dtype=torch.bfloat16)
    v = c.view(b, length, h, 64).transpose(1, 2)
    o, saved = fb.CudnnAttention.forward(q, k, v, True, 0.35)
    assert o.shape == (b, h, length, 64) and len(saved) == 7
    dqk = torch.empty(b, length, 2, h, 8, device="meta", dtype=torch.bfloat16)
    dq, dk, dv = fb.CudnnAttention.backward(o, q, k, v, o, saved, True, 0.35, dqk)
    assert dq.shape == q.shape and dk.shape == k.shape and dv.shape == v.shape


_BLOCK_ON_KERNEL_SCRIPT = """
import torch
import nanog1.core.fused_block as fb
import nanog1.core.kernels.routing_triton as rt
from nanog1.core import build_mixer
worst = 0.0
for kind in ("savo", "qcompass"):
    for causal, atomic in ((True, True), (True, False), (False, True), (False, False)):
        rt.ATOMIC_DQ = atomic
        torch.manual_seed(3)
        m = build_mixer(kind, 64, 16, 2, causal)
        with torch.no_grad():
            for p in m.parameters():
                p.uniform_(-0.5, 0.5)
        x = torch.randn(2, 70, 64, requires_grad=True)
        w = torch.randn(2, 70, 64)
        res = []
        for fwd in (m, lambda t: fb.fused_forward(m, t, torch.float32, fb.TritonAttention)):
            y = fwd(x)
            res.append([y, *torch.autograd.grad((y * w).sum(), [x, *m.parameters()])])
        assert res[1][0].grad_fn.name() == "RoutedBlockBackward"
        worst = max([worst] + [((a - b).norm() / b.norm()).item() for a, b in zip(res[1], res[0])])
print("WORST", worst)
"""


@pytest.mark.slow
def test_block_on_the_triton_kernel_in_interpreter():
    """The whole one-node block on the rank-r kernel (Triton's CPU interpreter, float32) against the module's
    autograd path: output, input and every weight gradient, SAVO and Q-Compass, causal or not, both dQ
    forms; the kernels write dQ and dK straight into the block's stacked gradient."""
    assert float(run_in_interpreter(_BLOCK_ON_KERNEL_SCRIPT).split("WORST")[-1]) < 1e-4
