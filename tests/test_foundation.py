"End-to-end checks across the data, engine, template and evaluation chapters."
import subprocess, sys
import pytest, torch
from torch import nn
from clnb.datasets import split_fmnist
from clnb.models import MLP, MultiHeadMLP
from clnb.engine import set_seed
from clnb.template import Naive
from clnb.evaluation import EvaluationPlugin, accuracy_metrics

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
    assert 0.15 < s.evaluator.get_last_metrics()["Top1_Acc_Stream/eval_phase/test_stream/Task000"] < 0.3

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
