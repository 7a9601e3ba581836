"End-to-end checks of the architectural strategies: CWR*, JointTraining, ExpertGate."
import copy
import pytest, torch
from torch import nn
from clnb.data import CLDataset, Experience, Stream, split_benchmark
from clnb.datasets import split_fmnist
from clnb.models import MLP, IncrementalClassifier
from clnb.engine import set_seed
from clnb.template import Naive
from clnb.evaluation import EvaluationPlugin, accuracy_metrics
from clnb.plugins.cwr_star import CWRStarPlugin
from clnb.strategies.joint import JointTraining
from clnb.strategies.expert_gate import ExpertGate, ExpertGateStrategy, ExpertAutoencoder, ExpertModel

STREAM = "Top1_Acc_Stream/eval_phase/test_stream/Task000"

@pytest.fixture(scope="module")
def small_fmnist():
    return split_fmnist(5, seed=None, train_size=10000, test_size=2000)

def ev(): return EvaluationPlugin(accuracy_metrics(experience=True, stream=True))

def sgd(m): return torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

def naive_run(bm, plugins_fn=lambda m: [], model=None):
    set_seed(0)
    model = model or MLP(784, (256, 256), 10)
    s = Naive(model, sgd(model), train_mb_size=128, eval_mb_size=1024, device="cpu", plugins=plugins_fn(model), evaluator=ev())
    for e in bm.train_stream: s.train(e)
    return s, s.eval(bm.test_stream)[STREAM]

def test_cwr_star_beats_naive_on_real_data(small_fmnist):
    _, naive = naive_run(small_fmnist)
    s, cwr = naive_run(small_fmnist, lambda m: [CWRStarPlugin(m)])
    assert cwr > naive + 0.1, (cwr, naive)
    assert s.plugins[0].past_j.tolist() == [1000.] * 10         # every class consolidated once, 500 samples each

def test_cwr_star_state_is_plain_tensors_and_restores(small_fmnist):
    "The plugin's state (tensors) can be copied and put back, as a checkpoint would."
    s, _ = naive_run(small_fmnist, lambda m: [CWRStarPlugin(m)])
    p = s.plugins[0]
    state = {k: (v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)) for k, v in vars(p).items() if k != "model"}
    assert all(isinstance(state[k], torch.Tensor) for k in ("saved_weights", "past_j", "cur_j"))
    fresh = CWRStarPlugin(s.model); vars(fresh).update(state)
    torch.testing.assert_close(fresh.saved_weights, p.saved_weights)

def test_cwr_star_with_incremental_classifier(small_fmnist):
    m = MLP(784, (256, 256), 2); m.classifier = IncrementalClassifier(256)
    s, acc = naive_run(small_fmnist, lambda mm: [CWRStarPlugin(mm)], model=m)
    assert m.classifier.out_features == 10 and s.plugins[0].saved_weights.shape == (10, 257)
    assert acc > 0.25

def test_joint_training_upper_bound(small_fmnist):
    set_seed(0); m = MLP(784, (256, 256), 10)
    jt = JointTraining(m, sgd(m), nn.CrossEntropyLoss(), train_mb_size=128, train_epochs=2, eval_mb_size=1024, evaluator=ev())
    jt.train(small_fmnist.train_stream)
    acc = jt.eval(small_fmnist.test_stream)[STREAM]
    _, naive = naive_run(small_fmnist)
    assert acc > 0.7 and acc > naive + 0.4, (acc, naive)
    with pytest.raises(RuntimeError, match="already been trained"): jt.train(small_fmnist.train_stream)

def test_joint_training_task_incremental_real_data():
    bm = split_fmnist(5, seed=None, return_task_id=True, class_ids_from_zero_in_each_exp=True, train_size=2500, test_size=1000)
    set_seed(0); m = MLP(784, (128,), 2)
    jt = JointTraining(m, sgd(m), nn.CrossEntropyLoss(), train_mb_size=32, eval_mb_size=1024, evaluator=ev())
    jt.train(bm.train_stream)
    r = jt.eval(bm.test_stream)
    accs = [r[f"Top1_Acc_Stream/eval_phase/test_stream/Task{t:03d}"] for t in range(5)]
    assert sorted(jt.task_layers) == [0, 1, 2, 3, 4] and min(accs) > 0.75, accs

def test_expert_gate_on_real_data_slice():
    "Two Fashion-MNIST tasks that look nothing alike (T-shirt/trouser, bag/ankle boot) are routed almost perfectly."
    bm = split_fmnist(5, seed=None, train_size=5000, test_size=2000)
    tr = Stream("train", [bm.train_stream[j].dataset.with_task_label(i) for i, j in enumerate([0, 4])])
    te = Stream("test", [bm.test_stream[j].dataset.with_task_label(i) for i, j in enumerate([0, 4])])
    set_seed(0); gate = ExpertGate(MLP(784, (128,), 10))
    s = ExpertGateStrategy(gate, sgd(gate), train_mb_size=64, eval_mb_size=1024, device="cpu", ae_train_mb_size=16, ae_train_epochs=10,
                           ae_latent_dim=200, ae_lr=2.0, evaluator=ev())
    for e in tr: s.train(e)
    assert min(gate.gate_accuracy(e.dataset) for e in te) > 0.95
    no_t = Stream("test", [CLDataset(e.dataset.x, e.dataset.y) for e in te])
    assert s.eval(no_t)[STREAM] > 0.9
    assert s.expert_origin[1][0] == 0 and s.relatedness[1][0] < 1

def test_expert_gate_bad_input():
    gate = ExpertGate(MLP(4, 3, 2))
    with pytest.raises(ValueError, match="rel_samples: expected a positive int"):
        ExpertGateStrategy(gate, sgd(gate), rel_samples=0)
    with pytest.raises(ValueError, match="lwf_alpha: expected a finite number >= 0"):
        ExpertGateStrategy(gate, sgd(gate), lwf_alpha=-1)
    with pytest.raises(ValueError, match="classes: class 5 is outside the expert template's 2 outputs"):
        gate.add_expert(0, [4, 5])
