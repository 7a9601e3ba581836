"Two CPU processes with gloo train the same strategy: identical weights on both ranks, accuracy as one process."
import importlib, json, os, socket, subprocess, sys, textwrap
import pytest, torch

SCRIPT = textwrap.dedent('''
    import json, os, sys, torch
    from clnb.all import *
    from clnb.distributed import init_distributed, make_distributed, get_rank, is_dist
    from clnb.cli import eval_metric_name
    name, out = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    device = init_distributed() if "RANK" in os.environ else torch.device("cpu")
    set_seed(0)
    bm = split_fmnist(5, seed=None, train_size=6000, test_size=2000)
    model = MLP(784, (256, 256), 10)
    plugins = {"naive": [], "replay": lambda: [ReplayPlugin(mem_size=200)], "ewc": lambda: [EWCPlugin(ewc_lambda=1.0)]}[name]
    plugins = plugins() if callable(plugins) else plugins
    s = Naive(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), train_mb_size=64, eval_mb_size=512,
              device=device, plugins=plugins)
    make_distributed(s)
    for e in bm.train_stream: s.train(e)
    acc = s.eval(bm.test_stream)[eval_metric_name("Top1_Acc_Stream")]
    torch.save({"weights": [p.detach() for p in model.parameters()], "acc": acc}, f"{out}/rank{get_rank()}.pt")
    if is_dist(): torch.distributed.barrier(); torch.distributed.destroy_process_group()   # a clean exit: no gloo thread left to abort
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)   # skip interpreter teardown: torch's gloo threads sometimes abort there ('terminate called ...')
''')

def _free_port():
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

@pytest.mark.parametrize("name", ["naive", "replay", "ewc"])
def test_two_ranks_match_one_process(name, tmp_path):
    script = tmp_path / "train.py"; script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
                    str(script), name, str(tmp_path)], check=True, env=env, capture_output=True, timeout=300)
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    for a, b in zip(r0["weights"], r1["weights"]): assert torch.equal(a, b)   # identical on both ranks
    (tmp_path / "single").mkdir()
    subprocess.run([sys.executable, str(script), name, str(tmp_path / "single")], check=True, env=env, capture_output=True, timeout=300)
    one = torch.load(tmp_path / "single" / "rank0.pt")
    assert r0["acc"] == r1["acc"]
    assert abs(r0["acc"] - one["acc"]) < 0.01, (r0["acc"], one["acc"])
