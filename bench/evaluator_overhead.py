"""What metrics and loggers cost: Naive trained with the default evaluator against Naive with an empty one.

Same model (MLP 784-256-256-10), batch 128, SGD lr 0.01 momentum 0.9, one epoch per experience of
Split Fashion-MNIST (5 x 12,000 samples), the test stream evaluated after each experience, on the CPU
(`--threads` threads) or `--device cuda`. Configurations run in this process, alternating, `--repeats`
times; each ratio uses the minimum over repeats (the run least disturbed by other processes). Both wall-clock and process CPU time are reported: on a shared,
overloaded machine the wall clock mostly measures the other processes, the CPU time of this one does not.
Run: python bench/evaluator_overhead.py [--repeats 3] [--device cpu] [--train-size 60000]

  no_evaluator          evaluator=None (an EvaluationPlugin with no metric: the floor)
  default               default_evaluator(progress=False): accuracy + loss at epoch, experience, stream
  default_with_bars     the same plus an InteractiveLogger drawing text bars (to /dev/null)
  default_with_dashboard  the same plus a NotebookDashboard in widget mode (figure redrawn per experience and eval)
  all_metrics           default + forgetting, BWT, forward transfer, confusion matrix, epoch time and RAM
"""
import argparse, json, os, statistics, time
import torch
from clnb.datasets import split_fmnist
from clnb.models import MLP
from clnb.template import Naive
from clnb.engine import set_seed
from clnb.evaluation import (EvaluationPlugin, default_evaluator, accuracy_metrics, loss_metrics, forgetting_metrics, bwt_metrics,
                             forward_transfer_metrics, confusion_matrix_metrics, timing_metrics, ram_usage_metrics)
from clnb.loggers import InteractiveLogger

def evaluator(kind):
    if kind == "no_evaluator": return None
    ev = default_evaluator(progress=False)
    if kind == "default_with_bars":
        ev = EvaluationPlugin(ev.metrics, loggers=[InteractiveLogger(print_metrics=False, disable=False, bar_file=open(os.devnull, "w"))])
    if kind == "default_with_dashboard":
        from clnb.viz import NotebookDashboard
        ev = EvaluationPlugin(ev.metrics, loggers=[NotebookDashboard(mode="widget", display=False)])
    if kind == "all_metrics":
        ev = EvaluationPlugin(ev.metrics, forgetting_metrics(stream=True), bwt_metrics(stream=True), forward_transfer_metrics(stream=True),
                              confusion_matrix_metrics(), timing_metrics(epoch=True), ram_usage_metrics(epoch=True))
    return ev

def run(bm, kind, seed, device):
    set_seed(seed); m = MLP(784, (256, 256), 10)
    s = Naive(m, torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9), train_mb_size=128, eval_mb_size=1024, device=device, evaluator=evaluator(kind))
    t_train = t_eval = c_train = 0.
    for exp in bm.train_stream:
        t0, c0 = time.perf_counter(), time.process_time(); s.train(exp)
        if device != "cpu": torch.cuda.synchronize()
        t1, c1 = time.perf_counter(), time.process_time(); s.eval(bm.test_stream)
        if device != "cpu": torch.cuda.synchronize()
        t_train += t1 - t0; c_train += c1 - c0; t_eval += time.perf_counter() - t1
    return t_train, t_eval, c_train

if __name__ == "__main__":
    p = argparse.ArgumentParser(); p.add_argument("--repeats", type=int, default=3); p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu"); p.add_argument("--train-size", type=int, default=None); p.add_argument("--kinds", default="no_evaluator,default,default_with_bars,default_with_dashboard,all_metrics")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    bm = split_fmnist(n_experiences=5, seed=None, train_size=a.train_size)
    kinds = a.kinds.split(",")
    run(bm, "default", 0, a.device)                                   # warm-up
    res = {k: [] for k in kinds}
    for r in range(a.repeats):
        for k in kinds: res[k].append(run(bm, k, r, a.device))
    med = {k: tuple(min(r[i] for r in v) for i in range(3)) for k, v in res.items()}
    base = med["no_evaluator"]
    for k, (t, e, c) in med.items():
        print(f"{k:24s} train wall {t:7.2f}s ({t / base[0]:.3f}x)  train CPU {c:7.2f}s ({c / base[2]:.3f}x)  train+eval wall {t + e:7.2f}s ({(t + e) / (base[0] + base[1]):.3f}x)")
    print(json.dumps({k: {"train_s": round(t, 3), "eval_s": round(e, 3), "train_cpu_s": round(c, 3), "cpu_ratio": round(c / base[2], 3)} for k, (t, e, c) in med.items()}))
