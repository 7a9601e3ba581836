"Hyperparameters from the seed library transfer: EWC and SI follow its scale by default (issue 17, item 11)."
import inspect, re
import pytest, torch
from clnb.datasets import split_fmnist
from clnb.engine import set_seed
from clnb.models import MLP
from clnb.template import Naive, NonFiniteLossError
from clnb.plugins.ewc import EWCPlugin
from clnb.plugins.si import SynapticIntelligencePlugin

# 40,000 training images (8,000 per experience): the smallest size at which the old scales still diverged here
TRAIN, TEST = 40_000, 2_000

def users_script(plugins, seed=0):
    "A user's script: class-incremental Split FMNIST, clnb's MLP, SGD lr 0.01, momentum 0.9, batches of 128, 1 epoch."
    torch.set_num_threads(1)
    set_seed(seed)
    bm = split_fmnist(5, seed=None, train_size=TRAIN, test_size=TEST)
    model = MLP(784, (256, 256), 10)
    s = Naive(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), train_mb_size=128, eval_mb_size=1024,
              device="cpu", plugins=list(plugins))
    try:
        for e in bm.train_stream: s.train(e)
    except NonFiniteLossError as err: return None, err, s
    return s.eval(bm.test_stream)["Top1_Acc_Stream/eval_phase/test_stream/Task000"], None, s

@pytest.fixture(scope="module")
def naive_accuracy():
    acc, err, _ = users_script([])
    assert err is None
    return acc

@pytest.mark.parametrize("make", [lambda: EWCPlugin(ewc_lambda=1000),
                                  lambda: SynapticIntelligencePlugin(si_lambda=1.0)],
                         ids=["EWCPlugin(ewc_lambda=1000)", "SynapticIntelligencePlugin(si_lambda=1.0)"])
def test_item_11_trains_like_the_seed_library(make, naive_accuracy):
    "Item 11's two cases, script unchanged: no divergence, Naive's accuracy (the seed library's 19.9%) within a point."
    acc, err, _ = users_script([make()])
    assert err is None, f"diverged: {err}"
    assert 0.15 < acc < 0.25, acc
    assert abs(acc - naive_accuracy) < 0.01, (acc, naive_accuracy)

@pytest.mark.parametrize("make, name, option", [
    (lambda: EWCPlugin(ewc_lambda=1000, fisher="exact"), "ewc_lambda", "fisher='exact'"),
    (lambda: SynapticIntelligencePlugin(si_lambda=1.0, importance="paper"), "si_lambda", "importance='paper'")])
def test_the_old_scales_stay_as_options_and_their_hint_names_a_value_that_trains(make, name, option):
    "The previous defaults, now options, still diverge here; the hint names the coefficient and a value that trains."
    plugin = make()
    acc, err, s = users_script([plugin])
    assert err is not None, f"expected the old scale to diverge, got accuracy {acc}"
    hint = plugin.divergence_hint(s)
    assert hint.startswith(f"{type(plugin).__name__}: {name}=1") and f"with {option} can diverge" in hint, hint
    safe = float(re.search(rf"{name}=([0-9.e+-]+) or less", hint).group(1))
    ok = make(); setattr(ok, name, safe)
    acc, err, _ = users_script([ok])
    assert err is None, f"{name}={safe} from the hint diverged: {err}"
    assert 0.15 < acc < 0.25, acc

def test_the_seeds_parameters_keep_their_names_order_and_defaults():
    "New parameters come after the seeds' ones, with defaults; a bad value names the parameter."
    seeds = {EWCPlugin: [("ewc_lambda", inspect.Parameter.empty), ("mode", "separate"), ("decay_factor", None),
                         ("keep_importance_data", False)],
             SynapticIntelligencePlugin: [("si_lambda", inspect.Parameter.empty), ("excluded_parameters", None),
                                          ("device", "as_strategy")]}
    for cls, want in seeds.items():
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        assert [(p.name, p.default) for p in params[:len(want)]] == want
        assert all(p.default is not inspect.Parameter.empty for p in params[len(want):])
    assert inspect.signature(EWCPlugin.__init__).parameters["fisher"].default == "minibatch"
    assert inspect.signature(SynapticIntelligencePlugin.__init__).parameters["importance"].default == "capped"
    with pytest.raises(ValueError, match="fisher: expected 'minibatch' or 'exact', got 'per-sample'"):
        EWCPlugin(1., fisher="per-sample")
    with pytest.raises(ValueError, match="importance: expected 'capped' or 'paper', got 'clnb'"):
        SynapticIntelligencePlugin(1., importance="clnb")

def test_the_registry_keeps_its_tuned_scales():
    "`clnb run --strategy ewc/si` keeps the exact Fisher and the paper's SI scale that its lambdas were chosen for."
    from clnb.registry import build_strategy, run_settings
    model = MLP(784, (256, 256), 10)
    for name, attr, value in (("ewc", "fisher", "exact"), ("si", "importance", "paper")):
        for bench in ("split_fmnist", "split_fmnist_ti"):
            kw = {k: v for k, v in run_settings(name, bench).items() if k not in ("model", "model_kw")}
            s = build_strategy(name, model, torch.optim.SGD(model.parameters(), lr=0.01), **kw)
            assert getattr(s.plugins[0], attr) == value, (name, bench)
