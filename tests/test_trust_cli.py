"""Issue 17, the command line: `--out` checked first, never overwritten unasked nor written through a symlink;
every flag checked before training; one-line errors (exit 2); the help; `clnb list`; compare's shared hyperparameters;
GEM without quadprog; and `--checkpoint`/`--resume`, bit for bit after a SIGKILL."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
import clnb.cli as cli
from clnb.cli import main
from clnb.template import SupervisedTemplate, NonFiniteLossError

ROOT = Path(cli.__file__).resolve().parents[1]
SMALL = ["--train-size", "1000", "--test-size", "200", "--epochs", "1", "--no-progress", "--device", "cpu"]

def _no_train(self, *a, **k): raise AssertionError("trained before refusing")

@pytest.fixture
def no_training(monkeypatch):
    "Make any training an error, to show that a refusal comes before it."
    monkeypatch.setattr(SupervisedTemplate, "train", _no_train)

def refused(capsys, argv) -> str:
    "Run `clnb argv`, check it exits 2 with one line on stderr and no traceback; that line."
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()

def _clnb(argv, **kw):
    return subprocess.run([sys.executable, "-m", "clnb.cli", *argv], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300, **kw)

# --- item 4: --out ----------------------------------------------------------------------------------------------

def test_out_with_results_is_refused_without_overwrite(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"; out.mkdir(); (out / "metrics.json").write_text('{"mine": 1}')
    with monkeypatch.context() as m:
        m.setattr(SupervisedTemplate, "train", _no_train)
        err = refused(capsys, ["run", *SMALL, "--out", str(out)])
    assert "--out" in err and "already holds results (metrics.json)" in err and "--overwrite" in err
    assert (out / "metrics.json").read_text() == '{"mine": 1}'
    assert main(["run", *SMALL, "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "metrics.json").read_text())["strategy"] == "naive"

def test_a_second_run_does_not_replace_the_first(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", *SMALL, "--out", str(out)]) == 0
    first = (out / "metrics.json").read_bytes()
    err = refused(capsys, ["run", *SMALL, "--seed", "1", "--out", str(out)])
    assert "already holds results" in err and (out / "metrics.json").read_bytes() == first

@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_planted_symlink_is_refused_by_name(tmp_path, capsys, no_training, overwrite):
    out, target = tmp_path / "run", tmp_path / "precious.txt"
    out.mkdir(); target.write_text("keep me")
    (out / "metrics.csv").symlink_to(target)
    err = refused(capsys, ["run", *SMALL, "--out", str(out), *overwrite])
    assert f"{out / 'metrics.csv'} is a symlink" in err
    assert target.read_text() == "keep me" and (out / "metrics.csv").is_symlink()

def test_out_that_is_a_symlink_is_refused(tmp_path, capsys, no_training):
    (tmp_path / "real").mkdir(); (tmp_path / "link").symlink_to(tmp_path / "real")
    assert "is a symlink" in refused(capsys, ["run", *SMALL, "--out", str(tmp_path / "link")])

@pytest.mark.parametrize("bad", ["file", "file/sub", "/proc/clnb_out"])
def test_an_unusable_out_is_refused_before_training(tmp_path, capsys, no_training, bad):
    (tmp_path / "file").write_text("x")
    out = bad if bad.startswith("/") else str(tmp_path / bad)
    err = refused(capsys, ["run", *SMALL, "--out", out])
    assert err.startswith("clnb run: error: --out: ")
    assert not Path(out).is_dir()

def test_results_are_written_atomically(tmp_path, monkeypatch):
    replaced, real = [], os.replace
    def spy(src, dst): replaced.append((Path(src), Path(dst))); real(src, dst)
    monkeypatch.setattr(os, "replace", spy)
    out = tmp_path / "run"
    assert main(["run", *SMALL, "--out", str(out)]) == 0
    mine = [(s, d) for s, d in replaced if d.parent == out]
    assert sorted(d.name for _, d in mine) == ["accuracy_matrix.png", "metrics.csv", "metrics.json"]
    assert all(s.parent == out and s.name.startswith(f".{d.name}.") and s.name.endswith(".tmp") for s, d in mine)
    assert sorted(p.name for p in out.iterdir()) == ["accuracy_matrix.png", "metrics.csv", "metrics.json"]  # no temp
    umask = os.umask(0); os.umask(umask)
    assert (out / "metrics.json").stat().st_mode & 0o777 == 0o666 & ~umask

# --- item 9: every flag checked up front, naming the flag ----------------------------------------------------------

@pytest.mark.parametrize("argv, flag", [
    (["--lr", "nan"], "--lr"), (["--lr", "1e6"], "--lr"), (["--lr", "0"], "--lr"),
    (["--momentum", "1.5"], "--momentum"), (["--strategy", "der", "--mem-size", "1000000000000"], "--mem-size"),
    (["--strategy", "replay", "--mem-size", "-5"], "--mem-size"),
    (["--train-size", "3"], "--train-size"), (["--test-size", "0"], "--test-size"), (["--epochs", "0"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"), (["--seed", "-1"], "--seed"),
    (["--strategy", "der", "--alpha", "-1"], "--alpha"),
    (["--device", "nonsense"], "--device"), (["--model", "cnn"], "--model"), (["--benchmark", "cifar"], "--benchmark"),
    (["--strategy", "notastrategy"], "--strategy"), (["--epochs", "abc"], "--epochs")])
def test_run_flags_are_checked_before_training(capsys, no_training, argv, flag):
    err = refused(capsys, ["run", *SMALL, *argv])
    assert f"error: {flag}: " in err or f"argument {flag}: " in err, err

def test_train_size_names_the_flag_not_fixed_class_order(capsys, no_training):
    err = refused(capsys, ["run", *SMALL, "--train-size", "3"])
    assert "--train-size: expected an int >= 10 (one sample of each of the 10 classes)" in err and "fixed_class_order" not in err

def test_memory_larger_than_the_stream_is_refused(capsys, no_training):
    err = refused(capsys, ["run", *SMALL, "--strategy", "der", "--mem-size", "1000000000000"])
    assert "--mem-size: expected at most 1,000, the training samples of the whole stream" in err

def test_unknown_hyperparameter_lists_the_valid_ones(capsys, no_training):
    err = refused(capsys, ["run", *SMALL, "--foo", "3"])
    assert "--foo: not a parameter of naive (Naive)" in err and "nor of Naive" not in err and "--eval-every" in err
    err = refused(capsys, ["run", *SMALL, "--strategy", "replay", "--foo", "3"])
    assert "--foo: not a parameter of replay (ReplayPlugin); its own: --mem-size --batch-size-mem" in err

def test_compare_seeds_name_the_flag(capsys, no_training):
    err = refused(capsys, ["compare", *SMALL, "--strategies", "naive", "--seeds", "a,b"])
    assert "--seeds: expected comma-separated integers" in err and "invalid literal" not in err

def test_compare_rejects_a_bad_strategy_before_training_any(capsys, no_training):
    err = refused(capsys, ["compare", *SMALL, "--strategies", "naive,notastrategy"])
    assert "--strategies: unknown 'notastrategy'" in err

def test_compare_checks_every_strategy_value_before_training_any(capsys, no_training):
    err = refused(capsys, ["compare", *SMALL, "--strategies", "naive,der", "--alpha", "-1"])
    assert err.startswith("clnb compare: error: --alpha: ")

# --- one-line errors, --debug, exit codes --------------------------------------------------------------------------

def test_training_time_nonfinite_loss_is_one_line(capsys, monkeypatch):
    def train(self, *a, **k): raise NonFiniteLossError("the loss is nan at experience 0 of train_stream")
    monkeypatch.setattr(SupervisedTemplate, "train", train)
    err = refused(capsys, ["run", *SMALL])
    assert err.startswith("clnb run: error: the loss is nan") and "--lr" in err

def test_any_error_is_one_line_and_debug_shows_the_traceback(capsys, monkeypatch):
    def train(self, *a, **k): raise RuntimeError("something deep\nover two lines")
    monkeypatch.setattr(SupervisedTemplate, "train", train)
    err = refused(capsys, ["run", *SMALL])
    assert "RuntimeError: something deep over two lines" in err and "--debug" in err
    assert main(["run", *SMALL, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("clnb run: error: RuntimeError")

def test_ctrl_c_exits_130(capsys, monkeypatch):
    def train(self, *a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(SupervisedTemplate, "train", train)
    assert main(["run", *SMALL]) == 130 and "interrupted" in capsys.readouterr().err

def test_no_traceback_from_the_console_script():
    p = _clnb(["run", "--lr", "nan", *SMALL])
    assert p.returncode == 2
    assert p.stderr == "clnb run: error: --lr: expected a finite number in (0, 10.0], got nan\n"
    p = _clnb(["run", "--lr", "nan", "--debug", *SMALL])
    assert p.returncode == 2 and "Traceback" in p.stderr

# --- help and list -------------------------------------------------------------------------------------------------

def test_run_help_documents_every_flag_with_its_default_and_the_names(capsys):
    from clnb.registry import STRATEGIES, BENCHMARKS, MODELS
    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    run_parser = next(a for a in cli._parser()._actions if a.dest == "cmd").choices["run"]
    for action in run_parser._actions:
        if action.dest == "help": continue
        assert "(default: " in " ".join(action.help.split()), action.option_strings
        assert action.option_strings[0] in text
    for name in [*STRATEGIES, *BENCHMARKS, *MODELS]: assert name in text, name
    assert "--mem-size 500" in text          # the hyperparameters, with the registry's defaults

def test_clnb_alone_prints_the_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: clnb") and "run" in out and "compare" in out and "list" in out

def test_list_shows_models_and_benchmarks(capsys):
    from clnb.registry import BENCHMARKS, MODELS
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    models, benchmarks = out.index("\nmodels"), out.index("\nbenchmarks")
    for n in MODELS: assert f"\n  {n} " in out[models:benchmarks], n
    for n in BENCHMARKS: assert f"\n  {n} " in out[benchmarks:], n

def test_gem_without_quadprog_is_said_before_training_and_runs(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "quadprog", None)     # as if it were not installed
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    gem = out[out.index("\n  gem "):out.index("\n  agem ")]
    assert "quadprog is not installed" in gem and "built-in" in gem and "pip install quadprog" in gem
    assert main(["run", *SMALL, "--strategy", "gem", "--patterns-per-experience", "32"]) == 0
    captured = capsys.readouterr()
    warned = [l for l in captured.err.splitlines() if "quadprog is not installed" in l]
    assert len(warned) == 1 and warned[0].startswith("clnb: warning: GEMPlugin:")
    assert captured.out.index("gem on split_fmnist: final stream accuracy") > 0

# --- compare shares a hyperparameter with the strategies that take it ---------------------------------------------

def test_compare_applies_a_hyperparameter_to_the_strategies_that_take_it(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", *SMALL, "--strategies", "naive,replay", "--mem-size", "100", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "clnb compare: --mem-size applies to replay only (not taken by naive)" in err
    runs = json.loads((out / "results.json").read_text())
    assert runs["replay"][0]["overrides"] == {"mem_size": 100} and runs["naive"][0]["overrides"] == {}
    assert "already holds results" in refused(capsys, ["compare", *SMALL, "--strategies", "naive", "--out", str(out)])

# --- --checkpoint and --resume: kill the process, resume, same metrics ---------------------------------------------

RUN = ["run", "--strategy", "replay", "--mem-size", "200", "--train-size", "2000", "--test-size", "500",
       "--epochs", "1", "--no-progress", "--device", "cpu"]

def _killed_after(saves:int, argv) -> int:
    "Run `clnb argv` in a process that stalls after its `saves`-th checkpoint, SIGKILL it there; its next experience."
    from clnb.checkpoint import read_header
    code = ("import sys, time, clnb.checkpoint as c\n"
            "real, n = c.save_checkpoint, [0]\n"
            "def stalled(*a, **k):\n"
            "    real(*a, **k); n[0] += 1\n"
            f"    if n[0] == {saves}: time.sleep(600)\n"
            "c.save_checkpoint = stalled\n"
            f"from clnb.cli import main; sys.exit(main({argv!r}))\n")
    ck = Path(argv[argv.index("--checkpoint") + 1]) / "checkpoint.pt"
    p = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        t0 = time.time()
        while time.time() - t0 < 300:
            if ck.exists() and read_header(ck)["next_experience"] == saves: break
            assert p.poll() is None, p.stderr.read()
            time.sleep(0.05)
        time.sleep(0.2)
        assert p.poll() is None        # still running: killed in the middle of the run
        p.send_signal(signal.SIGKILL); p.wait(30)
    finally:
        if p.poll() is None: p.kill()
    assert p.returncode == -signal.SIGKILL
    return read_header(ck)["next_experience"]

def _metrics(folder:Path) -> dict:
    return {k: v for k, v in json.loads((folder / "metrics.json").read_text()).items() if not k.endswith("_time_s")}

@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    "The metrics of the run, never interrupted, in its own process."
    out = tmp_path_factory.mktemp("ref") / "out"
    ref = _clnb([*RUN, "--out", str(out)])
    assert ref.returncode == 0, ref.stderr
    return _metrics(out)

@pytest.mark.parametrize("saves", [1, 3])
def test_resume_after_sigkill_is_bit_exact(tmp_path, uninterrupted, saves):
    argv = [*RUN, "--out", str(tmp_path / "out"), "--checkpoint", str(tmp_path / "ck")]
    assert _killed_after(saves, argv) == saves
    assert not (tmp_path / "out").exists()                          # killed before its results were written
    if saves == 1:
        again = _clnb(argv)                                         # without --resume: refused, the checkpoint is kept
        assert again.returncode == 2 and "already holds a checkpoint; pass --resume" in again.stderr
    resumed = _clnb([*argv, "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert f"{saves} of 5 experiences done" in resumed.stdout
    assert _metrics(tmp_path / "out") == uninterrupted

def test_resume_with_other_settings_is_refused(tmp_path, capsys):
    ck = str(tmp_path / "ck")
    assert main([*RUN, "--checkpoint", ck]) == 0
    capsys.readouterr()
    err = refused(capsys, [*RUN, "--checkpoint", ck, "--resume", "--lr", "0.1"])
    assert "--resume: the checkpoint in" in err and "--lr None there, 0.1 here" in err
    assert "--resume: expected --checkpoint DIR" in refused(capsys, [*RUN, "--resume"])
