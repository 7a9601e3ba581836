"End-to-end checks across the data, engine, template and evaluation chapters."
import subprocess, sys
import pytest, torch
from torch import nn
from clnb.datasets import split_fmnist
from clnb.models import MLP, MultiHeadMLP
from clnb.engine import set_seed
from clnb.template import Naive
from clnb.evaluation import EvaluationPlugin, accuracy_metrics, stream_acc_key

def run(seed, train_size=5000, model=None, task=False):
    set_seed(seed)
    bm = split_fmnist(n_experiences=5, seed=None, return_task_id=task, train_size=train_size, test_size=2000)
    model = model or MLP(784, (256, 256), 10)
    s = Naive(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), train_mb_size=128,
              eval_mb_size=1024, device="cpu", evaluator=EvaluationPlugin(accuracy_metrics(experience=True, stream=True)))
    for e in bm.train_stream: s.train(e); s.eval(bm.test_stream)
    return s

def test_catastrophic_forgetting_on_real_data():
    s = run(0, train_size=20000)
    R = s.evaluator.accuracy_matrix()
    assert R.shape == (5, 5)
    assert R.diagonal().min() > 0.85, R          # each experience is learned...
    assert R[4, :4].max() < 0.2, R               # ...and forgotten once the next ones come
    assert 0.15 < s.evaluator.get_last_metrics()[stream_acc_key()] < 0.3

def test_same_seed_same_weights_bit_for_bit():
    a, b = run(1, 2000), run(1, 2000)
    for p, q in zip(a.model.parameters(), b.model.parameters()): assert torch.equal(p, q)
    c = run(2, 2000)
    assert not torch.equal(next(a.model.parameters()), next(c.model.parameters()))

def test_task_incremental_multihead_beats_single_head():
    s = run(0, 5000, model=MultiHeadMLP(784, 256), task=True)
    R = s.evaluator.accuracy_matrix()
    assert R[4].mean() > 0.8, R                   # heads protect old tasks from interference at the output

def test_training_under_no_grad_still_trains():
    set_seed(0); m = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    bm = split_fmnist(n_experiences=5, seed=None, train_size=500, test_size=100)
    s = Naive(m, torch.optim.SGD(m.parameters(), lr=0.1), train_mb_size=64, device="cpu")
    w = m[1].weight.detach().clone()
    with torch.no_grad(): s.train(bm.train_stream[0])
    assert not torch.equal(w, m[1].weight.detach())

def test_import_all_is_complete():
    out = subprocess.run([sys.executable, "-c", "from clnb.all import *; print(len(__import__('clnb.all').all.__all__))"],
                         capture_output=True, text=True, check=True).stdout
    assert int(out) > 30

def test_loop_cache_probes_once_and_forgets_a_changed_model():
    "The template's caches live in its LoopCache: one probe per model signature, a new probe after a change."
    from clnb.data import CLDataset, split_benchmark
    from clnb.engine import LoopCache
    set_seed(0)
    ds = CLDataset(torch.randn(40, 4), torch.arange(40) % 4)
    bm = split_benchmark(ds, ds, n_experiences=2, seed=None)
    m = nn.Linear(4, 4)
    s = Naive(m, torch.optim.SGD(m.parameters(), lr=0.1), train_mb_size=8, device="cpu",
              evaluator=EvaluationPlugin(accuracy_metrics(stream=True)))
    assert isinstance(s._cache, LoopCache)
    probes = []
    orig = type(s)._output_width
    s._output_width = lambda *a, **k: probes.append(1) or orig(s, *a, **k)
    for e in bm.train_stream: s.train(e)
    assert len(probes) == 1
    s.model.bias = nn.Parameter(torch.zeros(4))       # a new parameter: a new signature
    s.train(bm.train_stream[0])
    assert len(probes) == 2 and any(p is s.model.bias for g in s.optimizer.param_groups for p in g["params"])

def test_check_model_and_optimizer_runs_before_each_training_experience():
    "As in avalanche, `check_model_and_optimizer` adapts the model and the optimizer once per training experience."
    from clnb.data import CLDataset, split_benchmark
    ds = CLDataset(torch.randn(40, 4), torch.arange(40) % 4)
    bm = split_benchmark(ds, ds, n_experiences=2, seed=None)
    m = nn.Linear(4, 4); calls = []
    class Spy(Naive):
        def check_model_and_optimizer(self, reset_optimizer_state=False, **kw):
            calls.append(self.experience.current_experience)
            return super().check_model_and_optimizer(reset_optimizer_state, **kw)
    s = Spy(m, torch.optim.SGD(m.parameters(), lr=0.1), train_mb_size=8, device="cpu",
            evaluator=EvaluationPlugin(accuracy_metrics(stream=True)))
    s.train(bm.train_stream); s.eval(bm.test_stream)
    assert calls == [0, 1]

def test_dataloader_arguments_are_honoured_or_refused():
    "pin_memory and persistent_workers reach the DataLoader fallback, or are refused with their name."
    from clnb.data import CLDataset, split_benchmark
    ds = CLDataset(torch.randn(16, 4), torch.arange(16) % 4)
    bm = split_benchmark(ds, ds, n_experiences=2, seed=None)
    m = nn.Linear(4, 4)
    s = Naive(m, torch.optim.SGD(m.parameters(), lr=0.1), train_mb_size=8, device="cpu",
              evaluator=EvaluationPlugin())
    with pytest.raises(ValueError, match="persistent_workers: needs num_workers > 0"):
        s.train(bm.train_stream[0], persistent_workers=True)
    with pytest.raises(TypeError, match="pin_memory: expected a bool or None"):
        s.train(bm.train_stream[0], pin_memory="yes")
    with pytest.raises(ValueError, match="num_workers: expected a non-negative int"):
        s.train(bm.train_stream[0], num_workers=-1)
