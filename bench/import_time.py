"""Start-up cost: `import clnb` and `from clnb.all import *` against `import torch` alone (time and memory).

Each statement runs in a fresh interpreter, alternating, `--repeats` times; the table shows medians of the
process's wall time (interpreter start included) and peak RSS, and the ratio to `import torch`. It also lists
the optional heavy packages (torchvision, matplotlib, ipywidgets, quadprog, tensorboard) that the import
pulled in: there should be none, they load when first used. With bench/.venv-avalanche present it adds
`import avalanche.training` for reference. Target (issue 11): at most 1.3x torch in time and in memory.
Run: python bench/import_time.py [--repeats 5]
"""
import argparse, json, os, statistics, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEAVY = ["torchvision", "matplotlib", "ipywidgets", "quadprog", "tensorboard", "pandas", "scipy", "PIL"]
PROBE = ("import resource, sys, json, time; t = time.perf_counter(); {stmt}; dt = time.perf_counter() - t; "
         "print(json.dumps(dict(import_s=dt, rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "
         "heavy=[m for m in {heavy!r} if m in sys.modules])))")

def once(python, stmt, env):
    t0 = time.perf_counter()
    p = subprocess.run([str(python), "-c", PROBE.format(stmt=stmt, heavy=HEAVY)], capture_output=True, text=True, env=env)
    if p.returncode: raise RuntimeError(f"{stmt!r} failed:\n{p.stderr[-1500:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1]); r["process_s"] = time.perf_counter() - t0
    return r

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5); p.add_argument("--out", default=str(HERE / "results" / "import_time.json"))
    a = p.parse_args()
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    cases = [(sys.executable, "import torch"), (sys.executable, "import clnb"), (sys.executable, "from clnb.all import *")]
    av = HERE / ".venv-avalanche" / "bin" / "python"
    if av.exists(): cases.append((av, "import avalanche.training"))
    runs = {stmt: [] for _, stmt in cases}
    for py, stmt in cases: once(py, stmt, env)  # warm the file cache
    for _ in range(a.repeats):
        for py, stmt in cases: runs[stmt].append(once(py, stmt, env))
    med = {s: {k: statistics.median(r[k] for r in rs) for k in ("process_s", "import_s", "rss_mb")} | {"heavy": rs[-1]["heavy"]}
           for s, rs in runs.items()}
    base = med["import torch"]
    print(f"{a.repeats} repeats, medians; machine load {os.getloadavg()[0]:.1f}\n")
    print("| statement | process s | import s | peak RSS MB | time vs torch | memory vs torch | heavy packages loaded |")
    print("|---|---|---|---|---|---|---|")
    for s, m in med.items():
        m["time_vs_torch"], m["rss_vs_torch"] = m["process_s"] / base["process_s"], m["rss_mb"] / base["rss_mb"]
        print(f"| `{s}` | {m['process_s']:.2f} | {m['import_s']:.2f} | {m['rss_mb']:.0f} | {m['time_vs_torch']:.2f} | "
              f"{m['rss_vs_torch']:.2f} | {', '.join(m['heavy']) or 'none'} |")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(dict(repeats=a.repeats, medians=med, runs=runs), indent=1))

if __name__ == "__main__":
    main()
