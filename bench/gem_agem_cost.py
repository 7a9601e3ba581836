"""Training cost of GEM and A-GEM as a ratio to Naive's, measured in one run.

Workload: class-incremental Split Fashion-MNIST (5 x 12,000 samples, natural class order), MLP 784-256-256-10,
SGD lr 0.01 momentum 0.9, batch 128, 1 epoch per experience, CPU with `--threads` threads, no evaluator
(training time only; evaluation is the same for all three). GEM: patterns_per_experience 256, memory_strength 0.5;
A-GEM: patterns_per_experience 256, sample_size 256. `gem` is `GEMPlugin(256, 0.5, fast=True)` (15_gem's "Making it
fast" path); `--readable` adds `gem_readable`, the same plugin with `fast=False` (one plain backward per memory,
separate products for G G^T and G g), so that the ratio of the two is what the switch buys.

The strategies run in this process, interleaved (Naive, GEM, A-GEM, Naive, ...) `--repeats` times so that
machine load hits them alike; ratios use the median training time of each. Time per sample = time / 60,000
for all, so the ratio of times is the ratio of time per sample. The process CPU time is reported beside the
wall-clock time: on a machine shared with other jobs it is the steadier of the two. Per-experience ratios show GEM's cost growing with
the number of memories (k memories at experience k).

Run: python bench/gem_agem_cost.py [--repeats 3] [--threads 2] [--readable] [--train-size N] [--out FILE]
"""
import argparse, json, statistics, time
import torch
from clnb.datasets import split_fmnist
from clnb.models import MLP
from clnb.template import Naive
from clnb.engine import set_seed
from clnb.plugins.gem import GEMPlugin
from clnb.plugins.agem import AGEMPlugin

def make_plugins(name):
    if name == "naive": return []
    if name == "gem": return [GEMPlugin(256, 0.5, fast=True)]
    if name == "gem_readable": return [GEMPlugin(256, 0.5, fast=False)]
    if name == "agem": return [AGEMPlugin(256, 256)]
    raise ValueError(name)

def train_times(bm, name, seed, device):
    "Wall-clock seconds spent in `train` for each experience, and the process CPU seconds of all of it."
    set_seed(seed); model = MLP(784, (256, 256), 10)
    s = Naive(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), train_mb_size=128,
              device=device, plugins=make_plugins(name), evaluator=None)
    out, cpu0 = [], time.process_time()
    for exp in bm.train_stream:
        if device != "cpu": torch.cuda.synchronize()
        t0 = time.perf_counter(); s.train(exp)
        if device != "cpu": torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return out, time.process_time() - cpu0

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3); p.add_argument("--threads", type=int, default=2)
    p.add_argument("--readable", action="store_true"); p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--device", default="cpu"); p.add_argument("--out", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    bm = split_fmnist(5, seed=None, train_size=a.train_size)
    names = ["naive", "gem", "agem"] + (["gem_readable"] if a.readable else [])
    runs, cpu = {n: [] for n in names}, {n: [] for n in names}
    for r in range(a.repeats):
        for n in names:
            times, c = train_times(bm, n, r, a.device); runs[n].append(times); cpu[n].append(c)
            print(f"repeat {r} {n:12s} {sum(times):7.1f}s wall {c:7.1f}s cpu  per experience " + " ".join(f"{t:.1f}" for t in times), flush=True)
    total = {n: statistics.median(sum(t) for t in v) for n, v in runs.items()}
    cpu_total = {n: statistics.median(v) for n, v in cpu.items()}
    per_exp = {n: [statistics.median(t[i] for t in v) for i in range(len(bm.train_stream))] for n, v in runs.items()}
    n_samples = sum(len(e.dataset) for e in bm.train_stream)
    print(f"\n{'strategy':12s} {'train s':>8s} {'us/sample':>10s} {'x Naive':>8s} {'cpu x Naive':>12s}   x Naive per experience")
    res = {}
    for n in names:
        ratio = total[n] / total["naive"]
        pe = [t / b for t, b in zip(per_exp[n], per_exp["naive"])]
        res[n] = {"train_seconds": round(total[n], 2), "us_per_sample": round(1e6 * total[n] / n_samples, 1),
                  "ratio_to_naive": round(ratio, 2), "cpu_ratio_to_naive": round(cpu_total[n] / cpu_total["naive"], 2),
                  "ratio_per_experience": [round(x, 2) for x in pe]}
        print(f"{n:12s} {total[n]:8.1f} {1e6 * total[n] / n_samples:10.1f} {ratio:8.2f} {res[n]['cpu_ratio_to_naive']:12.2f}   " + " ".join(f"{x:.2f}" for x in pe))
    res["_setup"] = {"threads": a.threads, "repeats": a.repeats, "device": a.device, "train_samples": n_samples}
    print(json.dumps(res))
    if a.out:
        import pathlib; pathlib.Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(a.out).write_text(json.dumps(res, indent=1))
