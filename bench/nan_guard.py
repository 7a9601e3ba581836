"""Cost of the NaN/inf loss guard on the CPU: Naive with nan_policy='raise' (checks every iteration) against 'off'.

Two workloads: the standard MLP 784-256-256-10 with batch 128, and a worst case for the guard (a linear model,
batch 16: the iteration itself is as cheap as it gets). Split Fashion-MNIST, one epoch per experience, runs
alternating in this process `--repeats` times; the ratio uses the median of each. Also the guard's own cost per
call, timed on a scalar loss. Run: python bench/nan_guard.py
"""
import argparse, json, statistics, time
import torch
from torch import nn
from clnb.datasets import split_fmnist
from clnb.models import MLP
from clnb.template import Naive
from clnb.evaluation import EvaluationPlugin
from clnb.engine import set_seed

def run(bm, policy, model_fn, bs):
    set_seed(0); m = model_fn()
    s = Naive(m, torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9), train_mb_size=bs, device="cpu", evaluator=EvaluationPlugin())
    s.nan_policy = policy
    n = sum(len(e.dataset) for e in bm.train_stream)
    t0 = time.perf_counter()
    for e in bm.train_stream: s.train(e)
    return n / (time.perf_counter() - t0)

def guard_call_us(k=20000):
    m = nn.Linear(2, 2); s = Naive(m, torch.optim.SGD(m.parameters(), lr=0.1), device="cpu")
    s.loss = torch.tensor(0.5, requires_grad=True) * 2
    t0 = time.perf_counter()
    for _ in range(k): s._nonfinite_loss()
    return (time.perf_counter() - t0) / k * 1e6

if __name__ == "__main__":
    ap = argparse.ArgumentParser(); ap.add_argument("--repeats", type=int, default=3); ap.add_argument("--train-size", type=int, default=20000)
    a = ap.parse_args()
    torch.set_num_threads(2)
    bm = split_fmnist(5, seed=None, train_size=a.train_size)
    out = {"guard_call_us": round(guard_call_us(), 2)}
    for name, fn, bs in [("mlp256x2_b128", lambda: MLP(784, (256, 256), 10), 128), ("linear_b16", lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), 16)]:
        r = {"raise": [], "off": []}
        for _ in range(a.repeats):
            for p in ("raise", "off"): r[p].append(run(bm, p, fn, bs))
        med = {p: statistics.median(v) for p, v in r.items()}
        it_us = bs / med["off"] * 1e6
        out[name] = {"samples_per_s_raise": round(med["raise"]), "samples_per_s_off": round(med["off"]),
                     "ratio_raise_over_off": round(med["raise"] / med["off"], 3),
                     "iteration_us_off": round(it_us, 1), "guard_share_of_iteration": round(out["guard_call_us"] / it_us, 5)}
    print(json.dumps(out, indent=1))
