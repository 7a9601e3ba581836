"""Issue 17's guards, across chapters: the strategy is never left training, divergence is flagged (weights, 'skip',
evaluation), duplicate stateful plugins and mixed input shapes are refused up front, DER's coefficients are checked, and
every strategy class declares whether it supports data-parallel training (JointTraining is tested on 2 processes)."""
import os, socket, subprocess, sys, textwrap, warnings
import pytest, torch
from torch import nn
from clnb.data import CLDataset, Experience, Stream
from clnb.protocol import toy_benchmark
from clnb.template import Naive, SupervisedPlugin, SupervisedTemplate, NonFiniteLossError
from clnb.evaluation import EvaluationPlugin, accuracy_metrics
from clnb.checkpoint import save_checkpoint, load_checkpoint

def toy(n=64, d=4, classes=4, n_exp=2, **kw):
    return toy_benchmark(n_exp, d, n_classes=classes, n_samples=n, separation=3., **kw)

def naive(plugins=(), model=None, lr=0.1, **kw):
    torch.manual_seed(0)
    model = model or nn.Linear(4, 4)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    return Naive(model, opt, train_mb_size=8, device="cpu", plugins=list(plugins), **kw)

# -- item 8: is_training after any exception -------------------------------------------------------------------------
class Interrupt(SupervisedPlugin):
    "Raises KeyboardInterrupt once, from inside a callback (a user pressing stop in a notebook)."
    def __init__(self): self.armed = True
    def after_update(self, strategy, **kw):
        if self.armed: self.armed = False; raise KeyboardInterrupt

class NaNPenalty(SupervisedPlugin):
    def before_backward(self, strategy, **kw):
        if strategy.clock.train_epoch_iterations == 1: strategy.loss = strategy.loss * float("nan")

@pytest.mark.parametrize("plugin, exc", [(Interrupt, KeyboardInterrupt), (NaNPenalty, NonFiniteLossError)])
def test_strategy_can_be_saved_and_trained_after_an_exception(plugin, exc, tmp_path):
    bm, p = toy(), plugin()
    s = naive([p])
    with pytest.raises(exc): s.train(bm.train_stream)
    assert s.is_training is False
    save_checkpoint(s, tmp_path / "after.pt")                    # "the strategy is training" before the fix
    load_checkpoint(tmp_path / "after.pt", naive([plugin()]))
    if plugin is NaNPenalty: s.plugins.remove(p)
    s.train(bm.train_stream)                                     # and it trains again
    assert s.clock.train_exp_counter == 2 and s.is_training is False

# -- item 7: silent wrong results -------------------------------------------------------------------------------------
class SqrtAtZero(SupervisedPlugin):
    "A penalty equal to 0 (finite loss) whose gradient is NaN: d sqrt(|u|) at u = 0, in the first step."
    def before_backward(self, strategy, **kw):
        if strategy.clock.train_iterations == 0:
            w = strategy.model.weight; strategy.loss = strategy.loss + (w - w.detach()).abs().sqrt().sum()

def test_skip_refuses_to_skip_when_the_weights_are_nan():
    s = naive([SqrtAtZero()]); s.nan_policy = "skip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        msg = r"nan_policy='skip' cannot skip the minibatch .* the weights \['weight'\] are non-finite"
        with pytest.raises(NonFiniteLossError, match=msg): s.train(toy().train_stream)
    assert s.skipped_batches == 0 and s.is_training is False

def test_an_epoch_that_skipped_everything_is_an_error():
    class AlwaysNaN(SupervisedPlugin):
        def before_backward(self, strategy, **kw): strategy.loss = strategy.loss * float("nan")
    s = naive([AlwaysNaN()]); s.nan_policy = "skip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(NonFiniteLossError, match="skipped all 4 minibatches of epoch 0 of experience 0"):
            s.train(toy().train_stream)

def test_weights_driven_to_1e13_with_finite_losses_are_flagged():
    bm, losses = toy(), []
    class Losses(SupervisedPlugin):
        def before_backward(self, strategy, **kw): losses.append(float(strategy.loss))
    s = naive([Losses()], model=nn.Linear(4, 4), lr=1e13); s.weight_check_every = 4   # once per epoch of 4 minibatches
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always"); s.train(bm.train_stream[0])
    assert all(torch.isfinite(torch.tensor(losses))) and s.model.weight.abs().max() > 1e12
    msgs = [str(x.message) for x in w if "large weights" in str(x.message)]
    assert len(msgs) == 1 and "in 'weight'" in msgs[0] and "large_weight_threshold = 1e+06" in msgs[0], msgs

def test_nan_weights_after_a_finite_loss_are_an_error_under_raise():
    class LastStepSqrt(SqrtAtZero):
        def before_backward(self, strategy, **kw):
            if strategy.clock.train_epoch_iterations == 3:   # the last of 4 minibatches: no later loss to catch it
                w = strategy.model.weight; strategy.loss = strategy.loss + (w - w.detach()).abs().sqrt().sum()
    s = naive([LastStepSqrt()]); s.weight_check_every = 4
    with pytest.raises(NonFiniteLossError, match=r"the weights \['weight'\] are non-finite at the end of epoch 0"):
        s.train(toy().train_stream)

def test_nan_inputs_at_evaluation_name_the_experience():
    bm = toy(); s = naive(); s.train(bm.train_stream)
    xt = bm.test_stream[1].dataset.x.clone(); xt[[2, 7], 0] = float("nan")
    stream = Stream("test", [bm.test_stream[0].dataset, CLDataset(xt, bm.test_stream[1].dataset.y)])
    msg = "outputs on experience 1 of test_stream hold NaN or inf at evaluation: 2 of its 32 inputs"
    with pytest.raises(NonFiniteLossError, match=msg): s.eval(stream)
    assert s.is_training is False
    s.nan_policy = "off"; s.eval(stream)                          # evaluates anyway when asked

def test_two_replay_plugins_are_refused_but_observers_may_repeat():
    from clnb.plugins.replay import ReplayPlugin
    with pytest.raises(ValueError, match=r"plugins\[1\]: a second ReplayPlugin \(the first is plugins\[0\]\)"):
        naive([ReplayPlugin(mem_size=20), ReplayPlugin(mem_size=40)])
    observers = [EvaluationPlugin(accuracy_metrics(stream=True)), EvaluationPlugin(accuracy_metrics(stream=True))]
    naive(observers).train(toy().train_stream[0])
    assert SupervisedPlugin.stateful is True and EvaluationPlugin.stateful is False

# -- item 10: input shapes, DER's coefficients ------------------------------------------------------------------------
def test_experiences_of_different_shapes_fail_before_the_first_trains():
    from clnb.datasets import split_fmnist
    from clnb.models import MLP
    bm = split_fmnist(5, seed=None, train_size=500, test_size=100)
    exp_784 = bm.train_stream[0]
    exp_100 = Experience(CLDataset(torch.randn(50, 100), torch.arange(2).repeat(25)), 1, bm.train_stream)
    model = MLP(784, (32,), 10); w = [p.detach().clone() for p in model.parameters()]
    s = Naive(model, torch.optim.SGD(model.parameters(), lr=0.1), train_mb_size=32, device="cpu")
    msg = (r"experiences\[1\] \(experience 1 of train_stream\) has inputs of shape \(100,\), "
           r"but experiences\[0\] \(experience 0 of train_stream\) has \(1, 28, 28\)")
    with pytest.raises(ValueError, match=msg): s.train([exp_784, exp_100])
    msg = r"model: failed on one input of shape \(100,\) of experience 1 of train_stream"
    with pytest.raises(ValueError, match=msg): s.train([exp_100])
    assert s.clock.train_iterations == 0 and all(torch.equal(a, b) for a, b in zip(w, model.parameters()))

@pytest.mark.parametrize("kw, msg", [
    (dict(alpha=float("nan")), "alpha: expected a finite non-negative number, got nan"),
    (dict(beta=float("nan")), "beta: expected a finite non-negative number, got nan"),
    (dict(alpha=-1.0), "alpha: expected a finite non-negative number, got -1.0"),
    (dict(beta=float("inf")), "beta: expected a finite non-negative number, got inf")])
def test_der_refuses_nan_and_negative_coefficients(kw, msg):
    from clnb.strategies.der import DER
    m = nn.Linear(4, 4)
    with pytest.raises(ValueError, match=msg.replace("(", r"\(")): DER(m, torch.optim.SGD(m.parameters(), lr=0.1), **kw)

# -- item 11's hook ---------------------------------------------------------------------------------------------------
def test_divergence_hints_end_the_error_message():
    class Hinted(NaNPenalty):
        def divergence_hint(self, strategy): return "lambda=1000 diverged; try lambda=10"
    class Quiet(SupervisedPlugin):
        def after_update(self, strategy, **kw): pass
    with pytest.raises(NonFiniteLossError, match="; hint from Hinted: lambda=1000 diverged; try lambda=10$"):
        naive([Quiet(), Hinted()]).train(toy().train_stream)

# -- item 6: every strategy class declares data-parallel support ------------------------------------------------------
def strategy_classes():
    "Every SupervisedTemplate subclass clnb defines (template and strategies)."
    import importlib, pkgutil, clnb.strategies
    for m in pkgutil.iter_modules(clnb.strategies.__path__, "clnb.strategies."): importlib.import_module(m.name)
    seen, todo = [], [SupervisedTemplate]
    while todo:
        c = todo.pop()
        if c.__module__.startswith("clnb.") and c not in seen: seen.append(c)
        todo += c.__subclasses__()
    return seen

def test_every_strategy_is_classified_and_make_distributed_checks_the_class():
    from clnb.distributed import make_distributed, check_distributed
    declared = {c.__name__: vars(c).get("supports_distributed") for c in strategy_classes()}
    assert {k: declared[k] for k in ("SupervisedTemplate", "Naive", "DER", "JointTraining")} == \
        dict(SupervisedTemplate=True, Naive=True, DER=False, JointTraining=True), declared
    from clnb.strategies.der import DER
    m = nn.Linear(4, 4)
    d = DER(m, torch.optim.SGD(m.parameters(), lr=0.1), mem_size=10)
    with pytest.raises(ValueError, match="strategy: DER does not support distributed training"): make_distributed(d)
    class Custom(Naive): pass                                   # declares nothing: refused, saying so
    with pytest.raises(ValueError, match="strategy: Custom has not declared whether it supports distributed training"):
        check_distributed(Custom(m, torch.optim.SGD(m.parameters(), lr=0.1)))
    for c in strategy_classes():                                 # ExpertGate: refused until it declares True
        if vars(c).get("supports_distributed") is not True:
            with pytest.raises(ValueError, match=f"strategy: {c.__name__} "): check_distributed(c.__new__(c))

SCRIPT = textwrap.dedent('''
    import os, sys, torch
    from torch import nn
    from clnb.protocol import toy_benchmark
    from clnb.template import Naive, SupervisedPlugin
    from clnb.strategies.joint import JointTraining
    from clnb.evaluation import EvaluationPlugin, accuracy_metrics
    from clnb.distributed import init_distributed, make_distributed, get_rank, is_dist
    from clnb.cli import eval_metric_name
    mode, out = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    device = init_distributed() if "RANK" in os.environ else torch.device("cpu")
    bm = toy_benchmark(3, 6, n_samples=192, separation=2., task_labels=(mode == "multi"))
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features, self.classifier = nn.Sequential(nn.Linear(6, 16), nn.ReLU()), nn.Linear(16, 6)
        def forward(self, x): return self.classifier(self.features(x))
    torch.manual_seed(0); net = Net()
    s = JointTraining(net, torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9), nn.CrossEntropyLoss(),
                      train_mb_size=16, train_epochs=2, eval_mb_size=64, device=device,
                      evaluator=EvaluationPlugin(accuracy_metrics(stream=True)))
    make_distributed(s)
    s.train(bm.train_stream)
    acc = s.eval(bm.test_stream)[eval_metric_name("Top1_Acc_Stream")]
    heads = {t: [p.detach().clone() for p in l.parameters()] for t, l in s.task_layers.items()}
    late = None
    if is_dist():                       # a plugin added after make_distributed is refused when training starts
        class Late(SupervisedPlugin):
            def after_training_iteration(self, strategy, **kw): pass
        m = nn.Linear(6, 6); n = make_distributed(Naive(m, torch.optim.SGD(m.parameters(), lr=0.1), device=device))
        n.plugins.insert(1, Late())
        try: n.train(bm.train_stream[0])
        except ValueError as e: late = str(e)
    torch.save({"weights": [p.detach() for p in net.features.parameters()], "heads": heads, "acc": acc, "late": late},
               f"{out}/rank{get_rank()}.pt")
    if is_dist(): torch.distributed.barrier(); torch.distributed.destroy_process_group()
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)   # skip interpreter teardown: torch's gloo threads sometimes abort there ('terminate called ...')
''')

def _free_port():
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

@pytest.mark.parametrize("mode", ["single", "multi"])
def test_joint_training_on_two_ranks_matches_one_process(mode, tmp_path):
    script = tmp_path / "joint.py"; script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    (tmp_path / "ddp").mkdir(); (tmp_path / "one").mkdir()
    run = dict(check=True, env=env, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                    str(_free_port()), str(script), mode, str(tmp_path / "ddp")], **run)
    subprocess.run([sys.executable, str(script), mode, str(tmp_path / "one")], **run)
    r0, r1, one = (torch.load(tmp_path / f) for f in ("ddp/rank0.pt", "ddp/rank1.pt", "one/rank0.pt"))
    for a, b in zip(r0["weights"], r1["weights"]): assert torch.equal(a, b)                  # identical on both ranks
    assert r0["heads"].keys() == r1["heads"].keys() == one["heads"].keys()
    for t in r0["heads"]:
        for a, b in zip(r0["heads"][t], r1["heads"][t]): assert torch.equal(a, b)
    if mode == "multi":                  # every rank runs each task minibatch whole: exactly one process's run
        for a, b in zip(r0["weights"], one["weights"]): assert torch.equal(a, b)
        assert sorted(r0["heads"]) == [0, 1, 2]
    else:                                # shards of 8 averaged = the minibatch of 16, up to rounding
        for a, b in zip(r0["weights"], one["weights"]): torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert r0["acc"] == r1["acc"] and abs(r0["acc"] - one["acc"]) < 0.01 and r0["acc"] > 0.5
    assert "plugins: Late do not support distributed training (False by default)" in r0["late"], r0["late"]
