"""Training throughput of Replay and DER++ against Naive, in one run.

Protocol of the rehearsal chapters: Split Fashion-MNIST (5 x 12,000 samples), MLP 784-256-256-10,
SGD lr 0.01 momentum 0.9, batch 128 (plus 128 memory samples for Replay, 2 x 128 for DER++), one epoch,
memory 500. Samples/s counts the current experience's samples over training time (evaluation excluded).
The three run alternately, `--repeats` times; ratios use the medians. Run: python bench/rehearsal_throughput.py
"""
import argparse, json, statistics
import torch
from clnb.template import Naive
from clnb.plugins.replay import ReplayPlugin
from clnb.protocol import split_fmnist_run
from clnb.strategies.der import DER

RUNS = {"naive": lambda: dict(strategy_cls=Naive),
        "replay_500": lambda: dict(strategy_cls=Naive, plugins=[ReplayPlugin(500)]),
        "derpp_500": lambda: dict(strategy_cls=DER, mem_size=500, alpha=0.1, beta=0.5)}

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("--repeats", type=int, default=3); p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    res = {k: [] for k in RUNS}
    for r in range(a.repeats):
        for k, kw in RUNS.items(): res[k].append(split_fmnist_run(seed=r, device=a.device, **kw())[1])
    med = {k: statistics.median(v) for k, v in res.items()}
    for k, v in med.items(): print(f"{k:12s} {v:9.0f} samples/s   ratio to naive {v / med['naive']:.2f}")
    print(json.dumps({k: round(v) for k, v in med.items()}))
