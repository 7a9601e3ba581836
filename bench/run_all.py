"""One command for the speed comparison: clnb, the plain PyTorch floor and avalanche-lib on the standard workload.

    python bench/run_all.py                     # full protocol, every clnb strategy that is importable
    python bench/run_all.py --strategies naive,ewc --repeats 3
    python bench/run_all.py --train-size 10000 --test-size 2000   # a quick look (not the protocol)

Workload (bench/common.py): class-incremental Split Fashion-MNIST (5 x 2 classes, natural order), MLP
784-256-256-10, SGD lr 0.01 momentum 0.9, minibatch 128, 1 epoch, eval minibatch 1024, 2 CPU threads, seed 0,
evaluation of the whole test stream after each experience. Every run is its own process (one library per
process; peak RSS is that process's). avalanche-lib runs in bench/.venv-avalanche, created on first use
(bench/avalanche_env.py); it is never a dependency of clnb. Within a repeat the runs of one strategy are
interleaved, so a change in machine load hits every library alike; the table shows medians over repeats.

Writes bench/results/results.md and bench/results/results.json.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

def clnb_strategies(wanted):
    "Registry names to run: the importable ones (and why the others are skipped)."
    sys.path.insert(0, str(ROOT))
    from clnb.registry import STRATEGIES, run_settings
    names = list(STRATEGIES) if wanted is None else wanted
    run, skipped, params = [], {}, {}
    for n in names:
        if n not in STRATEGIES: skipped[n] = "not in clnb.registry"; continue
        try: settings = run_settings(n, "split_fmnist")   # what the method needs on this benchmark (GDumb's epochs, CoPE's minibatch)
        except ValueError as e: skipped[n] = str(e); continue
        run.append(n)
        params[n] = {**STRATEGIES[n].params, **{k: v for k, v in settings.items() if k not in ("model", "model_kw")}}
    return run, skipped, params

def worker(python, script, args, env, timeout):
    "Run one worker process; its BENCH_RESULT row, or an error row."
    t0 = time.perf_counter()
    p = subprocess.run([str(python), str(HERE / script)] + args, capture_output=True, text=True, env=env, timeout=timeout)
    rows = [l for l in p.stdout.splitlines() if l.startswith("BENCH_RESULT ")]
    if p.returncode or not rows:
        return {"error": (p.stderr or p.stdout)[-1500:], "script": script, "args": args}
    row = json.loads(rows[-1][len("BENCH_RESULT "):]); row["process_s"] = time.perf_counter() - t0
    return row

def median_rows(rows):
    "One row per (library, strategy, data): the median of each number over repeats."
    groups = {}
    for r in rows:
        if "error" in r: continue
        groups.setdefault((r["library"], r["strategy"], r["data"]), []).append(r)
    out = []
    for (lib, strat, data), rs in groups.items():
        m = {"library": lib, "strategy": strat, "data": data, "repeats": len(rs)}
        for k, v in rs[0].items():
            if isinstance(v, (int, float)) and k not in m: m[k] = statistics.median(r[k] for r in rs)
        out.append(m)
    return out

def add_ratios(rows):
    "Ratios of clnb to the floor and to avalanche, and of each train time to its library's Naive, on both clocks."
    find = lambda lib, strat, data: next((r for r in rows if r["library"].startswith(lib) and r["strategy"] == strat and r["data"] == data), None)
    floor = find("plain", "naive", "tensors")
    for r in rows:
        for sfx in ("", "_cpu"):
            tr, ev = r["train_sps" + sfx], r["eval_sps" + sfx]
            naive = find(r["library"], "naive", r["data"])
            if naive: r["train_time_vs_naive" + sfx] = naive["train_sps" + sfx] / tr
            if r["library"] != "clnb": continue
            if floor: r["train_vs_floor" + sfx] = tr / floor["train_sps" + sfx]; r["eval_vs_floor" + sfx] = ev / floor["eval_sps" + sfx]
            for data in ("docs", "tensors"):
                av = find("avalanche", r["strategy"], data)
                if not av: continue
                r[f"train_vs_avalanche_{data}{sfx}"] = tr / av["train_sps" + sfx]
                r[f"eval_vs_avalanche_{data}{sfx}"] = ev / av["eval_sps" + sfx]
                r[f"acc_minus_avalanche_{data}"] = r["final_acc"] - av["final_acc"]
    return rows

def markdown(rows, meta, skipped, errors, params=None):
    def f(r, k, fmt=".2f"):
        "wall / cpu"
        if r.get(k) is None: return ""
        return format(r[k], fmt) + (" / " + format(r[k + "_cpu"], fmt) if r.get(k + "_cpu") is not None else "")
    lines = [f"# clnb speed: {meta['when']}", "",
             f"Workload: {meta['workload']}. Threads: {meta['threads']}. Repeats: {meta['repeats']} (medians). "
             f"Each cell with two numbers is **wall clock / CPU time** (process CPU time, all threads). "
             f"Machine load (1-min average) at start/end: {meta['load_start']} / {meta['load_end']}. Total {meta['total_s']} s.", "",
             "| strategy | library | data | final acc | train samples/s | eval samples/s | peak RSS MB | train time / Naive | "
             "train vs floor | eval vs floor | train vs avalanche (docs) | train vs avalanche (tensors) | eval vs avalanche (docs) | eval vs avalanche (tensors) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    order = {"clnb": 0, "plain": 1}
    for r in sorted(rows, key=lambda r: (r["strategy"] != "naive", r["strategy"], order.get(r["library"], 2), r["data"])):
        lines.append("| " + " | ".join([r["strategy"], r["library"], r["data"], format(r["final_acc"], ".4f"),
            f(r, "train_sps", ",.0f"), f(r, "eval_sps", ",.0f"), format(r["peak_rss_mb"], ",.0f"), f(r, "train_time_vs_naive"),
            f(r, "train_vs_floor"), f(r, "eval_vs_floor"), f(r, "train_vs_avalanche_docs"), f(r, "train_vs_avalanche_tensors"),
            f(r, "eval_vs_avalanche_docs"), f(r, "eval_vs_avalanche_tensors")]) + " |")
    own = params or {}
    if own:
        lines += ["", "Hyperparameters of each strategy (`clnb.registry`: its parameters and its settings for `split_fmnist`, "
                  "given to both libraries; `lr`, `momentum`, `train_mb_size`, `train_epochs` replace the protocol's):"]
        lines += [f"- {k}: {json.dumps(v)}" for k, v in own.items()]
    if skipped:
        lines += ["", "Skipped:"] + [f"- {k}: {v}" for k, v in skipped.items()]
    if errors:
        lines += ["", "Errors:"] + [f"- {e['script']} {' '.join(e['args'])}: {e['error'].splitlines()[-1] if e['error'] else '?'}" for e in errors]
    return "\n".join(lines) + "\n"

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--strategies", default=None, help="comma-separated registry names (default: every importable one)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=2, help="torch threads in every worker (the protocol: 2)")
    p.add_argument("--train-size", type=int, default=None); p.add_argument("--test-size", type=int, default=None)
    p.add_argument("--clnb-extra", default="{}", help='JSON of extra clnb strategy arguments, e.g. {"precision": "bf16-mixed"}')
    p.add_argument("--no-avalanche", action="store_true"); p.add_argument("--no-docs", action="store_true", help="skip avalanche's torchvision data")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per worker process")
    p.add_argument("--out", default=str(HERE / "results"))
    a = p.parse_args()
    t_start = time.perf_counter()
    strategies, skipped, params = clnb_strategies(a.strategies.split(",") if a.strategies else None)
    env = dict(os.environ, CLNB_BENCH_THREADS=str(a.threads), PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]))
    import common as C
    root = str(C.torchvision_root(Path(tempfile.mkdtemp(prefix="clnb-bench-"))))
    size = (["--train-size", str(a.train_size)] if a.train_size else []) + (["--test-size", str(a.test_size)] if a.test_size else [])
    avpy = None
    if not a.no_avalanche:
        from avalanche_env import ensure
        print("avalanche venv:", avpy := ensure(), flush=True)
    rows, load_start = [], os.getloadavg()[0]
    for rep in range(a.repeats):
        for s in strategies:
            common = ["--strategy", s, "--params", json.dumps(params[s]), "--root", root] + size
            extra = json.loads(a.clnb_extra)
            jobs = [(sys.executable, "worker_clnb.py", common if not extra else
                     common[:3] + [json.dumps({**params[s], **extra})] + common[4:])]
            if s == "naive": jobs.append((sys.executable, "worker_plain.py", common))
            if avpy:
                jobs.append((avpy, "worker_avalanche.py", common + ["--data", "tensors"]))
                if not a.no_docs: jobs.append((avpy, "worker_avalanche.py", common + ["--data", "docs"]))
            for py, script, args in jobs:
                r = worker(py, script, args, env, a.timeout); rows.append(r)
                print(f"[{rep + 1}/{a.repeats}] {script} {s} {args[-1] if '--data' in args else ''}: " +
                      (f"acc {r['final_acc']:.4f} train {r['train_sps']:,.0f}/s (cpu {r['train_sps_cpu']:,.0f}/s) "
                       f"eval {r['eval_sps']:,.0f}/s rss {r['peak_rss_mb']:,.0f} MB" if "error" not in r else "ERROR " + r["error"][-300:]), flush=True)
    table = add_ratios(median_rows(rows))
    errors = [r for r in rows if "error" in r]
    workload = "Split Fashion-MNIST 5x2 classes, MLP 784-256-256-10, SGD 0.01/0.9, batch 128, 1 epoch, eval batch 1024, seed 0"
    if a.train_size or a.test_size: workload += f" (train_size={a.train_size}, test_size={a.test_size}: not the full protocol)"
    if json.loads(a.clnb_extra): workload += f"; clnb strategies built with {a.clnb_extra}"
    meta = dict(when=time.strftime("%Y-%m-%d %H:%M"), workload=workload, threads=a.threads, repeats=a.repeats,
                load_start=round(load_start, 1), load_end=round(os.getloadavg()[0], 1), total_s=round(time.perf_counter() - t_start, 1),
                python=sys.version.split()[0])
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    md = markdown(table, meta, skipped, errors, params)
    (out / "results.md").write_text(md)
    (out / "results.json").write_text(json.dumps(dict(meta=meta, table=table, runs=rows, skipped=skipped, params=params), indent=1))
    print("\n" + md + f"\n(total {meta['total_s']} s; written to {out}/results.md and results.json)")

if __name__ == "__main__":
    main()
