"End-to-end tests of GEM and A-GEM: memory sizes, the quadprog fallback in training, fast = readable, determinism."
import io, pytest, torch
from torch import nn
from clnb.data import CLDataset, split_benchmark
from clnb.engine import set_seed
from clnb.template import Naive, SupervisedTemplate
from clnb.models import IncrementalClassifier
from clnb.evaluation import EvaluationPlugin
from clnb.plugins.gem import GEMPlugin
from clnb.plugins.agem import AGEMPlugin

def blobs(n_per_class=60, classes=6, d=10, n_exp=3):
    "Gaussian blobs, two classes per experience."
    g = torch.Generator().manual_seed(0)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    centers = torch.randn(classes, d, generator=g) * 3
    x = centers[y] + torch.randn(len(y), d, generator=g)
    return split_benchmark(CLDataset(x, y), CLDataset(x, y), n_exp, shuffle=False)

def train(plugin, model=None, seed=0, bm=None):
    bm = bm or blobs()
    set_seed(seed); model = model or nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 6))
    s = Naive(model, torch.optim.SGD(model.parameters(), lr=0.05), train_mb_size=16, device="cpu", plugins=[plugin],
              evaluator=None)
    for exp in bm.train_stream: s.train(exp)
    return s

@pytest.mark.parametrize("make", [lambda: GEMPlugin(25, 0.5), lambda: AGEMPlugin(25, 30)])
def test_memory_holds_exactly_patterns_per_experience(make):
    p = make(); train(p)
    assert sorted(p.memory_y) == [0, 1, 2]
    for k in range(3):
        assert len(p.memory_x[k]) == len(p.memory_y[k]) == len(p.memory_tid[k]) == 25
        assert set(p.memory_y[k].tolist()) <= {2 * k, 2 * k + 1}          # patterns of that experience only
    assert p.memory_size == 75

@pytest.mark.parametrize("fast", [False, True])
def test_gem_fallback_inside_training(monkeypatch, fast):
    "When quadprog raises 'constraints are inconsistent', training goes on with the coordinate-descent solution."
    ref = GEMPlugin(25, 0.5, fast=fast); s_ref = train(ref)
    assert ref.n_projections > 0 and ref.n_fallbacks == 0
    import quadprog
    def inconsistent(*a, **k): raise ValueError("constraints are inconsistent, no solution")
    monkeypatch.setattr(quadprog, "solve_qp", inconsistent)
    fb = GEMPlugin(25, 0.5, fast=fast); s_fb = train(fb)
    assert fb.n_fallbacks == fb.n_projections > 0
    for a, b in zip(s_ref.model.parameters(), s_fb.model.parameters()):   # the same QP, solved another way
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)

def test_gem_fast_reference_gradients_stay_in_one_pass(monkeypatch):
    "fast=True on a plain MLP: every iteration's G from one grouped forward/backward, never one backward per memory."
    import clnb.plugins.gem as gem_mod
    calls = []
    real = gem_mod.grouped_reference_gradients
    def counted(*a, **k): calls.append(k.get("check")); return real(*a, **k)
    def no_loop(*a, **k): raise AssertionError("reference_gradients called: GEM fell back to one backward per memory")
    monkeypatch.setattr(gem_mod, "grouped_reference_gradients", counted)
    monkeypatch.setattr(gem_mod, "reference_gradients", no_loop)
    p = GEMPlugin(25, 0.5, fast=True); train(p)
    assert p.grad_method == "grouped" and p.G.shape[0] == 2
    n_iters = 2 * -(-120 // 16)                       # experiences 1 and 2 (8 minibatches each) have a memory
    assert calls == [True] + [False] * (n_iters - 1)  # one call per iteration, checked against autograd the first time

def test_gem_readable_path_is_the_default(monkeypatch):
    "GEMPlugin(...) without `fast` computes G with one plain backward per memory and never touches the fast path."
    import clnb.plugins.gem as gem_mod
    def no_fast(*a, **k): raise AssertionError("the fast path was taken")
    for name in ("grouped_reference_gradients", "fast_reference_gradients", "fast_projection", "gram"):
        monkeypatch.setattr(gem_mod, name, no_fast)
    p = GEMPlugin(25, 0.5); train(p)
    assert p.fast is False and p.grad_method is None and p.n_projections > 0

@pytest.mark.parametrize("model", ["mlp", "growing"])
def test_gem_fast_equals_readable(model):
    "The same stream from the same seed: fast=True ends with the readable plugin's weights, up to float32 rounding."
    def make():
        torch.manual_seed(0)
        if model == "mlp": return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 6))
        return nn.Sequential(nn.Linear(10, 16), nn.ReLU(), IncrementalClassifier(16, 2))
    r, f = GEMPlugin(25, 0.5), GEMPlugin(25, 0.5, fast=True)
    sr, sf = train(r, model=make()), train(f, model=make())
    assert f.grad_method == "grouped" and r.n_projections == f.n_projections > 0
    for a, b in zip(sr.model.parameters(), sf.model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)

def test_gem_with_a_growing_head():
    "The reference gradients follow a model whose classifier grows between experiences."
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), IncrementalClassifier(16, 2))
    p = GEMPlugin(20, 0.5); s = train(p, model=model)
    D = sum(q.numel() for q in s.model.parameters())
    assert p.G.shape == (2, D) and D == 10 * 16 + 16 + 16 * 6 + 6

@pytest.mark.parametrize("make", [lambda: GEMPlugin(25, 0.5), lambda: GEMPlugin(25, 0.5, fast=True),
                                  lambda: AGEMPlugin(25, 30)])
def test_state_is_plain_and_saveable(make):
    "Plugin state holds tensors and plain values, never the strategy or a module, and survives torch.save."
    p = make(); train(p)
    def plain(v):
        if isinstance(v, dict): return all(plain(k) and plain(w) for k, w in v.items())
        if isinstance(v, (list, tuple)): return all(plain(w) for w in v)
        return v is None or isinstance(v, (torch.Tensor, int, float, bool, str))
    for k, v in vars(p).items(): assert plain(v), k
    buf = io.BytesIO(); torch.save(vars(p), buf); buf.seek(0)
    q = type(p).__new__(type(p)); vars(q).update(torch.load(buf, weights_only=True))
    for k in range(3): assert torch.equal(q.memory_x[k], p.memory_x[k])

@pytest.mark.parametrize("make", [lambda: GEMPlugin(25, 0.5), lambda: GEMPlugin(25, 0.5, fast=True),
                                  lambda: AGEMPlugin(25, 30)])
def test_same_seed_same_weights(make):
    a, b, c = train(make(), seed=1), train(make(), seed=1), train(make(), seed=2)
    wa, wb, wc = (torch.cat([q.flatten() for q in s.model.parameters()]) for s in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)

def test_gem_protects_old_experiences():
    "On the blobs, GEM keeps more of the first experience than Naive."
    bm = blobs()
    def acc_first(plugins):
        set_seed(0); m = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 6))
        s = Naive(m, torch.optim.SGD(m.parameters(), lr=0.05), train_mb_size=16, device="cpu", plugins=plugins,
                  evaluator=None)
        for exp in bm.train_stream: s.train(exp)
        x, y = bm.test_stream[0].dataset.x, bm.test_stream[0].dataset.y
        return (m(x).argmax(1) == y).float().mean().item()
    assert acc_first([GEMPlugin(25, 0.5)]) > acc_first([]) + 0.2
    assert acc_first([GEMPlugin(25, 0.5, fast=True)]) > acc_first([]) + 0.2
    assert acc_first([AGEMPlugin(25, 50)]) > acc_first([]) + 0.2

def test_bad_input():
    with pytest.raises(ValueError, match="patterns_per_experience: expected a positive int, got 0"): GEMPlugin(0, 0.5)
    with pytest.raises(ValueError, match="memory_strength: expected a finite number >= 0, got -0.1"):
        GEMPlugin(10, -0.1)
    with pytest.raises(TypeError, match="fast: expected bool, got int"): GEMPlugin(10, 0.5, fast=1)
    with pytest.raises(ValueError, match="sample_size: expected a positive int, got -5"): AGEMPlugin(10, -5)
    with pytest.raises(ValueError, match="patterns_per_experience: expected a positive int, got True"):
        AGEMPlugin(True, 5)
