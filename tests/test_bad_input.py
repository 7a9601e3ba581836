"""The bad-input catalogue: each public constructor, `train` and `eval` fed the wrong thing raises a clear error
naming the argument, before any state changes (model weights and buffers, optimizer state, plugin state).

To extend it, add a row to CASES (any call; `w` is a fresh `World`: a trained strategy with a stateful plugin) or,
for a plugin or strategy, to PLUGIN_CASES (imported from its module: a class that disappears fails the test)."""
import copy
import pytest, torch
from torch import nn
from clnb.data import CLDataset, Experience, Stream, Benchmark, split_benchmark, permuted_benchmark, rotated_benchmark, tensors_benchmark
from clnb.engine import TensorLoader, as_device, set_seed
from clnb.template import Naive, SupervisedPlugin, SupervisedTemplate
from clnb.evaluation import EvaluationPlugin, Accuracy
from clnb.checkpoint import save_checkpoint, load_checkpoint, object_state
import cl_builders as B

def data(n=16, d=4, classes=4, y=None, x=None):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(classes).repeat(n // classes) if y is None else torch.as_tensor(y)
    return CLDataset(torch.randn(len(y), d, generator=g) if x is None else x, y)

class World:
    "A strategy that has trained one experience: momentum in the optimizer, a buffer and a model copy in its plugin."
    def __init__(self, tmp=None):
        set_seed(0)
        self.ds = data(32)
        self.bm = split_benchmark(self.ds, self.ds, 2, shuffle=False)
        self.model = nn.Linear(4, 4)
        self.strategy = B._toy(self.model, torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9), train_mb_size=8, device="cpu")
        self.strategy.train(self.bm.train_stream[0])
        self.tmp = tmp

    def exp(self, ds): return Experience(ds, 0)

    def state(self):
        s = self.strategy
        return copy.deepcopy({"model": s.model.state_dict(), "optimizer": s.optimizer.state_dict(),
                              "plugins": [object_state(p) for p in s.plugins[:-2]], "clock": s.clock.state_dict()})

def equal(a, b, where="state"):
    "Recursive equality of nested dicts/lists/tensors/objects, naming the first difference."
    if isinstance(a, torch.Tensor): assert isinstance(b, torch.Tensor) and torch.equal(a, b), f"{where} changed"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys changed"
        for k in a: equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: length changed"
        for i, (x, y) in enumerate(zip(a, b)): equal(x, y, f"{where}[{i}]")
    elif isinstance(a, nn.Module): equal(a.state_dict(), b.state_dict(), where)
    elif hasattr(a, "__dict__") and not isinstance(a, torch.Generator): equal(vars(a), vars(b), where)
    elif not isinstance(a, torch.Generator): assert a == b, f"{where} changed: {a!r} -> {b!r}"

def other_checkpoint(w):
    m = nn.Linear(4, 5); s = Naive(m, torch.optim.SGD(m.parameters(), lr=0.1), device="cpu")
    return save_checkpoint(s, w.tmp / "other.pt")

M = lambda: nn.Linear(4, 4)
def naive(model=None, **kw):
    model = model or M()
    return Naive(model, torch.optim.SGD(model.parameters(), lr=0.1), **kw)
images = CLDataset(torch.randn(8, 1, 4, 4), torch.arange(4).repeat(2))

CASES = [  # id, call(w), exception, message
    # data
    ("CLDataset-scalar-x",      lambda w: CLDataset(torch.tensor(1.), [0]), ValueError, "x: expected at least one dimension"),
    ("CLDataset-float-y",       lambda w: CLDataset(torch.zeros(3, 2), [0.5, 1., 2.]), TypeError, "y: expected integer labels"),
    ("CLDataset-2d-y",          lambda w: CLDataset(torch.zeros(3, 2), [[0], [1], [2]]), ValueError, "y: expected a 1-d tensor of labels"),
    ("CLDataset-short-y",       lambda w: CLDataset(torch.zeros(3, 2), [0, 1]), ValueError, "y: expected 3 labels (one per row of x), got 2"),
    ("CLDataset-short-t",       lambda w: CLDataset(torch.zeros(3, 2), [0, 1, 2], t=[0, 0]), ValueError, "t: expected 3 labels"),
    ("CLDataset-transform",     lambda w: CLDataset(torch.zeros(3, 2), [0, 1, 2], transform=3), TypeError, "transform: expected a callable or None"),
    ("Experience-not-dataset",  lambda w: Experience([1, 2], 0), TypeError, "dataset: expected a CLDataset, got list"),
    ("Stream-name",             lambda w: Stream(3, []), TypeError, "name: expected a str"),
    ("Benchmark-empty",         lambda w: Benchmark([], []), ValueError, "train_datasets: expected at least one dataset"),
    ("split-zero-experiences",  lambda w: split_benchmark(w.ds, w.ds, 0), ValueError, "n_experiences: expected a positive int, got 0"),
    ("split-uneven",            lambda w: split_benchmark(w.ds, w.ds, 3), ValueError, "n_experiences: 4 classes cannot be split evenly into 3"),
    ("split-not-a-dataset",     lambda w: split_benchmark([1, 2], w.ds, 2), TypeError, "train_dataset: expected a CLDataset or a torch Dataset"),
    ("split-bad-class-order",   lambda w: split_benchmark(w.ds, w.ds, 2, fixed_class_order=[0, 1, 2]), ValueError, "fixed_class_order: expected a permutation"),
    ("permuted-zero",           lambda w: permuted_benchmark(w.ds, w.ds, 0), ValueError, "n_experiences: expected a positive int"),
    ("rotated-not-images",      lambda w: rotated_benchmark(w.ds, w.ds, 2), ValueError, "train_dataset: expected images"),
    ("rotated-short-list",      lambda w: rotated_benchmark(images, images, 2, rotations_list=[10]), ValueError, "rotations_list"),
    ("tensors-empty",           lambda w: tensors_benchmark([], []), ValueError, "train_tensors: expected at least one"),
    ("fmnist-uneven",           lambda w: __import__("clnb.datasets").datasets.split_fmnist(3), ValueError, "n_experiences: 10 classes cannot be split evenly into 3"),
    ("fmnist-negative-size",    lambda w: __import__("clnb.datasets").datasets.split_fmnist(5, train_size=-5), ValueError, "train_size: expected a positive int or None, got -5"),
    ("fmnist-float-size",       lambda w: __import__("clnb.datasets").datasets.split_fmnist(5, test_size=2.5), ValueError, "test_size: expected a positive int or None, got 2.5"),
    # engine
    ("loader-zero-batch",       lambda w: TensorLoader(w.ds, 0), ValueError, "batch_size: expected a positive int, got 0"),
    ("loader-float-batch",      lambda w: TensorLoader(w.ds, 2.5), ValueError, "batch_size: expected a positive int, got 2.5"),
    ("loader-bool-batch",       lambda w: TensorLoader(w.ds, True), ValueError, "batch_size: expected a positive int, got True"),
    ("loader-not-dataset",      lambda w: TensorLoader([1, 2], 2), TypeError, "dataset: expected a CLDataset"),
    ("device-unknown",          lambda w: as_device("gpu7"), ValueError, "device: expected a torch device"),
    ("seed-negative",           lambda w: set_seed(-1), ValueError, "seed: expected a non-negative int, got -1"),
    ("seed-float",              lambda w: set_seed(1.5), ValueError, "seed: expected a non-negative int, got 1.5"),
    ("seed-str",                lambda w: set_seed("0"), ValueError, "seed: expected a non-negative int, got '0'"),
    # strategy constructor
    ("strategy-model",          lambda w: Naive("net", torch.optim.SGD(M().parameters(), lr=0.1)), TypeError, "model: expected a torch.nn.Module, got str"),
    ("strategy-optimizer",      lambda w: Naive(M(), "sgd"), TypeError, "optimizer: expected a torch.optim.Optimizer, got str"),
    ("strategy-foreign-opt",    lambda w: Naive(M(), torch.optim.SGD(M().parameters(), lr=0.1)), ValueError, "optimizer: none of its parameters belong to model"),
    ("strategy-criterion",      lambda w: naive(criterion=3), TypeError, "criterion: expected a callable loss"),
    ("strategy-mb-zero",        lambda w: naive(train_mb_size=0), ValueError, "train_mb_size: expected a positive int, got 0"),
    ("strategy-mb-negative",    lambda w: naive(train_mb_size=-4), ValueError, "train_mb_size: expected a positive int, got -4"),
    ("strategy-mb-float",       lambda w: naive(train_mb_size=1.5), ValueError, "train_mb_size: expected a positive int"),
    ("strategy-epochs-zero",    lambda w: naive(train_epochs=0), ValueError, "train_epochs: expected a positive int, got 0"),
    ("strategy-eval-mb",        lambda w: naive(eval_mb_size=-2), ValueError, "eval_mb_size: expected a positive int or None"),
    ("strategy-eval-every",     lambda w: naive(eval_every=-2), ValueError, "eval_every:"),
    ("strategy-peval-mode",     lambda w: naive(peval_mode="often"), ValueError, "peval_mode: expected 'epoch', 'iteration' or 'experience', got 'often'"),
    ("strategy-device",         lambda w: naive(device="gpu7"), ValueError, "device: expected a torch device"),
    ("strategy-plugin-class",   lambda w: naive(plugins=[SupervisedPlugin]), TypeError, "plugins[0]: expected a plugin instance, got the class SupervisedPlugin"),
    ("strategy-plugin-object",  lambda w: naive(plugins=[3]), TypeError, "plugins[0]: expected a SupervisedPlugin, got int"),
    ("strategy-nan-policy",     lambda w: setattr(w.strategy, "nan_policy", "ignore"), ValueError, "nan_policy: expected 'raise', 'skip' or 'off'"),
    ("strategy-nan-every",      lambda w: setattr(w.strategy, "nan_check_every", -1), ValueError, "nan_check_every: expected a positive int or None"),
    # train / eval on the trained strategy: nothing may change
    ("train-empty-list",        lambda w: w.strategy.train([]), ValueError, "experiences: expected at least one experience, got an empty list"),
    ("train-empty-stream",      lambda w: w.strategy.train(w.bm.train_stream[5:]), ValueError, "experiences: expected at least one experience, got an empty Stream"),
    ("train-dataset",           lambda w: w.strategy.train(w.ds), TypeError, "experiences: expected an Experience or a Stream, got a dataset"),
    ("train-int",               lambda w: w.strategy.train(3), TypeError, "experiences: expected an Experience, a Stream or a list of experiences, got int"),
    ("train-list-of-junk",      lambda w: w.strategy.train([w.bm.train_stream[1], 3]), TypeError, "experiences[1]: expected an Experience, got int"),
    ("train-empty-experience",  lambda w: w.strategy.train(w.exp(data(0, y=torch.zeros(0, dtype=torch.long)))), ValueError, "is empty (0 samples)"),
    ("train-label-too-big",     lambda w: w.strategy.train(w.exp(data(y=[0, 1, 9, 2]))), ValueError, "label 9 is outside the model's 4 outputs (expected labels in [0, 4))"),
    ("train-negative-label",    lambda w: w.strategy.train(w.exp(data(y=[0, -1, 2, 3]))), ValueError, "has negative labels"),
    ("train-wrong-input-shape", lambda w: w.strategy.train(w.exp(data(d=7))), ValueError, "model: failed on one input of shape (7,)"),
    ("train-late-bad-exp",      lambda w: w.strategy.train([w.bm.train_stream[1], w.exp(data(y=[0, 1, 9, 2]))]), ValueError, "label 9 is outside"),
    ("train-eval-streams-int",  lambda w: w.strategy.train(w.bm.train_stream[1], eval_streams=3), TypeError, "eval_streams: expected"),
    ("train-eval-streams-junk", lambda w: w.strategy.train(w.bm.train_stream[1], eval_streams=[3]), TypeError, "eval_streams: expected"),
    ("eval-empty",              lambda w: w.strategy.eval([]), ValueError, "exp_list: expected at least one experience"),
    ("eval-int",                lambda w: w.strategy.eval(3), TypeError, "exp_list: expected an Experience, a Stream or a list"),
    ("eval-label-too-big",      lambda w: w.strategy.eval(w.exp(data(y=[0, 1, 9, 2]))), ValueError, "label 9 is outside the model's 4 outputs"),
    # evaluation
    ("evaluator-metric",        lambda w: EvaluationPlugin(3), TypeError, "metrics[0]: expected a metric (PluginMetric), got int"),
    ("metric-level",            lambda w: Accuracy("daily"), ValueError, "level: expected minibatch, epoch, epoch_running, experience or stream, got 'daily'"),
    # checkpoints
    ("load-missing",            lambda w: load_checkpoint(w.tmp / "none.pt", w.strategy), FileNotFoundError, "path: no checkpoint at"),
    ("load-mismatched",         lambda w: load_checkpoint(other_checkpoint(w), w.strategy), ValueError, "weight is (5, 4) float32 in the checkpoint and (4, 4) float32 here"),
    ("load-not-strategy",       lambda w: load_checkpoint(w.tmp / "none.pt", "strategy"), TypeError, "strategy: expected a SupervisedTemplate"),
    ("save-while-training",     lambda w: save_checkpoint(setattr(w.strategy, "is_training", True) or w.strategy, w.tmp / "x.pt"), RuntimeError, "save_checkpoint: the strategy is training"),
]

@pytest.mark.parametrize("call,exc,msg", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_any_change(call, exc, msg, tmp_path):
    w = World(tmp_path)
    before = w.state()
    with pytest.raises(exc) as e: call(w)
    assert msg in str(e.value), f"message {str(e.value)!r} does not contain {msg!r}"
    w.strategy.is_training = False
    equal(before, w.state())

def test_cuda_asked_on_a_machine_without_it():
    if torch.cuda.is_available(): pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="device: cuda:0 was asked for but CUDA is not available"): naive(device="cuda:0")

# Plugins and strategies: (class, constructor keywords, exception, message naming the argument).
# A strategy class is called as cls(model, optimizer, **keywords).
from clnb.plugins.replay import ReplayPlugin
from clnb.plugins.gdumb import GDumbPlugin
from clnb.plugins.ewc import EWCPlugin
from clnb.plugins.si import SynapticIntelligencePlugin
from clnb.plugins.lwf import LwFPlugin
from clnb.plugins.gem import GEMPlugin
from clnb.plugins.agem import AGEMPlugin
from clnb.plugins.cope import CoPEPlugin
from clnb.strategies.der import DER
PLUGIN_CASES = [
    (ReplayPlugin, dict(mem_size=-1), ValueError, "mem_size: expected a positive int, got -1"),
    (GDumbPlugin, dict(mem_size=-1), ValueError, "mem_size: expected a positive int, got -1"),
    (EWCPlugin, dict(ewc_lambda=-1.0), ValueError, "ewc_lambda"),
    (EWCPlugin, dict(ewc_lambda=1.0, mode="sometimes"), ValueError, "mode"),
    (EWCPlugin, dict(ewc_lambda=1.0, mode="online"), ValueError, "decay_factor"),
    (SynapticIntelligencePlugin, dict(si_lambda=-1.0), ValueError, "si_lambda"),
    (LwFPlugin, dict(alpha=1.0, temperature=0), ValueError, "temperature"),
    (GEMPlugin, dict(patterns_per_experience=0, memory_strength=0.5), ValueError, "patterns_per_experience"),
    (AGEMPlugin, dict(patterns_per_experience=-1, sample_size=10), ValueError, "patterns_per_experience"),
    (AGEMPlugin, dict(patterns_per_experience=10, sample_size=0), ValueError, "sample_size"),
    (CoPEPlugin, dict(mem_size=-1), ValueError, "mem_size"),
    (DER, dict(mem_size=-1), ValueError, "mem_size: expected a positive int, got -1"),
]

@pytest.mark.parametrize("cls,kwargs,exc,msg", PLUGIN_CASES, ids=[f"{c[0].__name__}-{'-'.join(c[1])}" for c in PLUGIN_CASES])
def test_plugin_bad_arguments(cls, kwargs, exc, msg):
    with pytest.raises(exc) as e:
        if isinstance(cls, type) and issubclass(cls, SupervisedTemplate):
            m = M(); cls(m, torch.optim.SGD(m.parameters(), lr=0.1), **kwargs)
        else: cls(**kwargs)
    assert msg in str(e.value), f"message {str(e.value)!r} does not name {msg!r}"
