"""Where Naive's training time goes: model compute, data slicing, the template's loop, the metrics.

An ablation on the standard workload (one pass over Split Fashion-MNIST's 60,000 training samples, 5
experiences, batch 128), each variant timed in this process, alternating, `--repeats` times (medians):

  compute   forward + loss + backward + SGD step on minibatches sliced beforehand (the model's own cost)
  floor     the plain loop: slice with a permutation, then compute (bench/worker_plain.py's loop)
  loop      clnb's Naive with an evaluator that computes nothing (template + TensorLoader + callbacks)
  naive     clnb's Naive with its default evaluator (accuracy and loss at epoch/experience/stream level)

Then a cProfile of `naive` grouped by where the time is spent (torch kernels, torch Python, clnb Python).
Run: python bench/profile_naive.py [--repeats 3] [--train-size N]
"""
import argparse, cProfile, pstats, statistics, sys
from pathlib import Path
import torch
from torch import nn
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C

def batches(bm, bs):
    "The minibatches of one pass, sliced beforehand (the order of a fresh permutation per experience)."
    out = []
    for e in bm.train_stream:
        x, y = e.dataset.x, e.dataset.y; perm = torch.randperm(len(x))
        out += [(x[perm[i:i + bs]], y[perm[i:i + bs]]) for i in range(0, len(x), bs)]
    return out

def compute(bm, pre):
    torch.manual_seed(0); m = C.mlp(); opt = C.sgd(m); f = nn.CrossEntropyLoss()
    with C.Timer() as t:
        for x, y in pre: opt.zero_grad(set_to_none=True); f(m(x), y).backward(); opt.step()
    return t

def floor(bm, pre=None, bs=128):
    torch.manual_seed(0); m = C.mlp(); opt = C.sgd(m); f = nn.CrossEntropyLoss()
    with C.Timer() as t:
        for e in bm.train_stream:
            x, y = e.dataset.x, e.dataset.y; perm = torch.randperm(len(x))
            for i in range(0, len(x), bs):
                idx = perm[i:i + bs]; opt.zero_grad(set_to_none=True); f(m(x[idx]), y[idx]).backward(); opt.step()
    return t

def clnb_naive(bm, metrics=True):
    from clnb.models import MLP
    from clnb.template import Naive
    from clnb.evaluation import EvaluationPlugin
    torch.manual_seed(0); m = MLP(784, (256, 256), 10)
    kw = {} if metrics else {"evaluator": EvaluationPlugin()}
    s = Naive(m, C.sgd(m), train_mb_size=128, eval_mb_size=1024, device="cpu", **kw)
    with C.Timer() as t:
        for e in bm.train_stream: s.train(e)
    return t

def where(stats:pstats.Stats) -> dict:
    "Seconds of own time (tottime) by origin: torch C++ calls, torch Python, clnb Python, the rest."
    out = dict(torch_kernels=0.0, torch_python=0.0, clnb=0.0, other=0.0)
    for (file, line, fn), (cc, nc, tt, ct, callers) in stats.stats.items():
        if file == "~" and ("torch" in fn or "method" in fn): out["torch_kernels"] += tt
        elif "/torch/" in file: out["torch_python"] += tt
        elif "/clnb/" in file: out["clnb"] += tt
        else: out["other"] += tt
    return out

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3); p.add_argument("--train-size", type=int, default=None)
    a = p.parse_args()
    C.setup()
    from clnb.datasets import split_fmnist
    bm = split_fmnist(5, seed=None, train_size=a.train_size)
    n = sum(len(e.dataset) for e in bm.train_stream)
    pre = batches(bm, 128)
    runs = {"compute": lambda: compute(bm, pre), "floor": lambda: floor(bm), "loop": lambda: clnb_naive(bm, False),
            "naive": lambda: clnb_naive(bm, True)}
    for f in runs.values(): f()  # warm up (allocator, first-call costs)
    t = {k: [] for k in runs}
    for _ in range(a.repeats):
        for k, f in runs.items(): t[k].append(f())
    print(f"{n} training samples, {torch.get_num_threads()} threads, {a.repeats} repeats; medians of wall / CPU seconds")
    for clock in ("total", "cpu"):
        med = {k: statistics.median(getattr(x, clock) for x in v) for k, v in t.items()}
        print(f"{'wall clock' if clock == 'total' else 'CPU time'}:")
        for k, v in med.items(): print(f"  {k:8s} {v:7.3f} s  {n / v:9,.0f} samples/s  {v / med['compute']:5.2f}x compute")
        print(f"  slicing (floor - compute) {med['floor'] - med['compute']:+.3f} s, template loop (loop - floor) "
              f"{med['loop'] - med['floor']:+.3f} s, metrics (naive - loop) {med['naive'] - med['loop']:+.3f} s; "
              f"Naive / floor speed {med['floor'] / med['naive']:.3f}")
    pr = cProfile.Profile(); pr.enable(); clnb_naive(bm, True); pr.disable()
    st = pstats.Stats(pr); w = where(st); tot = sum(w.values())
    print("cProfile of naive, own time by origin: " + ", ".join(f"{k} {v:.2f} s ({v / tot:.0%})" for k, v in w.items()))
    st.sort_stats("tottime").print_stats(12)

if __name__ == "__main__":
    main()
