"""What every bench worker shares: the protocol, the data files, the model, timing and memory helpers.

Imports only torch (and torchvision where asked), never clnb or avalanche, so each library's worker
process loads nothing of the other.
"""
import gzip, json, os, resource, shutil, sys, time
from pathlib import Path
import torch
from torch import nn

PROTOCOL = dict(n_experiences=5, class_order=list(range(10)), hidden=(256, 256), lr=0.01, momentum=0.9,
                train_mb_size=128, train_epochs=1, eval_mb_size=1024, threads=2, seed=0)
FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530      # the normalisation of both libraries' Split Fashion-MNIST
IDX_DIR = Path(os.environ.get("CLNB_DATA", "/usr/share/datasets/fashion-mnist"))
IDX = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

def setup(threads=None, seed=PROTOCOL["seed"]):
    "Same threads and seeds in every worker ($CLNB_BENCH_THREADS overrides the protocol's 2 threads)."
    import random
    threads = threads or int(os.environ.get("CLNB_BENCH_THREADS", PROTOCOL["threads"]))
    torch.set_num_threads(threads); random.seed(seed); torch.manual_seed(seed)
    try:
        import numpy as np; np.random.seed(seed)
    except ImportError: pass

def torchvision_root(dest:Path) -> Path:
    "A folder laid out as torchvision's FashionMNIST expects (root/FashionMNIST/raw/<unpacked IDX>)."
    raw = Path(dest) / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in IDX:
        out = raw / name
        if out.exists(): continue
        src = IDX_DIR / (name + ".gz")
        if not src.exists(): src = IDX_DIR / name
        if not src.exists(): sys.exit(f"Fashion-MNIST not found in {IDX_DIR}: set CLNB_DATA or install the dataset-fashion-mnist package")
        opener = gzip.open if src.suffix == ".gz" else open
        with opener(src, "rb") as f, open(out, "wb") as g: shutil.copyfileobj(f, g)
    return Path(dest)

def output_size(strategy:str, params:dict) -> int:
    "Width of the model's output: 10 classes, or CoPE's embedding size (it predicts by nearest prototype)."
    return params.get("p_size", 10) if strategy == "cope" else 10

def mlp(out:int=10) -> nn.Module:
    "MLP 784-256-256-`out` built layer by layer as clnb's MLP is (same parameters in the same order: same init under one seed)."
    h1, h2 = PROTOCOL["hidden"]
    return nn.Sequential(nn.Flatten(), nn.Linear(784, h1), nn.ReLU(), nn.Dropout(0.0),
                         nn.Linear(h1, h2), nn.ReLU(), nn.Dropout(0.0), nn.Linear(h2, out))

TRAINING_KEYS = ("lr", "momentum", "train_mb_size", "train_epochs")

def split_params(params:dict):
    "A strategy's settings split into training settings (the protocol's, updated by the strategy's) and its own hyperparameters."
    training = {k: params.get(k, PROTOCOL[k]) for k in TRAINING_KEYS}
    return training, {k: v for k, v in params.items() if k not in TRAINING_KEYS}

def sgd(model, lr=PROTOCOL["lr"], momentum=PROTOCOL["momentum"]): return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)

def peak_rss_mb() -> float:
    "Peak resident memory of this process so far, in MB."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

class Timer:
    "Adds up the wall time and the process CPU time (all threads) of the blocks it times."
    def __init__(self): self.total = self.cpu = 0.0
    def __enter__(self): self.t0, self.c0 = time.perf_counter(), time.process_time(); return self
    def __exit__(self, *a):
        if torch.cuda.is_available() and torch.cuda.is_initialized(): torch.cuda.synchronize()   # work queued on a GPU counts
        self.total += time.perf_counter() - self.t0; self.cpu += time.process_time() - self.c0

def rates(ttrain:Timer, teval:Timer, n_train:int, n_eval:int) -> dict:
    "Samples per second of wall time and per second of CPU time, training and evaluation."
    return dict(train_s=ttrain.total, eval_s=teval.total, train_cpu_s=ttrain.cpu, eval_cpu_s=teval.cpu,
                train_sps=n_train / ttrain.total, eval_sps=n_eval / teval.total,
                train_sps_cpu=n_train / ttrain.cpu, eval_sps_cpu=n_eval / teval.cpu)

def _keep(y, n):
    "Indices of the first n // 10 samples of every class, in dataset order."
    return torch.cat([torch.nonzero(y == c).flatten()[:n // 10] for c in range(10)]).sort().values

def train_and_eval(strategy, bm, whole_stream:bool=False, epochs:int=PROTOCOL["train_epochs"]):
    """Train on each experience, then evaluate on the whole test stream (both libraries share this API): last metrics, rates.
    With `whole_stream` (joint training) one `train` call gets the whole stream, then one evaluation."""
    ttrain, teval, n_train, n_eval = Timer(), Timer(), 0, 0
    if whole_stream:
        with ttrain: strategy.train(bm.train_stream)
        with teval: r = strategy.eval(bm.test_stream)
        n_train = sum(len(e.dataset) for e in bm.train_stream) * epochs
        return r, rates(ttrain, teval, n_train, sum(len(e.dataset) for e in bm.test_stream))
    for exp in bm.train_stream:
        with ttrain: strategy.train(exp)
        n_train += len(exp.dataset) * epochs
        with teval: r = strategy.eval(bm.test_stream)
        n_eval += sum(len(e.dataset) for e in bm.test_stream)
    return r, rates(ttrain, teval, n_train, n_eval)

def subsample(x, y, n):
    "The first n samples of every class in equal parts (all when n is None), keeping the order."
    if n is None or n >= len(y): return x, y
    keep = _keep(y, n); return x[keep], y[keep]

def subset(ds, n):
    "The same selection as `subsample` for a torchvision dataset, as a `Subset` (the dataset itself when n is None)."
    if n is None or n >= len(ds): return ds
    keep = _keep(torch.as_tensor(ds.targets), n)
    sub = torch.utils.data.Subset(ds, keep.tolist())
    sub.targets = torch.as_tensor(ds.targets)[keep].tolist()  # plain ints, as libraries reading `targets` expect
    return sub

def report(**row):
    "Print one result row as a JSON line the harness reads (the last line of the worker's stdout)."
    row["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print("BENCH_RESULT " + json.dumps(row), flush=True)

def arg_parser(doc):
    "The options every worker takes."
    import argparse
    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--strategy", default="naive"); p.add_argument("--params", default="{}", help="JSON of hyperparameters")
    p.add_argument("--data", default="tensors", choices=["tensors", "docs"])
    p.add_argument("--train-size", type=int, default=None); p.add_argument("--test-size", type=int, default=None)
    p.add_argument("--root", default=None, help="torchvision root holding FashionMNIST/raw")
    p.add_argument("--seed", type=int, default=PROTOCOL["seed"], help="seed of the model's initial weights and of training (the protocol: 0)")
    return p
