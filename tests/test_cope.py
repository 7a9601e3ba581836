"CoPE across modules: online streams through the template, determinism, evaluation between trainings, bad input."
import pytest, torch
from torch import nn
from clnb.data import data_incremental_benchmark
from clnb.template import Naive
from clnb.engine import set_seed
from clnb.evaluation import EvaluationPlugin, accuracy_metrics
from clnb.plugins.cope import CoPEPlugin, PPPloss
from clnb.memory import ClassBalancedReservoir
from clnb.protocol import run_online, toy_benchmark

def online(size=5):
    blobs = toy_benchmark(3, 8, n_classes=6, n_samples=240, separation=4., test_seed=1)
    return data_incremental_benchmark(blobs, size)

def train_cope(bm, seed=0, evaluate_every=0, fast=False):
    set_seed(seed); model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 6))
    cope = CoPEPlugin(mem_size=30, n_classes=6, p_size=6, alpha=0.9, fast=fast)
    s = Naive(model, torch.optim.SGD(model.parameters(), lr=0.01), train_mb_size=5, eval_mb_size=120, device="cpu",
              plugins=[cope], evaluator=EvaluationPlugin(accuracy_metrics(stream=True)))
    for i, e in enumerate(bm.train_stream):
        s.train(e)
        if evaluate_every and i % evaluate_every == 0: s.eval(bm.test_stream)
    return s, cope, s.eval(bm.test_stream)["Top1_Acc_Stream/eval_phase/test_stream/Task000"]

def test_online_stream_learns_all_classes():
    bm = online()
    assert len(bm.train_stream) == 48
    s, cope, acc = train_cope(bm)
    assert acc > 0.7    # fine-tuning ends near 1/3 here (the last 2 of 6 classes); seeds 0-5 give 0.75-0.96 (0.746 at worst)
    assert cope.memory.class_counts().tolist() == [5] * 6
    torch.testing.assert_close(cope.prototypes.norm(dim=1), torch.ones(6))

def test_deterministic_and_eval_between_trainings_changes_nothing():
    bm = online()
    _, c1, a1 = train_cope(bm, seed=3)
    _, c2, a2 = train_cope(bm, seed=3, evaluate_every=7)   # periodic eval must not touch the prototypes or the memory
    assert a1 == a2
    assert torch.equal(c1.prototypes, c2.prototypes) and torch.equal(c1.memory.y, c2.memory.y)

def test_model_probed_once_on_an_online_stream():
    bm = online(); calls = []
    set_seed(0); model = nn.Linear(8, 6); model.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    s = Naive(model, torch.optim.SGD(model.parameters(), lr=0.05), train_mb_size=5, device="cpu", evaluator=None)
    for e in bm.train_stream[:10]: s.train(e)
    assert calls == [1] + [5] * 10            # one probe of one sample, then one step per experience

def test_bad_input():
    with pytest.raises(ValueError, match="p_size: expected a positive int, got 0"): CoPEPlugin(p_size=0)
    with pytest.raises(ValueError, match="n_classes: expected a positive int"): ClassBalancedReservoir(10, 0)
    with pytest.raises(ValueError, match="T: expected a finite number > 0, got 0.0"): PPPloss({}, T=0.)
    with pytest.raises(TypeError, match="fast: expected"): CoPEPlugin(fast=1)
    with pytest.raises(ValueError, match="method: expected 'cope', 'replay' or 'naive'"): run_online("ewc")
    with pytest.raises(ValueError, match="p_size: expected the model to output"):
        set_seed(0); m = nn.Linear(8, 4)
        Naive(m, torch.optim.SGD(m.parameters(), lr=0.1), train_mb_size=5, device="cpu",
              plugins=[CoPEPlugin(10, 6, p_size=6)]).train(online().train_stream[0])

@pytest.mark.parametrize("fast", [False, True])
def test_criterion_left_alone(fast):
    "The plugin adds the PPP loss to `strategy.loss`; the strategy's criterion is the one it was built with."
    s, cope, _ = train_cope(online(), fast=fast)
    assert type(s._criterion) is nn.CrossEntropyLoss and cope.ppp_loss.fast is fast

def test_fast_switch_equals_readable():
    "Loss and gradient of the closed form equal the readable per-class loss; a short run ends at the same accuracy."
    torch.manual_seed(0)
    for B, C in ((1, 1), (5, 3), (20, 6), (64, 10)):
        x = torch.randn(B, 8, requires_grad=True); y = torch.randint(0, C, (B,))
        P, has = nn.functional.normalize(torch.randn(C, 8), dim=1), torch.rand(C) < 0.8
        a, b = PPPloss((P, has), T=0.1, fast=True)(x, y), PPPloss((P, has), T=0.1)(x, y)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        if b.requires_grad:
            torch.testing.assert_close(torch.autograd.grad(a, x)[0], torch.autograd.grad(b, x)[0], rtol=1e-4, atol=1e-5)
    bm = online()
    _, c0, a0 = train_cope(bm, fast=False); _, c1, a1 = train_cope(bm, fast=True)
    assert abs(a0 - a1) <= 0.03, (a0, a1)
    assert c0.memory.class_counts().tolist() == c1.memory.class_counts().tolist()

def test_readable_ppp_loss_finite_where_a_probability_rounds_to_one():
    "A sample of class 1 lying on class 0's prototype and samples: P(0 | z) is 1 in float32, log(1 - P) must not be -inf."
    import torch.nn.functional as F
    from clnb.plugins.cope import PPPloss
    P, has = F.normalize(torch.tensor([[1., 0.], [0., 1.]]), dim=1), torch.tensor([True, True])
    y = torch.tensor([0, 0, 1])
    values = []
    for fast in (False, True):
        x = torch.tensor([[1., 0.], [1., 1e-4], [1., 0.]], requires_grad=True)
        v = PPPloss((P, has), T=0.05, fast=fast)(x, y); v.backward()
        assert torch.isfinite(v) and torch.isfinite(x.grad).all(), fast
        values.append(float(v))
    assert abs(values[0] - values[1]) <= 1e-4 * abs(values[1])
