"Resume = uninterrupted, for every strategy that has landed: train, checkpoint, restart in a new process, finish."
import os, subprocess, sys
from pathlib import Path
import pytest, torch
import cl_builders as B

HERE = Path(__file__).parent

def same(a:dict, b:dict):
    assert list(a["weights"]) == list(b["weights"])
    for k in a["weights"]: assert torch.equal(a["weights"][k], b["weights"][k]), f"weight {k} differs"
    assert a["metrics"] == b["metrics"]
    assert torch.equal(a["R"].nan_to_num(-1), b["R"].nan_to_num(-1))

@pytest.mark.parametrize("name", list(B.BUILDERS))
def test_resume_in_new_process_equals_uninterrupted(name, tmp_path):
    assert B.available(name), f"{name}: {B.BUILDERS[name][0]} no longer in clnb"
    bm, ckpt, out = B.benchmark(name), tmp_path / "ck.pt", tmp_path / "out.pt"
    # the uninterrupted run saves a checkpoint after experience 1 and goes on: saving must not change it
    full = B.outcome(B.run(B.build(name), bm, bm.train_stream, ckpt, save_after=1))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    code = f"import cl_builders; cl_builders.resume_and_finish({name!r}, {str(ckpt)!r}, {str(out)!r})"
    r = subprocess.run([sys.executable, "-c", code],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    resumed = torch.load(out, weights_only=False)
    assert resumed["start"] == 2
    same(full, resumed)
    assert full["R"].shape == (5, 5) and not full["R"].isnan().any()

JOINT = """
import sys, torch, cl_builders as B
from clnb.checkpoint import load_checkpoint
bm = B.benchmark(sys.argv[1]); s = B.build_joint(); load_checkpoint(sys.argv[2], s)
s.eval(bm.test_stream); torch.save(dict(B.outcome(s), fitted=s.is_fitted, heads=sorted(s.task_layers)), sys.argv[3])
"""

@pytest.mark.parametrize("kind", ["Naive", "ExpertGate"])   # one head; one head per task (task-incremental)
def test_joint_training_reloads_in_new_process(kind, tmp_path):
    "JointTraining trains once: a reloaded one evaluates exactly as the trained one, its per-task heads included."
    bm = B.benchmark(kind)
    s = B.build_joint(); s.train(bm.train_stream); s.eval(bm.test_stream)
    from clnb.checkpoint import save_checkpoint
    save_checkpoint(s, tmp_path / "joint.pt")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", JOINT, kind, str(tmp_path / "joint.pt"), str(tmp_path / "out.pt")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    loaded = torch.load(tmp_path / "out.pt", weights_only=False)
    same(B.outcome(s), loaded)
    assert loaded["fitted"] and loaded["heads"] == sorted(s.task_layers)
    assert (len(s.task_layers) == 5) == (kind == "ExpertGate")

def test_checkpoint_of_a_run_differs_from_a_fresh_start(tmp_path):
    "Guard against a vacuous pass: resuming from a checkpoint is not the same as starting over."
    from clnb.checkpoint import save_checkpoint, load_checkpoint
    bm = B.benchmark()
    s = B.run(B.build("Naive"), bm, bm.train_stream[:2]); save_checkpoint(s, tmp_path / "ck.pt")
    fresh = B.build("Naive"); w0 = fresh.model.classifier.weight.detach().clone()
    load_checkpoint(tmp_path / "ck.pt", fresh)
    assert not torch.equal(w0, fresh.model.classifier.weight)
    assert torch.equal(fresh.model.classifier.weight, s.model.classifier.weight)
    assert fresh.clock.train_exp_counter == 2 and fresh.evaluator.accuracy_matrix().shape == (2, 5)

KILL = """
import os, signal, sys, torch, clnb.checkpoint as ck
from torch import nn
from clnb.template import Naive
path, where = sys.argv[1], sys.argv[2]
m = nn.Linear(3, 2); s = Naive(m, torch.optim.SGD(m.parameters(), lr=0.1), device="cpu")
ck.save_checkpoint(s, path)                                  # the last good checkpoint
with torch.no_grad(): m.weight.fill_(7.)
die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if where == "mid-write":                                     # half of the new file reaches the disk, then the process dies
    ck.os.fsync = lambda fd: (os.ftruncate(fd, os.fstat(fd).st_size // 2), die())
else: ck.os.replace = die                                    # fully written, killed before the rename
ck.save_checkpoint(s, path)
"""

@pytest.mark.parametrize("where", ["mid-write", "before-rename"])
def test_killed_while_saving_leaves_the_last_checkpoint(where, tmp_path):
    from torch import nn
    from clnb.template import Naive
    from clnb.checkpoint import load_checkpoint
    path = tmp_path / "ck.pt"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", KILL, str(path), where], env=env, capture_output=True, text=True)
    assert r.returncode == -9, r.stderr[-2000:]
    m = nn.Linear(3, 2); s = Naive(m, torch.optim.SGD(m.parameters(), lr=0.1), device="cpu")
    load_checkpoint(path, s)
    assert not (s.model.weight == 7.).any()
