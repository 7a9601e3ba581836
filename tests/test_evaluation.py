"Evaluation across chapters: metrics, accuracy-matrix functions, loggers and plots on one run."
import csv, io, math
import pytest, torch
from torch import nn
from clnb.protocol import toy_benchmark
from clnb.template import Naive
from clnb.evaluation import (EvaluationPlugin, default_evaluator, accuracy_metrics, loss_metrics, forgetting_metrics, bwt_metrics,
                             forward_transfer_metrics, confusion_matrix_metrics, timing_metrics, ram_usage_metrics,
                             average_accuracy, forgetting, bwt, forward_transfer)
from clnb.loggers import CSVLogger, TextLogger, InteractiveLogger, show_progress

def bench(n_exp=3, task_labels=False, n=60, d=6):
    return toy_benchmark(n_exp, d, n_samples=n, separation=2., task_labels=task_labels)

def strategy(ev, d=6, **kw):
    torch.manual_seed(0); m = nn.Linear(d, d)
    return Naive(m, torch.optim.SGD(m.parameters(), lr=0.05), train_mb_size=5, eval_mb_size=7, device="cpu", evaluator=ev, **kw)

def all_metrics():
    return [accuracy_metrics(minibatch=True, epoch=True, epoch_running=True, experience=True, stream=True),
            loss_metrics(epoch=True, experience=True, stream=True), forgetting_metrics(experience=True, stream=True),
            bwt_metrics(experience=True, stream=True), forward_transfer_metrics(experience=True, stream=True),
            confusion_matrix_metrics(experience=True), timing_metrics(epoch=True, experience=True, stream=True),
            ram_usage_metrics(epoch=True, stream=True)]

def run(ev, bm, piecewise=False, **kw):
    s = strategy(ev, **kw)
    evals = lambda: [s.eval(e) for e in bm.test_stream] if piecewise else s.eval(bm.test_stream)
    evals()
    for e in bm.train_stream: s.train(e); evals()
    return s

def test_stream_metrics_equal_functions_of_the_matrix():
    bm = bench(); ev = EvaluationPlugin(*all_metrics()); run(ev, bm)
    R, b, last = ev.accuracy_matrix(), ev.initial_accuracy(), ev.get_last_metrics()
    assert R.shape == (3, 3) and not R.isnan().any() and b.shape == (3,)
    K = "/eval_phase/test_stream"
    assert last[f"StreamForgetting{K}"] == pytest.approx(forgetting(R))
    assert last[f"StreamBWT{K}"] == pytest.approx(bwt(R))
    assert last[f"StreamForwardTransfer{K}"] == pytest.approx(forward_transfer(R, b))
    for j in range(2):
        assert last[f"ExperienceForgetting{K}/Task000/Exp{j:03d}"] == pytest.approx(forgetting(R, per_experience=True)[j].item())
        assert last[f"ExperienceBWT{K}/Task000/Exp{j:03d}"] == pytest.approx(bwt(R, per_experience=True)[j].item())
    # stream accuracy of equal-size experiences is the mean of the last row
    assert last[f"Top1_Acc_Stream{K}/Task000"] == pytest.approx(average_accuracy(R, seen_only=False))
    cm = last[f"ConfusionMatrix_Exp{K}/Task000/Exp002"]
    assert cm.sum() == 20 and cm.trace() / 20 == pytest.approx(R[2, 2].item())

def test_every_value_independent_of_how_eval_is_called():
    bm = bench()
    whole, piece = EvaluationPlugin(*all_metrics()), EvaluationPlugin(*all_metrics())
    run(whole, bm); run(piece, bm, piecewise=True)
    a, b = whole.get_last_metrics(), piece.get_last_metrics()
    assert set(a) == set(b)
    for k in a:
        if k.startswith(("Time_", "RunningTime", "MaxRAM")): continue
        if isinstance(a[k], torch.Tensor): assert torch.equal(a[k], b[k]), k
        else: assert a[k] == pytest.approx(b[k]), k

def test_running_and_minibatch_accuracy_agree_with_epoch():
    bm = bench(); ev = EvaluationPlugin(*all_metrics()); run(ev, bm)
    allm = ev.get_all_metrics()
    T = "/train_phase/train_stream/Task000"
    run_x, run_v = allm[f"Top1_RunningAcc_Epoch{T}"]; ep_x, ep_v = allm[f"Top1_Acc_Epoch{T}"]
    # a value emitted after an iteration carries the count of iterations before it; the epoch's, the count after it
    for x, v in zip(ep_x, ep_v): assert run_v[run_x.index(x - 1)] == pytest.approx(v)
    mb = allm[f"Top1_Acc_MB{T}"][1]                                                # 4 equal minibatches per epoch
    for i, v in enumerate(ep_v): assert sum(mb[4 * i: 4 * i + 4]) / 4 == pytest.approx(v)

def test_task_incremental_keys_and_per_task_matrix():
    bm = bench(task_labels=True); ev = EvaluationPlugin(*all_metrics()); run(ev, bm)
    last = ev.get_last_metrics()
    assert "ExperienceForgetting/eval_phase/test_stream/Task001/Exp001" in last
    assert "Top1_Acc_Stream/eval_phase/test_stream/Task002" in last
    R, R1 = ev.accuracy_matrix(), ev.accuracy_matrix(task=1)
    assert R1.shape == (3, 2) and R1[:, 1].tolist() == R[:, 1].tolist() and R1[:, 0].isnan().all()

def test_periodic_eval_keeps_rows_and_forgetting_consistent():
    bm = bench(); ev = EvaluationPlugin(accuracy_metrics(experience=True), forgetting_metrics(stream=True))
    s = strategy(ev, train_epochs=3, eval_every=1)
    for e in bm.train_stream: s.train(e, eval_streams=[bm.test_stream])
    R = ev.accuracy_matrix()
    assert R.shape == (3, 3)
    assert ev.get_last_metrics()["StreamForgetting/eval_phase/test_stream"] == pytest.approx(forgetting(R))
    with torch.no_grad():
        acc = [(s.model(e.dataset.x).argmax(1) == e.dataset.y).float().mean().item() for e in bm.test_stream]
    assert R[2].tolist() == pytest.approx(acc)

def test_loggers_see_the_same_values(tmp_path):
    bm = bench(); text = io.StringIO()
    ev = EvaluationPlugin(accuracy_metrics(epoch=True, experience=True), loggers=[CSVLogger(tmp_path), TextLogger(text),
                          InteractiveLogger(print_metrics=False, disable=False, bar_file=io.StringIO())])
    run(ev, bm); ev.loggers[0].close()
    rows = list(csv.DictReader(open(tmp_path / "eval_results.csv")))
    assert len(rows) == 4 * 3                                       # 4 evals of 3 experiences
    R = ev.accuracy_matrix()
    for r in rows:
        if int(r["training_exp"]) >= 0: assert float(r["value"]) == pytest.approx(R[int(r["training_exp"]), int(r["exp"])].item())
    assert text.getvalue().count("Epoch 0 ended.") == 3

def test_default_evaluator_is_quiet_under_pytest(monkeypatch):
    monkeypatch.delenv("CLNB_PROGRESS", raising=False)
    assert not show_progress() and default_evaluator().loggers == []
    s = strategy(None); assert s.evaluator.loggers == []
    monkeypatch.setenv("CLNB_PROGRESS", "1")
    assert type(default_evaluator().loggers[0]).__name__ == "InteractiveLogger"

def test_plots_from_a_run():
    import matplotlib; matplotlib.use("agg")
    from clnb.viz import plot_accuracy_matrix, plot_stream_accuracy, plot_metric, NotebookDashboard
    bm = bench(); dash = NotebookDashboard(mode="widget", display=False, refresh=0)
    ev = EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loss_metrics(epoch=True), loggers=[dash]); s = run(ev, bm)
    ax = plot_accuracy_matrix(s); assert ax.images[0].get_array().shape == (3, 3)
    assert len(plot_stream_accuracy(s).lines) == 4
    assert len(plot_metric(s, "Loss_Epoch/*").lines) == 1
    assert dash._repr_png_().startswith(b"\x89PNG") and dash._progress.value == 4
    import matplotlib.pyplot as plt; plt.close("all")
