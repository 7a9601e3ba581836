"""Final accuracy over several seeds, clnb against avalanche-lib, for strategies whose accuracy varies a lot with the seed.

    python bench/accuracy_seeds.py                          # A-GEM, seeds 0 1 2
    python bench/accuracy_seeds.py --strategies agem,der --seeds 0,1,2,3,4

The speed table (run_all.py) runs seed 0 only, as the protocol says, and compares accuracies on that one seed.
For class-incremental A-GEM one seed is not enough to compare two libraries: its final accuracy moves by
several points from seed to seed (clnb: 20.1% on seed 0, 28.9% on seeds 1 and 2). This script runs the same
workers as run_all.py (same workload, same registry settings, data as tensors: the data path does not change
accuracy) once per seed, the seed setting the initial weights and the training randomness, and reports mean and
standard deviation per library. Writes bench/results/accuracy_seeds.md and .json.
"""
import argparse, json, statistics, sys, tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_all import clnb_strategies, worker

def main(a):
    import os
    import common as C
    names = a.strategies.split(",")
    strategies, skipped, params = clnb_strategies(names)
    for n, why in skipped.items(): print(f"skipped {n}: {why}")
    seeds = [int(s) for s in a.seeds.split(",")]
    root = str(C.torchvision_root(Path(tempfile.mkdtemp(prefix="clnb-bench-"))))
    from avalanche_env import ensure
    avpy = ensure()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), str(HERE)]))
    size = (["--train-size", str(a.train_size)] if a.train_size else []) + (["--test-size", str(a.test_size)] if a.test_size else [])
    acc = {}
    for s in strategies:
        for seed in seeds:
            common = ["--strategy", s, "--params", json.dumps(params[s]), "--root", root, "--seed", str(seed)] + size
            for lib, py, script, extra in (("clnb", sys.executable, "worker_clnb.py", []),
                                           ("avalanche", avpy, "worker_avalanche.py", ["--data", "tensors"])):
                r = worker(py, script, common + extra, env, a.timeout)
                if "error" in r: sys.exit(f"{lib} {s} seed {seed} failed:\n{r['error']}")
                acc.setdefault((s, lib), []).append(r["final_acc"])
                print(f"{s} seed {seed} {lib}: {r['final_acc']:.4f}", flush=True)
    lines = [f"# Final accuracy over seeds {a.seeds}", "",
             "Class-incremental Split Fashion-MNIST, the bench protocol (run_all.py) with the registry's settings, data as tensors; "
             "the seed sets the initial weights and the training randomness.", "",
             "| strategy | library | mean | std | per seed | clnb - avalanche (points) |", "|---|---|---|---|---|---|"]
    out = []
    for s in strategies:
        m = {lib: statistics.mean(acc[(s, lib)]) for lib in ("clnb", "avalanche")}
        for lib in ("clnb", "avalanche"):
            v = acc[(s, lib)]
            sd = statistics.stdev(v) if len(v) > 1 else 0.
            diff = f"{100 * (m['clnb'] - m['avalanche']):+.1f}" if lib == "clnb" else ""
            lines.append(f"| {s} | {lib} | {100 * m[lib]:.1f}% | {100 * sd:.1f} | {', '.join(f'{100 * x:.1f}' for x in v)} | {diff} |")
            out.append(dict(strategy=s, library=lib, seeds=seeds, accs=v, mean=m[lib], std=sd))
    dest = Path(a.out); dest.mkdir(parents=True, exist_ok=True)
    (dest / "accuracy_seeds.md").write_text("\n".join(lines) + "\n")
    (dest / "accuracy_seeds.json").write_text(json.dumps(out, indent=1))
    print("\n".join(lines))

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--strategies", default="agem"); p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--train-size", type=int, default=None); p.add_argument("--test-size", type=int, default=None)
    p.add_argument("--timeout", type=int, default=1800); p.add_argument("--out", default=str(HERE / "results"))
    main(p.parse_args())
