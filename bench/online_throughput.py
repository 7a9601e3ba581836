"""Training throughput on an online stream: Split Fashion-MNIST cut into experiences of 10 samples (6,000 calls to `train`).

Measured in one run, alternating, `--repeats` times (medians), on `--experiences` experiences of the stream:
- plain:        the floor, a PyTorch loop doing one SGD step per 10-sample experience (no callbacks, no metrics);
- naive:        `Naive` (default evaluator), one `train(exp)` per experience, the template as it is;
- naive_uncached: the same, with the template's per-call caches dropped before every call and the model switched to
                training mode and moved to the device every time (what the template did before they were added);
- cope:         `CoPEPlugin` (memory 2000, 32-d embedding): each step sees 10 new + 10 replayed samples, with the
                readable PPP loss (autograd, the default);
- cope_fast:    the same with `fast=True` (the closed-form PPP loss and prototype update of 18_cope's "Making it fast").
MLP 784-256-256-(10 or 32), SGD lr 0.01. Run: python bench/online_throughput.py [--threads 1] [--device cpu]
One thread is the default: with minibatches of 10-20 samples, intra-op threads only add synchronisation (on the 2-core
machine, loaded by other processes: CoPE 5,182 samples/s with 1 thread, 1,634 with 2).
"""
import argparse, json, statistics, time
import torch
from torch import nn
from clnb.datasets import split_fmnist
from clnb.data import data_incremental_benchmark
from clnb.models import MLP
from clnb.template import Naive
from clnb.engine import set_seed
from clnb.plugins.cope import CoPEPlugin

def _sync(device):
    if torch.device(device).type == "cuda": torch.cuda.synchronize()

def plain(exps, device):
    set_seed(0); model = MLP(784, (256, 256), 10).to(device); opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss(); data = [(e.dataset.x.to(device), e.dataset.y.to(device)) for e in exps]
    t0 = time.perf_counter()
    for x, y in data:
        perm = torch.randperm(len(x), device=device)
        opt.zero_grad(set_to_none=True); loss_fn(model(x[perm]), y[perm]).backward(); opt.step()
    _sync(device)
    return 10 * len(exps) / (time.perf_counter() - t0)

class UncachedNaive(Naive):
    "Naive with the per-call caches of the template dropped before every `train` (the template before they existed)."
    def train(self, experiences, eval_streams=None, **kwargs):
        self._cache.reset()
        self.model.train(); self.model.to(self.device)
        return super().train(experiences, eval_streams, **kwargs)

def strategy_run(exps, device, kind):
    set_seed(0)
    model = MLP(784, (256, 256), 32 if kind.startswith("cope") else 10)
    cls = UncachedNaive if kind == "naive_uncached" else Naive
    plugins = [CoPEPlugin(mem_size=2000, n_classes=10, p_size=32, fast=kind == "cope_fast")] if kind.startswith("cope") else []
    s = cls(model, torch.optim.SGD(model.parameters(), lr=0.01), train_mb_size=10, device=device, plugins=plugins)
    t0 = time.perf_counter()
    for e in exps: s.train(e)
    _sync(device)
    return 10 * len(exps) / (time.perf_counter() - t0)

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3); p.add_argument("--threads", type=int, default=1)
    p.add_argument("--experiences", type=int, default=2000); p.add_argument("--device", default="cpu")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    bm = data_incremental_benchmark(split_fmnist(5, seed=None), 10)
    step = max(1, len(bm.train_stream) // a.experiences)
    exps = list(bm.train_stream)[::step][:a.experiences]   # spread over the whole stream (all five class pairs)
    res = {"plain": [], "naive": [], "naive_uncached": [], "cope": [], "cope_fast": []}
    for r in range(a.repeats):
        res["plain"].append(plain(exps, a.device))
        for k in ("naive", "naive_uncached", "cope", "cope_fast"): res[k].append(strategy_run(exps, a.device, k))
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"{len(exps)} online experiences of 10 samples, {a.threads} threads, device {a.device}")
    for k, v in med.items(): print(f"{k:16s} {v:8.0f} samples/s   ratio to plain {v / med['plain']:.2f}")
    print(f"naive / naive_uncached: {med['naive'] / med['naive_uncached']:.2f}")
    print(f"cope_fast / cope (readable): {med['cope_fast'] / med['cope']:.2f}")
    print(json.dumps({k: round(v) for k, v in med.items()}))
