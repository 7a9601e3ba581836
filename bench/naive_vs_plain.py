"""Naive's training throughput against a plain PyTorch loop over the same in-memory tensors.

Same model (MLP 784-256-256-10), batch 128, SGD lr 0.01 momentum 0.9, one epoch per experience of
Split Fashion-MNIST (5 x 12,000 samples), 2 CPU threads. Both run in this process, alternating,
`--repeats` times; the ratio uses the median of each. Run: python bench/naive_vs_plain.py
"""
import argparse, json, statistics, time
import torch
from torch import nn
from clnb.datasets import split_fmnist
from clnb.models import MLP
from clnb.template import Naive
from clnb.evaluation import EvaluationPlugin
from clnb.engine import set_seed

def make(seed):
    set_seed(seed); m = MLP(784, (256, 256), 10)
    return m, torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

def plain(bm, seed, bs=128):
    "The floor: index slices of the tensors, no callbacks, no metrics."
    model, opt = make(seed); loss_fn = nn.CrossEntropyLoss(); n = 0
    t0 = time.perf_counter()
    for exp in bm.train_stream:
        x, y = exp.dataset.x, exp.dataset.y
        perm = torch.randperm(len(x))
        for i in range(0, len(x), bs):
            idx = perm[i:i+bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx]); loss.backward(); opt.step(); n += len(idx)
    return n / (time.perf_counter() - t0)

def naive(bm, seed, evaluator="default", bs=128):
    model, opt = make(seed)
    kw = {} if evaluator == "default" else {"evaluator": evaluator}
    s = Naive(model, opt, train_mb_size=bs, device="cpu", **kw)
    n = sum(len(e.dataset) for e in bm.train_stream)
    t0 = time.perf_counter()
    for exp in bm.train_stream: s.train(exp)
    return n / (time.perf_counter() - t0)

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("--repeats", type=int, default=3); p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    bm = split_fmnist(n_experiences=5, seed=0)
    res = {"plain": [], "naive_default_evaluator": [], "naive_no_metrics": []}
    for r in range(a.repeats):
        res["plain"].append(plain(bm, r))
        res["naive_default_evaluator"].append(naive(bm, r))
        res["naive_no_metrics"].append(naive(bm, r, evaluator=None))
    med = {k: statistics.median(v) for k, v in res.items()}
    for k, v in med.items(): print(f"{k:26s} {v:9.0f} samples/s   ratio to plain {v / med['plain']:.2f}")
    print(json.dumps({k: round(v) for k, v in med.items()}))
