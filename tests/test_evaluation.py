"Evaluation across chapters: metrics, accuracy-matrix functions, loggers and plots on one run."
import csv, io, math
import pytest, torch
from torch import nn
from clnb.protocol import toy_benchmark
from clnb.template import Naive
from clnb.evaluation import (EvaluationPlugin, default_evaluator, accuracy_metrics, loss_metrics, forgetting_metrics, bwt_metrics,
                             forward_transfer_metrics, confusion_matrix_metrics, timing_metrics, ram_usage_metrics,
                             average_accuracy, forgetting, bwt, forward_transfer, metric_key, stream_acc_key)
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
    K = lambda base, exp=None: metric_key(base, task=None if exp is None else 0, exp=exp)
    assert last[K("StreamForgetting")] == pytest.approx(forgetting(R))
    assert last[K("StreamBWT")] == pytest.approx(bwt(R))
    assert last[K("StreamForwardTransfer")] == pytest.approx(forward_transfer(R, b))
    for j in range(2):
        assert last[K("ExperienceForgetting", j)] == pytest.approx(forgetting(R, per_experience=True)[j].item())
        assert last[K("ExperienceBWT", j)] == pytest.approx(bwt(R, per_experience=True)[j].item())
    # stream accuracy of equal-size experiences is the mean of the last row
    assert last[stream_acc_key()] == pytest.approx(average_accuracy(R, seen_only=False))
    cm = last[K("ConfusionMatrix_Exp", 2)]
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
    T = lambda base: metric_key(base, "train", phase="train")
    run_x, run_v = allm[T("Top1_RunningAcc_Epoch")]; ep_x, ep_v = allm[T("Top1_Acc_Epoch")]
    # a value emitted after an iteration carries the count of iterations before it; the epoch's, the count after it
    for x, v in zip(ep_x, ep_v): assert run_v[run_x.index(x - 1)] == pytest.approx(v)
    mb = allm[T("Top1_Acc_MB")][1]                                                # 4 equal minibatches per epoch
    for i, v in enumerate(ep_v): assert sum(mb[4 * i: 4 * i + 4]) / 4 == pytest.approx(v)

def test_task_incremental_keys_and_per_task_matrix():
    bm = bench(task_labels=True); ev = EvaluationPlugin(*all_metrics()); run(ev, bm)
    last = ev.get_last_metrics()
    assert metric_key("ExperienceForgetting", task=1, exp=1) in last
    assert stream_acc_key(task=2) in last
    R, R1 = ev.accuracy_matrix(), ev.accuracy_matrix(task=1)
    assert R1.shape == (3, 2) and R1[:, 1].tolist() == R[:, 1].tolist() and R1[:, 0].isnan().all()

def test_periodic_eval_keeps_rows_and_forgetting_consistent():
    bm = bench(); ev = EvaluationPlugin(accuracy_metrics(experience=True), forgetting_metrics(stream=True))
    s = strategy(ev, train_epochs=3, eval_every=1)
    for e in bm.train_stream: s.train(e, eval_streams=[bm.test_stream])
    R = ev.accuracy_matrix()
    assert R.shape == (3, 3)
    assert ev.get_last_metrics()[metric_key("StreamForgetting", task=None)] == pytest.approx(forgetting(R))
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

def test_forgetting_and_bwt_metrics_use_the_matrix_functions(monkeypatch):
    "Forgetting.term and BWT.term compute nothing themselves: they read `forgetting`/`bwt` on the matrix."
    import clnb.evaluation as E
    calls = []
    def spy(f): return lambda *a, **k: calls.append(f.__name__) or f(*a, **k)
    monkeypatch.setattr(E, "forgetting", spy(E.forgetting)); monkeypatch.setattr(E, "bwt", spy(E.bwt))
    bm = bench(); ev = EvaluationPlugin(accuracy_metrics(experience=True), forgetting_metrics(experience=True, stream=True),
                                        bwt_metrics(stream=True))
    run(ev, bm)
    assert {"forgetting", "bwt"} <= set(calls)
    R, last = ev.accuracy_matrix(), ev.get_last_metrics()
    assert last[metric_key("StreamForgetting", task=None)] == pytest.approx(forgetting(R))
    assert last[metric_key("StreamBWT", task=None)] == pytest.approx(bwt(R))

def test_no_module_level_correct_cache():
    "The top-1 test of a minibatch is computed once and kept on that minibatch's output, not in a module global."
    import clnb.evaluation as E
    assert not hasattr(E, "_CORRECT")
    class S: pass
    s = S(); s.mb_output = torch.tensor([[0., 1.], [1., 0.]]); s.mb_y = torch.tensor([1, 1])
    c = E.top1_correct(s)
    assert c.tolist() == [True, False] and E.top1_correct(s) is c
    s.mb_output = torch.tensor([[1., 0.], [1., 0.]])
    assert E.top1_correct(s).tolist() == [False, False]

def test_no_import_circle_among_template_evaluation_loggers():
    "template imports neither evaluation nor loggers; loggers does not import evaluation (read from the sources)."
    import ast, inspect, clnb.template, clnb.loggers, clnb.evaluation
    def imported(mod):
        out = set()
        for n in ast.walk(ast.parse(inspect.getsource(mod))):
            if isinstance(n, ast.ImportFrom): out.add((n.module or "").split(".")[-1])
            elif isinstance(n, ast.Import): out.update(a.name.split(".")[-1] for a in n.names)
        return out
    assert not {"evaluation", "loggers"} & imported(clnb.template)
    assert "evaluation" not in imported(clnb.loggers)
    assert "template" in imported(clnb.evaluation) and "loggers" in imported(clnb.evaluation)

def test_one_overrides_for_template_evaluator_and_loggers():
    "The template's callback table and the evaluator's dispatch both follow `overrides`."
    from clnb.template import overrides, SupervisedPlugin, CALLBACKS
    from clnb.loggers import BaseLogger
    class OnlyEpoch(BaseLogger):
        def after_training_epoch(self, strategy, metric_values, **kw): pass
    lg = OnlyEpoch()
    assert [c for c in CALLBACKS if overrides(lg, c)] == ["after_training_epoch"]
    ev = EvaluationPlugin(accuracy_metrics(epoch=True), loggers=[lg])
    assert ev._dispatch["after_training_epoch"][1] == [lg.after_training_epoch]
    assert all(not ls for c, (ms, ls) in ev._dispatch.items() if c != "after_training_epoch")
    s = strategy(ev)
    s._build_callbacks()
    assert [p for p, _ in s._cbs["after_training_epoch"]] == [ev, s.clock]   # the Clock counts epochs
    assert all(overrides(p, c) for c, fs in s._cbs.items() for p, _ in fs)
