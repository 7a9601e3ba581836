"""Checks that need a CUDA GPU, run on one when this workplace lends it (not part of the test suite or CI).

    CLNB_DATA=<folder with the Fashion-MNIST IDX files> python bench/gpu_check.py --out <folder>

1. GEM's three ways to get the reference gradients (`grouped`, `vmap`, `loop`) give the same G on the GPU, and
   how long each takes for 4 memories of 256 patterns (the benchmark MLP).
2. CoPE's PPP loss on the GPU (the torch path of `_ppp_math`) equals the NumPy path on the CPU, value and gradient.
3. Every registry strategy on the bench workload (class-incremental Split Fashion-MNIST, registry settings, seed 0)
   trained on the GPU by bench/worker_clnb.py: final accuracy and train samples/s, in float32 and, for a few,
   in bf16-mixed.
Writes gpu.md and gpu.json to --out.
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path
import torch

HERE = Path(__file__).resolve().parent

def timed(f, n=30):
    f(); torch.cuda.synchronize(); t0 = time.perf_counter()
    for _ in range(n): f()
    torch.cuda.synchronize(); return (time.perf_counter() - t0) / n * 1e3

def gem_methods(lines, res):
    "GEM's grouped reference gradients (its fast path) against the readable per-memory autograd loop, on the GPU."
    from clnb.models import MLP
    from clnb.plugins.gem import reference_gradients, grouped_reference_gradients
    torch.manual_seed(0)
    m = MLP(784, (256, 256), 10).cuda(); crit = torch.nn.CrossEntropyLoss()
    x, y = torch.randn(1024, 784, device="cuda"), torch.randint(0, 10, (1024,), device="cuda")
    t = torch.zeros(1024, dtype=torch.long, device="cuda")
    D = sum(p.numel() for p in m.parameters())
    G = {"loop": reference_gradients(m, crit, x, y, t, [256] * 4), "grouped": torch.empty(4, D, device="cuda")}
    assert grouped_reference_gradients(m, crit, x, y, t, [256] * 4, G["grouped"], check=True)
    res["gem_ref_ms_loop"] = timed(lambda: reference_gradients(m, crit, x, y, t, [256] * 4))
    res["gem_ref_ms_grouped"] = timed(lambda: grouped_reference_gradients(m, crit, x, y, t, [256] * 4, G["grouped"]))
    err = float((G["grouped"] - G["loop"]).abs().max() / G["loop"].abs().max())
    res["gem_ref_relerr_grouped"] = err; assert err < 1e-4, err
    lines.append("## GEM reference gradients, 4 memories x 256 patterns, MLP 784-256-256-10\n")
    lines.append("| method | ms per call | max abs difference to `loop` / max abs |\n|---|---|---|")
    for meth in ("grouped", "loop"):
        lines.append(f"| {meth} | {res[f'gem_ref_ms_{meth}']:.3f} | {res.get(f'gem_ref_relerr_{meth}', 0.):.1e} |")

def ppp_paths(lines, res):
    import torch.nn.functional as F
    from clnb.plugins.cope import PPPloss
    torch.manual_seed(0)
    worst = 0.
    for B in (5, 20, 64):
        x = torch.randn(B, 32); y = torch.randint(0, 10, (B,))
        P, has = F.normalize(torch.randn(10, 32), dim=1), torch.rand(10) < 0.8
        xc = x.clone().requires_grad_(); lc = PPPloss((P, has), 0.1, fast=True)(xc, y); gc, = torch.autograd.grad(lc, xc)
        xg = x.cuda().requires_grad_(); lg = PPPloss((P.cuda(), has.cuda()), 0.1, fast=True)(xg, y.cuda()); gg, = torch.autograd.grad(lg, xg)
        worst = max(worst, abs(lc.item() - lg.item()), float((gc - gg.cpu()).abs().max()))
    res["ppp_cpu_vs_gpu_maxdiff"] = worst; assert worst < 1e-4, worst
    lines.append(f"\n## CoPE's PPP loss: NumPy path (CPU) against torch path (GPU)\n\nlargest difference in loss or gradient over batches of 5, 20, 64: {worst:.1e}\n")

def strategies(lines, res, size_args, wanted=None):
    sys.path.insert(0, str(HERE.parent)); sys.path.insert(0, str(HERE))
    from run_all import clnb_strategies
    names, skipped, params = clnb_strategies(wanted)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), str(HERE), os.environ.get("PYTHONPATH", "")]), CLNB_BENCH_THREADS="2")
    runs = [(n, "32") for n in names] + [(n, "bf16-mixed") for n in ("naive", "gem", "der", "cope") if n in names]
    lines.append("\n## The bench workload on the GPU (registry settings, seed 0, one run each)\n")
    lines.append("| strategy | precision | final acc | train samples/s | eval samples/s | train time / Naive (same precision) |\n|---|---|---|---|---|---|")
    rows = {}
    for n, prec in runs:
        p = dict(params[n]); p["precision"] = prec
        out = subprocess.run([sys.executable, str(HERE / "worker_clnb.py"), "--strategy", n, "--params", json.dumps(p), "--device", "cuda"] + size_args,
                             capture_output=True, text=True, env=env, timeout=600)
        row = [l for l in out.stdout.splitlines() if l.startswith("BENCH_RESULT ")]
        if not row: rows[(n, prec)] = {"error": (out.stderr or out.stdout)[-800:]}; print(n, prec, "ERROR", rows[(n, prec)]["error"], flush=True); continue
        r = rows[(n, prec)] = json.loads(row[-1][len("BENCH_RESULT "):])
        print(n, prec, r["final_acc"], round(r["train_sps"]), flush=True)
    for (n, prec), r in rows.items():
        if "error" in r: lines.append(f"| {n} | {prec} | error | | | |"); continue
        base = rows.get(("naive", prec), {})
        ratio = f"{base['train_sps'] / r['train_sps']:.2f}" if "train_sps" in base else ""
        lines.append(f"| {n} | {prec} | {r['final_acc']:.4f} | {r['train_sps']:,.0f} | {r['eval_sps']:,.0f} | {ratio} |")
    res["strategies"] = {f"{n}/{prec}": r for (n, prec), r in rows.items()}

def main(a):
    assert torch.cuda.is_available(), "gpu_check.py needs a CUDA device"
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    lines = [f"# clnb on {torch.cuda.get_device_name()} (torch {torch.__version__}), {time.strftime('%Y-%m-%d %H:%M')}\n"]
    res = {}
    for step in (gem_methods, ppp_paths):
        step(lines, res)
        (out / "gpu.md").write_text("\n".join(lines) + "\n")
    strategies(lines, res, (["--train-size", str(a.train_size)] if a.train_size else []), a.strategies.split(",") if a.strategies else None)
    (out / "gpu.md").write_text("\n".join(lines) + "\n"); (out / "gpu.json").write_text(json.dumps(res, indent=1, default=str))
    print("\n".join(lines))

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(HERE / "results")); p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--strategies", default=None, help="comma-separated registry names (default: all)")
    main(p.parse_args())
