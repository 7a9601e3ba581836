"""Checkpoints on a CUDA GPU (run where a GPU is lent; not part of the test suite or CI).

    python bench/gpu_checkpoint_check.py --out <folder>

For each strategy, on synthetic data on the GPU with deterministic kernels: an uninterrupted run (twice, to see that
it is deterministic at all), and a run saved after experience 1, loaded into a fresh strategy in a new process and
finished there. Writes gpu_checkpoint.md to --out: for each strategy, whether the resumed run equals the
uninterrupted one bit for bit, and the largest weight difference.
"""
import argparse, os, subprocess, sys
from pathlib import Path
import torch

HERE = Path(__file__).resolve().parent
NAMES = os.environ.get("CLNB_CHECK_NAMES", "Naive,Replay,EWC,SI,LwF,GEM,AGEM,DER,CoPE,ExpertGate").split(",")

def benchmark(task_labels:bool):
    from clnb.data import CLDataset, split_benchmark
    g = torch.Generator().manual_seed(0)
    y = torch.arange(10).repeat_interleave(60); x = torch.randn(len(y), 64, generator=g) + torch.randn(10, 64, generator=g)[y]
    return split_benchmark(CLDataset(x, y), CLDataset(x[::3], y[::3]), 5, task_labels=task_labels, shuffle=False)

def build(name:str):
    "The strategy `name` on an MLP on the GPU, seeded, with deterministic kernels."
    from clnb.engine import set_seed
    from clnb.models import MLP
    from clnb.template import Naive
    from clnb.evaluation import EvaluationPlugin, accuracy_metrics, loss_metrics
    set_seed(0, deterministic=True)
    m = MLP(64, (32,), 10); opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    kw = dict(train_mb_size=16, train_epochs=2, eval_mb_size=100, device=os.environ.get("CLNB_CHECK_DEVICE", "cuda"),
              evaluator=EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loss_metrics(stream=True)))
    if name == "DER":
        from clnb.strategies.der import DER
        return DER(m, opt, mem_size=40, **kw)
    if name == "ExpertGate":
        from clnb.strategies.expert_gate import ExpertGate, ExpertGateStrategy
        gate = ExpertGate(m)
        return ExpertGateStrategy(gate, torch.optim.SGD(gate.parameters(), lr=0.05, momentum=0.9), ae_train_epochs=2,
                                  ae_latent_dim=8, rel_samples=50, **kw)
    from clnb.plugins import replay, ewc, si, lwf, gem, agem, cope
    plugin = {"Naive": lambda: None, "Replay": lambda: replay.ReplayPlugin(mem_size=40),
              "EWC": lambda: ewc.EWCPlugin(1.0), "SI": lambda: si.SynapticIntelligencePlugin(0.01),
              "LwF": lambda: lwf.LwFPlugin(1.0, 2), "GEM": lambda: gem.GEMPlugin(20, 0.5),
              "AGEM": lambda: agem.AGEMPlugin(20, 20), "CoPE": lambda: cope.CoPEPlugin(mem_size=40, n_classes=10, p_size=10)}[name]()
    return Naive(m, opt, plugins=[plugin] if plugin else None, **kw)

def run(name:str, start:int, stop:int, ckpt:str, out:str):
    "Train experiences start..stop-1 (loading `ckpt` first when start > 0, saving it after experience 1)."
    from clnb.checkpoint import save_checkpoint, load_checkpoint
    bm = benchmark(name == "ExpertGate"); s = build(name)
    if start: load_checkpoint(ckpt, s)
    for e in bm.train_stream[start:stop]:
        s.train(e); s.eval(bm.test_stream)
        if e.current_experience == 1: save_checkpoint(s, ckpt)
    torch.save({k: v.cpu() for k, v in s.model.state_dict().items()}, out)

def child(*args):
    r = subprocess.run([sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(HERE.parent)))
    if r.returncode: raise RuntimeError(r.stderr[-2000:])

def main(a):
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    lines = ["| strategy | deterministic | resumed = uninterrupted | max weight difference |", "|---|---|---|---|"]
    for name in NAMES:
        try:
            child(name, 0, 5, out / f"{name}.pt", out / f"{name}_a.w"); child(name, 0, 5, out / "tmp.pt", out / f"{name}_b.w")
            child(name, 2, 5, out / f"{name}.pt", out / f"{name}_r.w")
            A, B, R = (torch.load(out / f"{name}_{k}.w") for k in "abr")
            det = all(torch.equal(A[k], B[k]) for k in A)
            same = list(A) == list(R) and all(torch.equal(A[k], R[k]) for k in A)
            diff = max(float((A[k].double() - R[k].double()).abs().max()) for k in A) if list(A) == list(R) else float("nan")
            lines.append(f"| {name} | {det} | {same} | {diff:.3g} |")
        except Exception as e: lines.append(f"| {name} | error | {type(e).__name__}: {str(e).splitlines()[-1][:200]} | |")
        print(lines[-1], flush=True)
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    (out / "gpu_checkpoint.md").write_text(f"{dev}, torch {torch.__version__}\n\n" + "\n".join(lines) + "\n")

if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        name, start, stop, ckpt, out = sys.argv[2:]
        run(name, int(start), int(stop), ckpt, out)
    else:
        p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--out", required=True); main(p.parse_args())
