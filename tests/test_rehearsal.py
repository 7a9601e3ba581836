"End-to-end checks of the rehearsal chapters (10_replay, 11_gdumb, 20_der): bad input, real-data gains, determinism, plugin state."
import pytest, torch
from torch import nn
from clnb.template import Naive, SupervisedTemplate
from clnb.plugins.replay import ReplayPlugin
from clnb.memory import ExperienceBalancedStoragePolicy, ClassBalancedStoragePolicy, Buffer
from clnb.protocol import split_fmnist_run
from clnb.plugins.gdumb import GDumbPlugin
from clnb.strategies.der import DER

SMALL = dict(train_size=6000, test_size=2000, device="cpu")

@pytest.mark.parametrize("make, msg", [
    (lambda: ReplayPlugin(0), "mem_size: expected a positive int, got 0"),
    (lambda: ReplayPlugin(mem_size=-1), "mem_size: expected a positive int, got -1"),
    (lambda: ReplayPlugin(200, ExperienceBalancedStoragePolicy({}, 100)), "storage_policy: its mem_size (100) disagrees with mem_size (200)"),
    (lambda: ReplayPlugin(200, ClassBalancedStoragePolicy({}, 201)), "storage_policy: its mem_size (201) disagrees with mem_size (200)"),
    (lambda: ReplayPlugin(200, batch_size_mem=0), "batch_size_mem: expected a positive int, got 0"),
    (lambda: GDumbPlugin(0), "mem_size: expected a positive int, got 0"),
    (lambda: Buffer(0), "mem_size: expected a positive int, got 0"),
    (lambda: DER(nn.Linear(2, 2), torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), mem_size=0), "mem_size: expected a positive int, got 0"),
    (lambda: DER(nn.Linear(2, 2), torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), batch_size_mem=0), "batch_size_mem: expected a positive int, got 0"),
])
def test_bad_input_names_the_argument(make, msg):
    with pytest.raises((ValueError, TypeError)) as e: make()
    assert msg in str(e.value)

def _final(R): return R[-1].mean().item()

def test_rehearsal_beats_naive_on_real_data():
    naive = _final(split_fmnist_run(Naive, **SMALL)[0])
    replay, _, s = split_fmnist_run(Naive, plugins=[ReplayPlugin(500)], **SMALL)
    derpp = _final(split_fmnist_run(DER, mem_size=500, alpha=1.0, beta=0.5, **SMALL)[0])
    assert naive < 0.3 and _final(replay) > naive + 0.15 and derpp > naive + 0.1, (naive, _final(replay), derpp)
    assert sum(len(v) for v in s.plugins[0].ext_mem.values()) == 500

def test_same_seed_same_weights():
    def weights(cls, **kw):
        _, _, s = split_fmnist_run(cls, train_size=2000, test_size=500, device="cpu", **kw)
        return [p.detach().clone() for p in s.model.parameters()]
    for cls, kw in ((Naive, lambda: dict(plugins=[ReplayPlugin(200)])), (DER, lambda: dict(mem_size=200))):
        a, b = weights(cls, **kw()), weights(cls, **kw())
        assert all(torch.equal(p, q) for p, q in zip(a, b))

def _holds_strategy(obj, depth=2):
    if isinstance(obj, SupervisedTemplate): return True
    if depth == 0: return False
    vals = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple, set)) else vars(obj).values() if hasattr(obj, "__dict__") else []
    return any(_holds_strategy(v, depth - 1) for v in vals if not isinstance(v, (torch.Tensor, nn.Module)))

def test_plugin_state_is_plain_and_strategy_free():
    rp, gd = ReplayPlugin(100), GDumbPlugin(100)
    for p in (rp, gd):
        split_fmnist_run(Naive, plugins=[p], train_size=1000, test_size=500, device="cpu")
        assert not _holds_strategy(p)
    assert all(isinstance(v.x, torch.Tensor) for v in rp.ext_mem.values())
    assert all(isinstance(d.x, torch.Tensor) for mem in gd.ext_mem.values() for d in mem.values())
