"""Ragged batches: packing, the length-bucketing sampler, and ragged routing equal to one sequence at a time.

CPU: the PyTorch paths (reference and route()'s per-sequence SDPA) against float64, and the Triton
ragged kernel plus Q-Delta's convolution kernels in Triton's CPU interpreter (tests/interpreter.py).
GPU: the ragged kernel against float64 and against each sequence run alone, with gradients.
"""

from __future__ import annotations

import pytest
import torch
from interpreter import run_in_interpreter
from seeds import stable_seed

from nanog1.core import Stack, StackConfig
from nanog1.core.kernels import ragged_reference_attention, reference_attention, routing_attention
from nanog1.core.ragged import LengthBucketSampler, Ragged, pack, repack, unpack
from nanog1.core.routing import route

LENGTHS = [37, 1, 70, 0, 5]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def packed_inputs(lengths, h=2, dqk=8, dv=16, v_heads=1, device="cpu", dtype=torch.float32):
    """q, k, v as the projections of a packed [T, H] batch give them: [1, h, T, d] token-major views."""
    total = sum(lengths)
    q = torch.randn(total, h, dqk, device=device, dtype=dtype).transpose(0, 1)[None]
    k = torch.randn(total, h, dqk, device=device, dtype=dtype).transpose(0, 1)[None]
    v = torch.randn(total, v_heads, dv, device=device, dtype=dtype).transpose(0, 1)[None]
    return q, k, v


def one_by_one(q, k, v, lengths, causal, scale):
    """Each sequence alone through the padded reference (float64)."""
    outs, start = [], 0
    for n in lengths:
        sl = slice(start, start + n)
        outs.append(reference_attention(q[:, :, sl].double(), k[:, :, sl].double(), v[:, :, sl].double(),
                                        causal=causal, key_padding_mask=None, scale=scale))
        start += n
    return torch.cat(outs, dim=2)


def test_ragged_from_lengths_offsets_and_validation():
    r = Ragged.from_lengths(LENGTHS)
    assert r.cu_seqlens.tolist() == [0, 37, 38, 108, 108, 113] and r.cu_seqlens.dtype == torch.int32
    assert (r.max_len, r.total) == (70, 113)
    with pytest.raises(ValueError, match=">= 0"):
        Ragged.from_lengths([3, -1])


def test_pack_unpack_round_trip_and_right_padding_check():
    torch.manual_seed(0)
    x = torch.randn(3, 6, 4)
    mask = torch.arange(6)[None] >= torch.tensor([[6], [2], [0]])
    packed, r = pack(x, mask)
    assert packed.shape == (1, 8, 4) and r.lengths == (6, 2, 0)
    padded, mask2 = unpack(packed, r)
    assert torch.equal(mask2, mask) and torch.equal(padded[~mask], x[~mask])
    assert bool((padded[mask] == 0).all()) and torch.equal(repack(padded, mask2), packed)
    with pytest.raises(ValueError, match="right padding"):
        pack(x, mask.flip(1))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("v_heads", [1, 2])
def test_ragged_reference_and_route_equal_one_by_one(causal, v_heads):
    torch.manual_seed(1)
    q, k, v = packed_inputs(LENGTHS, v_heads=v_heads)
    r = Ragged.from_lengths(LENGTHS)
    want = one_by_one(q, k, v, LENGTHS, causal, 0.35)
    assert rel(ragged_reference_attention(q, k, v, causal=causal, cu_seqlens=r.cu_seqlens, scale=0.35),
               want) < 1e-6
    assert rel(routing_attention(q, k, v, causal=causal, key_padding_mask=None, scale=0.35,
                                 cu_seqlens=r.cu_seqlens, max_len=r.max_len), want) < 1e-6
    assert rel(route(q, k, v, scale=0.35, causal=causal, ragged=r), want) < 1e-5


def test_ragged_rejects_padding_mask_or_batch():
    q, k, v = packed_inputs([3, 4])
    r = Ragged.from_lengths([3, 4])
    with pytest.raises(ValueError, match="B = 1"):
        routing_attention(q, k, v, causal=False, key_padding_mask=torch.zeros(1, 7, dtype=torch.bool),
                          scale=1.0, cu_seqlens=r.cu_seqlens, max_len=4)


@pytest.mark.parametrize("mixer", ["savo", "qcompass", "mha", "qdelta"])
def test_stack_on_packed_batch_equals_padded_batch(mixer):
    """A whole encoder stack on a packed batch equals the right-padded batch's real rows, gradients too."""
    torch.manual_seed(2)
    cfg = StackConfig(hidden_size=32, rank=16, heads=4, layers=2, causal=False, mixer=mixer)
    stack = Stack(cfg).double()
    lengths = [9, 3, 14]
    mask = torch.arange(14)[None] >= torch.tensor(lengths)[:, None]
    x = torch.randn(3, 14, 32, dtype=torch.float64).masked_fill(mask[..., None], 0.0)
    packed, r = pack(x, mask)
    xp = packed.clone().requires_grad_()
    xs = x.clone().requires_grad_()
    y_packed = stack(xp, ragged=r)
    y_padded = stack(xs, padding_mask=mask)
    assert rel(y_packed[0], y_padded[~mask]) < 1e-9
    g = torch.randn_like(y_packed)
    (gp,) = torch.autograd.grad(y_packed, xp, g)
    g_pad, _ = unpack(g, r)
    (gs,) = torch.autograd.grad(y_padded, xs, g_pad)
    assert rel(gp[0], gs[~mask]) < 1e-9


def test_bucket_sampler_groups_similar_lengths_under_the_budget():
    lengths = [10, 5000, 12, 4800, 11, 300, 280, 9000, 13, 310]
    sampler = LengthBucketSampler(lengths, max_tokens=9000, seed=3)
    batches = sampler.batches()
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    spans = sorted((min(lengths[i] for i in b), max(lengths[i] for i in b)) for b in batches)
    for b in batches:
        assert sum(lengths[i] for i in b) <= 9000 or len(b) == 1
    for (_, hi), (lo, _) in zip(spans, spans[1:], strict=False):
        assert hi <= lo  # batches are runs of the length order: no two interleave
    padded = LengthBucketSampler(lengths, max_tokens=9000, padded=True, seed=3)
    for b in padded.batches():
        assert len(b) * max(lengths[i] for i in b) <= 9000 or len(b) == 1
    assert sampler.batches() == sampler.batches() and len(sampler) == len(batches)
    sampler.set_epoch(1)
    assert sorted(map(sorted, sampler.batches())) == sorted(map(sorted, batches))
    with pytest.raises(ValueError, match="max_tokens"):
        LengthBucketSampler(lengths, max_tokens=0)
    capped = LengthBucketSampler(lengths, max_tokens=10**6, padded=True, max_batch=3, seed=3).batches()
    assert max(map(len, capped)) == 3 and sorted(i for b in capped for i in b) == list(range(len(lengths)))
    with pytest.raises(ValueError, match="max_batch"):
        LengthBucketSampler(lengths, max_tokens=9000, max_batch=0)


_INTERPRET_SCRIPT = """
import torch
import nanog1.core.kernels.routing_triton as rt
from nanog1.core.kernels import ragged_reference_attention
from nanog1.core.qdelta_conv import causal_conv_silu, causal_conv_silu_reference
torch.manual_seed(0)
worst = 0.0


def gap(outs, refs, leaves, ref_leaves):
    # worst relative error of the outputs and of every gradient, against float64
    g = [torch.randn(r.shape, dtype=torch.float64) for r in refs]
    got = [*outs, *torch.autograd.grad(outs, leaves, [x.float() for x in g])]
    want = [*refs, *torch.autograd.grad(refs, ref_leaves, g)]
    return max(((a.double() - b).norm() / b.norm()).item() for a, b in zip(got, want))


lens = [37, 1, 70, 0, 5]
cu = torch.tensor([0] + torch.tensor(lens).cumsum(0).tolist(), dtype=torch.int32)
T = int(cu[-1])
for tma, atomic in ((False, False), (False, True), (True, False), (True, True)):  # pointer or TMA loads
    rt.TMA, rt.ATOMIC_DQ = tma, atomic
    for causal in (False, True):
        for vh in (1, 2):
            q, k = (torch.randn(T, 2, 8).transpose(0, 1)[None] for _ in range(2))
            v = torch.randn(T, vh, 16).transpose(0, 1)[None]
            leaves = [t.clone().requires_grad_() for t in (q, k, v)]
            refs = [t.detach().double().requires_grad_() for t in (q, k, v)]
            out = rt.routing_attention_triton(*leaves, causal, None, 0.35, cu, max(lens))
            ref = ragged_reference_attention(*refs, causal=causal, cu_seqlens=cu, scale=0.35)
            worst = max(worst, gap([out], [ref], leaves, refs))
z, w = torch.randn(2, 70, 40), torch.randn(40, 4)
conv_leaves = [z.clone().requires_grad_(), w.clone().requires_grad_()]
conv_refs = [z.double().requires_grad_(), w.double().requires_grad_()]
worst = max(worst, gap([causal_conv_silu(*conv_leaves)], [causal_conv_silu_reference(*conv_refs)],
                       conv_leaves, conv_refs))
print("WORST", worst)
"""


@pytest.mark.slow
def test_ragged_kernel_and_qdelta_conv_in_interpreter_match_float64():
    """The ragged routing kernel (fwd, dq/dk/dv; both dQ variants; pointer and TMA loads) and Q-Delta's conv
    kernels, fp32."""
    assert float(run_in_interpreter(_INTERPRET_SCRIPT).split("WORST")[-1]) < 1e-5


CASES = [(atomic, causal, v_heads) for atomic in (True, False) for causal in (True, False)
         for v_heads in (1, 8)]


@pytest.mark.gpu
@pytest.mark.parametrize("atomic,causal,v_heads", CASES)
def test_ragged_kernel_equals_each_sequence_alone_on_gpu(atomic, causal, v_heads, monkeypatch):
    """bf16 ragged kernel vs float64 one-by-one (out, dq, dk, dv), lengths crossing block edges."""
    from nanog1.core.kernels import routing_triton

    torch.manual_seed(stable_seed("ragged", atomic, causal, v_heads))
    monkeypatch.setattr(routing_triton, "ATOMIC_DQ", atomic)
    lengths = [700, 1, 129, 0, 64, 2000, 33]
    r = Ragged.from_lengths(lengths, "cuda")
    q, k, v = packed_inputs(lengths, h=8, dqk=8, dv=64, v_heads=v_heads, device="cuda", dtype=torch.bfloat16)
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    out = routing_attention(*leaves, causal=causal, key_padding_mask=None, scale=8 ** -0.5,
                            cu_seqlens=r.cu_seqlens, max_len=r.max_len)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, leaves, g)
    refs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref = one_by_one(*refs, lengths, causal, 8 ** -0.5)
    ref_grads = torch.autograd.grad(ref, refs, g.double())
    for got, want in zip((out, *grads), (ref, *ref_grads), strict=True):
        assert got.shape == want.shape and bool(got.isfinite().all())
        assert rel(got, want) < 2e-2


@pytest.mark.gpu
def test_qdelta_conv_kernels_match_float64_on_gpu():
    from nanog1.core.qdelta_conv import causal_conv_silu, causal_conv_silu_reference

    torch.manual_seed(4)
    z, w = torch.randn(3, 1000, 640, device="cuda"), torch.randn(640, 4, device="cuda")
    zl, wl = z.to(torch.bfloat16).requires_grad_(), w.clone().requires_grad_()
    zr, wr = zl.detach().double().requires_grad_(), w.double().requires_grad_()
    y, yr = causal_conv_silu(zl, wl), causal_conv_silu_reference(zr, wr)
    g = torch.randn(yr.shape, dtype=torch.float64, device="cuda")
    got = (y, *torch.autograd.grad(y, (zl, wl), g.to(torch.bfloat16)))
    want = (yr, *torch.autograd.grad(yr, (zr, wr), g))
    for a, b in zip(got, want, strict=True):
        assert bool(a.isfinite().all()) and rel(a, b) < 1e-2


@pytest.mark.gpu
def test_route_sdpa_ragged_bidirectional_runs_nested_varlen_on_gpu():
    """MHA shapes on route()'s SDPA path: one nested (jagged) SDPA call, equal to one sequence at a time."""
    from nanog1.core import routing

    torch.manual_seed(5)
    lengths = [300, 7, 1000]
    r = Ragged.from_lengths(lengths, "cuda")
    q, k, v = packed_inputs(lengths, h=8, dqk=64, dv=64, v_heads=8, device="cuda", dtype=torch.bfloat16)
    got = routing._route_nested(q, k, v, scale=0.125, causal=False, ragged=r)  # raises if torch refuses
    assert rel(route(q, k, v, scale=0.125, causal=False, ragged=r, path="sdpa"), got) == 0.0
    assert rel(got, one_by_one(q, k, v, lengths, False, 0.125)) < 2e-2


def _event_encoder(**kw):
    from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig

    sizes = {"channel": 10, "consequence": 6, "gene": 20}
    vocab = {k: [f"{k}{i}" for i in range(n - 3)] for k, n in sizes.items()}
    cfg = MutationEncoderConfig(view="events", event_vocab=vocab, hidden=16, layers=2, rank=4, heads=2,
                                dropout=0.0, n_types=3, **kw)  # fmt: skip
    return MutationEncoder(cfg).double(), sizes


@pytest.mark.parametrize("mixer,pooling", [("savo", "mean"), ("savo", "cls"), ("mha_rank", "mean"),
                                            ("qdelta", "cls")])
def test_event_encoder_forward_packed_equals_padded(mixer, pooling, monkeypatch):
    """The whole event-view forward (CLS from the counts summary, gene bag, mean or CLS pooling; the
    masked heads) run packed, as on CUDA (only the real events embedded, each CLS in front of its
    tumour's events in one ragged row), equals the padded forward on CPU in float64: every output, the
    padded token states and the gradient of every parameter; a tumour with no events included."""
    from nanog1.encoder.model import MutationEncoder
    from nanog1.schema import N_CHANNELS

    torch.manual_seed(7)
    model, sizes = _event_encoder(mixer=mixer, gene_bag=["gene0", "gene1"], pooling=pooling)
    lengths = torch.tensor([9, 4, 0, 1])
    padding = torch.arange(9)[None] >= lengths[:, None]
    events = {k: torch.randint(3, n, (4, 9)).masked_fill(padding, 0) for k, n in sizes.items()}
    token_mask = torch.zeros(4, 9, dtype=torch.bool)
    token_mask[0, 5] = token_mask[1, 3] = token_mask[3, 0] = True
    counts = torch.poisson(torch.full((4, N_CHANNELS), 1.0)).double()
    bag = (torch.rand(4, 2) < 0.5).double()

    calls = []
    encode_packed = MutationEncoder._encode_packed
    monkeypatch.setattr(MutationEncoder, "_encode_packed", lambda *a: calls.append(1) or encode_packed(*a))

    def run(packs: bool, padding=padding, events=events):
        monkeypatch.setattr(MutationEncoder, "_packs", lambda self, x: packs)
        model.zero_grad()
        out = model(counts=counts, padding_mask=padding, token_mask=token_mask, events=events, gene_bag=bag)
        heads = [out.embedding, out.type_logits, out.tokens[~padding], *out.masked_logits.values()]
        torch.manual_seed(8)
        sum((h * torch.randn_like(h)).sum() for h in heads).backward()
        return [h.detach() for h in heads], {k: p.grad.clone() for k, p in model.named_parameters()}

    (packed, g_packed), (padded, g_padded) = run(True), run(False)
    assert len(calls) == 1  # the packed run took the packed path, the padded one did not
    for a, b in zip(packed, padded, strict=True):
        assert rel(a, b) < 1e-12
    assert g_packed.keys() == g_padded.keys()
    for k in g_padded:
        assert rel(g_packed[k], g_padded[k]) < 1e-10, k
    irregular = padding.clone()
    irregular[1] = irregular[1].flip(0)  # real events last: not right-padded, so the padded path
    (kept, _), (plain, _) = run(True, padding=irregular), run(False, padding=irregular)
    assert len(calls) == 1
    for a, b in zip(kept, plain, strict=True):
        assert rel(a, b) == 0.0


@pytest.mark.gpu
@pytest.mark.parametrize("mixer", ["savo", "qcompass"])
def test_event_encoder_packed_on_gpu_equals_padded(mixer, monkeypatch):
    """On CUDA the event view packs by default (the ragged Triton kernel): in bf16 autocast its outputs and
    parameter gradients match the padded forward's on the same batch (fp32 weights, 2e-2 relative)."""
    from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig
    from nanog1.schema import N_CHANNELS

    torch.manual_seed(9)
    sizes = {"channel": 10, "consequence": 6, "gene": 20}
    vocab = {k: [f"{k}{i}" for i in range(n - 3)] for k, n in sizes.items()}
    cfg = MutationEncoderConfig(view="events", event_vocab=vocab, hidden=128, layers=2, rank=32, heads=4,
                                dropout=0.0, n_types=3, mixer=mixer, gene_bag=["gene0", "gene1"])  # fmt: skip
    model = MutationEncoder(cfg).cuda()  # q/k 8 wide per head, v 32: shapes the ragged kernel takes
    lengths = torch.tensor([300, 17, 1, 129, 64])
    padding = (torch.arange(300)[None] >= lengths[:, None]).cuda()
    events = {k: torch.randint(3, n, (5, 300), device="cuda").masked_fill(padding, 0)
              for k, n in sizes.items()}
    counts = torch.poisson(torch.full((5, N_CHANNELS), 1.0)).cuda()
    bag = (torch.rand(5, 2) < 0.5).float().cuda()

    calls = []
    encode_packed = MutationEncoder._encode_packed
    monkeypatch.setattr(MutationEncoder, "_encode_packed", lambda *a: calls.append(1) or encode_packed(*a))

    def run(packed: bool):
        model.cfg.packed = packed
        model.zero_grad()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(counts=counts, padding_mask=padding, events=events, gene_bag=bag)
        heads = [out.embedding.float(), out.type_logits.float()]
        torch.manual_seed(10)
        sum((h * torch.randn_like(h)).sum() for h in heads).backward()
        return heads, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    (packed, g_packed), (padded, g_padded) = run(True), run(False)
    assert len(calls) == 1  # the default (packed) run took the packed path
    for a, b in zip(packed, padded, strict=True):
        assert rel(a, b) < 2e-2
    assert g_packed.keys() == g_padded.keys()
    for k in g_padded:
        assert rel(g_packed[k], g_padded[k]) < 5e-2, k
