"""The strategies the reliability tests run (resume = uninterrupted, same seed = same run).

One entry per strategy or plugin: the class names it needs and a builder. An entry whose classes no module of
clnb defines yet is skipped, so the table can list strategies before their branches land; to add one, add a line.
"""
import importlib, pkgutil, sys
import torch
from torch import nn

def find(name:str):
    "The class `name` from clnb.template, or any module of clnb.plugins / clnb.strategies; None if none defines it."
    import clnb.template
    if hasattr(clnb.template, name): return getattr(clnb.template, name)
    for pkg in ("clnb.plugins", "clnb.strategies"):
        try: p = importlib.import_module(pkg)
        except ImportError: continue
        for m in pkgutil.iter_modules(p.__path__, pkg + "."):
            try: mod = importlib.import_module(m.name)
            except Exception: continue
            if hasattr(mod, name): return getattr(mod, name)
    return None

def with_plugin(cls_name, make):
    "A Naive strategy with the plugin `make(PluginClass, model)`."
    def build(model, opt, **kw): return find("Naive")(model, opt, plugins=[make(find(cls_name), model)], **kw)
    return (cls_name,), build

def strategy(cls_name, **extra):
    "The strategy class `cls_name` with `extra` constructor arguments."
    def build(model, opt, **kw): return find(cls_name)(model, opt, **extra, **kw)
    return (cls_name,), build

class ToyMemory:
    "A stand-in for the plugins landing on other branches, with the kinds of state they keep: a buffer of samples drawn\n    with its own generator and replayed, a frozen copy of the previous model distilled into the new one, a dict of tensors."
    def __init__(self, mem_size=40):
        from clnb.template import SupervisedPlugin
        self.mem_size, self.buffer, self.prev_model, self.importance = mem_size, None, None, {}
        self.g = torch.Generator().manual_seed(123)
    def after_train_dataset_adaptation(self, strategy, **kw):
        if self.buffer is not None: strategy.adapted_dataset = strategy.adapted_dataset + self.buffer
    def before_backward(self, strategy, **kw):
        if self.prev_model is not None:
            with torch.no_grad(): old = self.prev_model(strategy.mb_x)
            strategy.loss = strategy.loss + 0.1 * (strategy.mb_output - old).pow(2).mean()
    def after_training_exp(self, strategy, **kw):
        import copy
        ds = strategy.experience.dataset
        idx = torch.randperm(len(ds), generator=self.g)[:self.mem_size // 2]
        self.buffer = ds.subset(idx) if self.buffer is None else self.buffer + ds.subset(idx)
        self.prev_model = copy.deepcopy(strategy.model).eval()
        self.importance = {n: p.detach().pow(2) + torch.rand(()) for n, p in strategy.model.named_parameters()}

def _toy(model, opt, **kw):
    from clnb.template import Naive, SupervisedPlugin
    plugin = type("ToyMemoryPlugin", (ToyMemory, SupervisedPlugin), {})()
    return Naive(model, opt, plugins=[plugin], **kw)

def _expert_gate(model, opt, **kw):
    "An Expert Gate whose experts start from `model` (small autoencoders, few epochs: a test, not a result)."
    gate = find("ExpertGate")(model)
    return find("ExpertGateStrategy")(gate, torch.optim.SGD(gate.parameters(), lr=0.05, momentum=0.9), ae_train_epochs=2,
                                      ae_train_mb_size=32, ae_latent_dim=16, rel_samples=100, **kw)

BUILDERS = {
    "Naive":     strategy("Naive"),
    "ToyMemory": (("Naive",), _toy),
    "Replay":    with_plugin("ReplayPlugin", lambda P, m: P(mem_size=40)),
    "GDumb":     with_plugin("GDumbPlugin", lambda P, m: P(mem_size=40)),
    "EWC":       with_plugin("EWCPlugin", lambda P, m: P(ewc_lambda=1.0)),
    "OnlineEWC": with_plugin("EWCPlugin", lambda P, m: P(ewc_lambda=1.0, mode="online", decay_factor=0.5)),
    "SI":        with_plugin("SynapticIntelligencePlugin", lambda P, m: P(si_lambda=0.01)),
    "LwF":       with_plugin("LwFPlugin", lambda P, m: P(alpha=1.0, temperature=2)),
    "GEM":       with_plugin("GEMPlugin", lambda P, m: P(patterns_per_experience=20, memory_strength=0.5)),
    "AGEM":      with_plugin("AGEMPlugin", lambda P, m: P(patterns_per_experience=20, sample_size=20)),
    "CWRStar":   with_plugin("CWRStarPlugin", lambda P, m: P(m, cwr_layer_name="classifier", freeze_remaining_model=False)),
    "CoPE":      with_plugin("CoPEPlugin", lambda P, m: P(mem_size=40, n_classes=10, p_size=10)),
    "DER":       strategy("DER", mem_size=40),
    "ExpertGate": (("ExpertGate", "ExpertGateStrategy"), _expert_gate),
    # JointTraining trains once on the whole stream: resuming between experiences does not apply
}
TASK_INCREMENTAL = {"ExpertGate"}   # entries that need a distinct task label per experience

def available(name:str) -> bool:
    return all(find(c) is not None for c in BUILDERS[name][0])

def benchmark(name:str="Naive"):
    "A small Split Fashion-MNIST, task-incremental for the entries that need it."
    from clnb.datasets import split_fmnist
    return split_fmnist(5, return_task_id=name in TASK_INCREMENTAL, seed=None, train_size=500, test_size=200)

def build(name:str, seed:int=0):
    "Seed everything, then build the strategy `name` on a small MLP (CPU)."
    from clnb.engine import set_seed
    from clnb.models import MLP
    from clnb.evaluation import EvaluationPlugin, accuracy_metrics, loss_metrics
    set_seed(seed)
    model = MLP(784, (64,), 10)
    ev = EvaluationPlugin(accuracy_metrics(epoch=True, experience=True, stream=True), loss_metrics(epoch=True, stream=True))
    return BUILDERS[name][1](model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), train_mb_size=32,
                             train_epochs=2, eval_mb_size=200, device="cpu", evaluator=ev)

def build_joint(seed:int=0):
    "A JointTraining on the same small MLP (it trains once, on the whole stream)."
    from clnb.engine import set_seed
    from clnb.models import MLP
    from clnb.evaluation import EvaluationPlugin, accuracy_metrics, loss_metrics
    set_seed(seed)
    model = MLP(784, (64,), 10)
    ev = EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loss_metrics(stream=True))
    return find("JointTraining")(model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), nn.CrossEntropyLoss(),
                                 train_mb_size=32, train_epochs=2, eval_mb_size=200, device="cpu", evaluator=ev)

def run(s, bm, exps, ckpt=None, save_after=None):
    "Train on `exps` (evaluating on the test stream after each); save a checkpoint after experience `save_after`."
    from clnb.checkpoint import save_checkpoint
    for e in exps:
        s.train(e); s.eval(bm.test_stream)
        if ckpt is not None and e.current_experience == save_after: save_checkpoint(s, ckpt)
    return s

def outcome(s) -> dict:
    "What two runs must share: every weight, the last metrics and the accuracy matrix."
    return {"weights": {k: v.clone() for k, v in s.model.state_dict().items()},
            "metrics": s.evaluator.get_last_metrics(), "R": s.evaluator.accuracy_matrix()}

def resume_and_finish(name:str, ckpt:str, out:str):
    "In a new process: build `name` afresh, load `ckpt`, finish the stream, save the outcome to `out`."
    from clnb.checkpoint import maybe_load_checkpoint
    bm = benchmark(name); s = build(name)
    start = maybe_load_checkpoint(ckpt, s)
    run(s, bm, bm.train_stream[start:])
    torch.save(dict(outcome(s), start=start), out)

