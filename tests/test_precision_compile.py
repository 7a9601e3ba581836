"Precision and compile switches of the template on real data: same results as float32 / eager, within tolerance."
import os
import pytest, torch
from clnb.datasets import split_fmnist
from clnb.models import MLP
from clnb.engine import set_seed
from clnb.template import Naive
from clnb.evaluation import EvaluationPlugin, accuracy_metrics

from clnb.cli import eval_metric_name
ACC = eval_metric_name("Top1_Acc_Stream")   # the stream accuracy on the test stream, task 0

def run(**kw):
    set_seed(0)
    bm = split_fmnist(n_experiences=5, seed=None, train_size=3000, test_size=1000)
    model = MLP(784, (64, 64), 10)
    s = Naive(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), train_mb_size=128, eval_mb_size=1024,
              device="cpu", evaluator=EvaluationPlugin(accuracy_metrics(stream=True)), **kw)
    accs = []                       # accuracy on each experience right after learning it (stable, unlike forgetting)
    for e in bm.train_stream: s.train(e); accs.append(s.eval(bm.test_stream[e.current_experience])[ACC])
    return s, sum(accs) / len(accs)

@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_matches_float32(precision):
    (s32, a32), (sp, ap) = run(), run(precision=precision)
    assert abs(ap - a32) <= 0.01, (ap, a32)  # 120 SGD steps amplify 16-bit rounding: compare accuracies, not weights

@pytest.mark.skipif(not os.environ.get("CLNB_SLOW"), reason="slow (torch.compile on the CPU takes minutes): set CLNB_SLOW=1")
def test_compile_matches_eager():
    (se, ae), (sc, ac) = run(), run(compile=True)
    assert sc.model._compiled_call_impl is not None
    assert list(sc.model.state_dict()) == list(se.model.state_dict())   # compiled in place: same keys
    assert abs(ac - ae) <= 0.005, (ac, ae)
    for p, q in zip(sc.model.parameters(), se.model.parameters()): assert (p - q).abs().max() < 1e-3

def test_every_strategy_of_the_template_takes_precision_and_compile():
    "DER and JointTraining have their own constructors: `precision` and `compile` reach the template through them too."
    from clnb.strategies.der import DER
    from clnb.strategies.joint import JointTraining
    from clnb.registry import build_strategy
    for cls in (DER, JointTraining):
        model = MLP(784, (16,), 10)
        s = cls(model, torch.optim.SGD(model.parameters(), lr=0.01), torch.nn.CrossEntropyLoss(), device="cpu",
                precision="bf16-mixed", compile=False, evaluator=None)
        assert s.precision == "bf16-mixed" and s.compile is False
        with pytest.raises(ValueError, match="precision"): cls(model, torch.optim.SGD(model.parameters(), lr=0.01),
                                                                torch.nn.CrossEntropyLoss(), precision="fp8")
    model = MLP(784, (16,), 10)
    assert build_strategy("der", model, torch.optim.SGD(model.parameters(), lr=0.01), precision="bf16-mixed").precision == "bf16-mixed"

def test_der_trains_in_bf16():
    set_seed(0)
    from clnb.strategies.der import DER
    bm = split_fmnist(n_experiences=5, seed=None, train_size=1000, test_size=500)
    model = MLP(784, (32,), 10)
    s = DER(model, torch.optim.SGD(model.parameters(), lr=0.05), mem_size=100, train_mb_size=32, device="cpu",
            precision="bf16-mixed", evaluator=EvaluationPlugin(accuracy_metrics(stream=True)))
    for e in bm.train_stream[:2]: s.train(e)
    assert s.eval(bm.test_stream[:2])[ACC] > 0.5
