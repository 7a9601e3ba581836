"""Issue 17, data files: a data file never runs code, a `$CLNB_DATA` that is set is used or is an error,
and a broken file is named in the error."""
import gzip, os, pickle, struct, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch
import clnb.datasets as ds
from clnb.datasets import CIFAR10_FILES, IDX_FILES, find_data_dir, load_cifar10, load_fmnist

ROOT = Path(__file__).resolve().parents[1]

# ---- files in the official formats, written byte by byte ----------------------------------------------------------
def op_str(b:bytes) -> bytes:
    "A Python 2 byte string: SHORT_BINSTRING (U) or BINSTRING (T)."
    return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

def op_int(n:int) -> bytes:
    "A non-negative int: BININT1 (K), BININT2 (M) or BININT (J)."
    return b"K" + bytes([n]) if n < 256 else b"M" + struct.pack("<H", n) if n < 65536 else b"J" + struct.pack("<i", n)

def py2_array(a) -> bytes:
    "A uint8 array as Python 2's numpy pickled it: REDUCE numpy.core.multiarray._reconstruct, then BUILD its state."
    a = np.ascontiguousarray(a, dtype=np.uint8)
    dtype = (b"cnumpy\ndtype\n" + op_str(b"u1") + b"K\x00K\x01\x87R"
             + b"(K\x03" + op_str(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + op_str(b"b") + b"\x87R"
            + b"(K\x01(" + b"".join(map(op_int, a.shape)) + b"t" + dtype + b"\x89" + op_str(a.tobytes()) + b"tb")

def py2_batch(x, labels) -> bytes:
    "A CIFAR-10 batch as the official archive holds it: a protocol-2 dict with Python 2 byte-string keys."
    names = b"](" + b"".join(op_str(b"img_%d.png" % i) for i in range(len(labels))) + b"e"
    return (b"\x80\x02}(" + op_str(b"data") + py2_array(x) + op_str(b"labels") + b"](" + b"".join(map(op_int, labels))
            + b"e" + op_str(b"batch_label") + op_str(b"training batch") + op_str(b"filenames") + names + b"u.")

def evil_pickle(module:str, name:str, *args:str) -> bytes:
    "A protocol-2 pickle that imports `module.name` and calls it with `args` when loaded."
    args = [a.encode() for a in args]
    call = f"c{module}\n{name}\n(".encode() + b"".join(b"X" + struct.pack("<I", len(a)) + a for a in args) + b"tR"
    return b"\x80\x02" + call + b"."

def cifar_root(root:Path, n:int=3, gz:bool=False) -> Path:
    "Six tiny CIFAR-10 batches below `root` as torchvision unpacks them; batch i has labels i, i+1, ... (mod 10)."
    (root / "cifar-10-batches-py").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, f in enumerate(CIFAR10_FILES):
        raw = py2_batch(rng.integers(0, 256, (n, 3072)), [(i + j) % 10 for j in range(n)])
        (root / (f + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)
    return root

def write_idx(path:Path, arr, code:int=0x08):
    "`arr` as a gzipped IDX file (uint8 unless `code` says otherwise)."
    arr = np.asarray(arr, dtype={0x08: np.uint8, 0x0C: ">i4"}[code])
    path.write_bytes(gzip.compress(struct.pack(f">HBB{arr.ndim}I", 0, code, arr.ndim, *arr.shape) + arr.tobytes()))

def idx_root(root:Path, n:int=6) -> Path:
    "A tiny Fashion-MNIST folder: `n` training and `n` test images, labels 0, 1, 2, ..."
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "t10k"):
        write_idx(root / f"{split}-images-idx3-ubyte.gz", np.full((n, 28, 28), 7))
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return root

def fake_idx(folder:Path, files=IDX_FILES) -> Path:
    "Empty files named like the IDX files: enough for `find_data_dir`, never read."
    folder.mkdir(parents=True, exist_ok=True)
    for f in files: (folder / (f + ".gz")).touch()
    return folder

@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    "No CLNB_DATA or CLNB_DOWNLOAD from the caller's shell, and a fake system folder holding a (fake) Fashion-MNIST."
    monkeypatch.delenv("CLNB_DATA", raising=False); monkeypatch.delenv("CLNB_DOWNLOAD", raising=False)
    monkeypatch.setattr(ds, "SYSTEM_DATA_DIR", tmp_path / "system")
    fake_idx(tmp_path / "system" / "fashion-mnist")

def subprocess_env(**kw) -> dict:
    "The environment of a child Python that imports this worktree's clnb, without CLNB_DATA unless given."
    env = {k: v for k, v in os.environ.items() if k not in ("CLNB_DATA", "CLNB_DOWNLOAD")}
    return {**env, "PYTHONPATH": str(ROOT), **kw}

# ---- item 2: CIFAR pickles never run code ---------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_official_format_cifar_loads(tmp_path, gz):
    root = cifar_root(tmp_path / "c", gz=gz)
    train, test = load_cifar10(root, normalize=False)
    assert train.x.shape == (15, 3, 32, 32) and test.x.shape == (3, 3, 32, 32)
    assert train.y.tolist() == [0, 1, 2, 1, 2, 3, 2, 3, 4, 3, 4, 5, 4, 5, 6] and test.y.tolist() == [5, 6, 7]
    first = pickle.loads(gzip.decompress((root / (CIFAR10_FILES[0] + ".gz")).read_bytes()) if gz
                         else (root / CIFAR10_FILES[0]).read_bytes(), encoding="bytes")[b"data"]  # we wrote it: safe
    assert torch.equal(train.x[2], torch.from_numpy(first[2].reshape(3, 32, 32)).float() / 255)

def test_cifar_found_through_clnb_data(tmp_path, monkeypatch):
    monkeypatch.setenv("CLNB_DATA", str(cifar_root(tmp_path / "data")))   # $CLNB_DATA/cifar-10-batches-py
    assert load_cifar10()[0].x.shape == (15, 3, 32, 32)

def test_the_attack_is_real(tmp_path):
    "The payload used below does create a file under the stock unpickler, so its refusal means something."
    marker = tmp_path / "pwned"
    pickle.loads(evil_pickle("builtins", "open", str(marker), "w")).close()
    assert marker.exists()

ATTACKS = {"os.system": ("os", "system", "touch {m}"), "posix.system": ("posix", "system", "touch {m}"),
           "builtins.open": ("builtins", "open", "{m}", "w"), "__builtin__.open": ("__builtin__", "open", "{m}", "w"),
           "builtins.exec": ("builtins", "exec", "open({m!r}, 'w')"),
           "subprocess.getoutput": ("subprocess", "getoutput", "touch {m}")}

@pytest.mark.parametrize("attack", ATTACKS)
def test_malicious_batch_is_refused_and_never_runs(tmp_path, attack):
    marker, root = tmp_path / "pwned", cifar_root(tmp_path / "c")
    module, name, *args = ATTACKS[attack]
    bad = root / CIFAR10_FILES[3]
    bad.write_bytes(evil_pickle(module, name, *(a.format(m=str(marker)) for a in args)))
    with pytest.raises(ValueError) as e: load_cifar10(root)
    assert f"{bad}: refused to load '{attack}'" in str(e.value) and type(e.value).__name__ == "UnsafePickleError"
    assert not marker.exists()

def test_malicious_batch_in_a_fresh_process(tmp_path):
    "End to end, as a user meets it: a new Python, `load_cifar10` on a folder with a trapped batch."
    marker, root = tmp_path / "pwned", cifar_root(tmp_path / "c", gz=True)
    bad = root / (CIFAR10_FILES[0] + ".gz")
    bad.write_bytes(gzip.compress(evil_pickle("os", "system", f"touch {marker}")))
    r = subprocess.run([sys.executable, "-c", f"from clnb.datasets import load_cifar10; load_cifar10({str(root)!r})"],
                       capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert r.returncode != 0 and f"{bad}: refused to load 'os.system'" in r.stderr, r.stderr[-2000:]
    assert not marker.exists()

# ---- item 7: a CLNB_DATA that is set is used, or is an error ----------------------------------------------------------
def test_clnb_data_missing_folder_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CLNB_DATA", str(tmp_path / "typo"))
    for f in (find_data_dir, load_fmnist):      # the system folder holds a copy: it must not be taken
        with pytest.raises(FileNotFoundError) as e: f()
        msg = str(e.value)
        assert f"CLNB_DATA={tmp_path / 'typo'}: no such folder" in msg
        assert "Expected " + ", ".join(IDX_FILES) + " (plain or .gz)" in msg

def test_clnb_data_incomplete_folder_is_an_error(tmp_path, monkeypatch):
    half = fake_idx(tmp_path / "half", IDX_FILES[:3])
    monkeypatch.setenv("CLNB_DATA", str(half))
    with pytest.raises(FileNotFoundError) as e: load_fmnist()
    assert f"CLNB_DATA={half} does not hold a complete copy of Fashion-MNIST" in str(e.value)
    assert f"{half}: missing t10k-labels-idx1-ubyte" in str(e.value)

def test_clnb_data_without_the_dataset_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CLNB_DATA", str(fake_idx(tmp_path / "fm")))       # holds Fashion-MNIST, not CIFAR-10
    assert find_data_dir() == tmp_path / "fm"
    with pytest.raises(FileNotFoundError, match="does not hold a complete copy of CIFAR-10") as e: load_cifar10()
    assert f"{tmp_path / 'fm'}: missing cifar-10-batches-py/data_batch_1" in str(e.value)

def test_clnb_data_unset_uses_the_system_folder(tmp_path):
    assert find_data_dir() == tmp_path / "system" / "fashion-mnist"
    assert find_data_dir("mnist") is None

def test_download_goes_into_an_empty_clnb_data_when_asked(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ds, "_download", lambda name, root=None: calls.append((name, root, os.environ["CLNB_DATA"])))
    monkeypatch.setenv("CLNB_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="CLNB_DATA="): load_fmnist()
    assert calls == []                                                      # no download unless asked
    with pytest.raises(FileNotFoundError, match="Fashion-MNIST not found"): load_fmnist(download=True)
    assert calls == [("fashion-mnist", None, str(tmp_path / "empty"))]     # asked: it tries, into $CLNB_DATA

def _setup_check_command() -> str:
    "The Python that .ci/setup runs (a here-document) to report where Fashion-MNIST is."
    text = (ROOT / ".ci" / "setup").read_text()
    start = text.index("<<'PY'\n", text.index("find_data_dir") - 200) + 7
    return text[start: text.index("\nPY\n", start)]

def test_ci_setup_check(tmp_path):
    code = _setup_check_command()
    ok = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("Fashion-MNIST:"), ok.stderr[-2000:]
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=subprocess_env(CLNB_DATA=str(tmp_path / "typo")))
    assert bad.returncode != 0 and f"CLNB_DATA={tmp_path / 'typo'}: no such folder" in bad.stderr
    assert "Traceback" not in bad.stderr

def test_cli_names_a_bad_clnb_data(tmp_path):
    code = "import sys; from clnb.cli import main; sys.exit(main(['run', '--train-size', '100', '--no-progress']))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env=subprocess_env(CLNB_DATA=str(tmp_path / "typo")))
    assert r.returncode == 2 and f"CLNB_DATA={tmp_path / 'typo'}: no such folder" in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr

# ---- item 10: broken data files are named ---------------------------------------------------------------------------
@pytest.mark.parametrize("garbage", [b"\x1f\x8b" + bytes(40), gzip.compress(bytes(800))[:-12]], ids=["garbage", "cut"])
def test_garbage_gz_names_the_file(tmp_path, garbage):
    root = idx_root(tmp_path / "fm")
    bad = root / "t10k-images-idx3-ubyte.gz"; bad.write_bytes(garbage)
    with pytest.raises(ValueError, match="not a valid gzip file") as e: load_fmnist(root)
    assert str(e.value).startswith(f"{bad}: ") and not isinstance(e.value, OSError)

def test_garbage_cifar_batch_names_the_file(tmp_path):
    root = cifar_root(tmp_path / "c")
    bad = root / CIFAR10_FILES[5]; bad.write_bytes(b"\x80\x02}(U\x04data")              # a pickle cut short
    with pytest.raises(ValueError, match="not a readable pickle") as e: load_cifar10(root)
    assert str(e.value).startswith(f"{bad}: ")

IDX_DAMAGE = {   # name -> (file to replace, array, IDX type code, expected message)
    "count":     ("train-labels-idx1-ubyte.gz", np.arange(5), 0x08, "5 labels for 6 images"),
    "range":     ("train-labels-idx1-ubyte.gz", [0, 1, 2, 3, 4, 10], 0x08, "label 10 at index 5 is outside 0..9"),
    "magic":     ("t10k-labels-idx1-ubyte.gz", np.zeros((6, 28, 28)), 0x08,
                  "expected IDX magic 0x00000801 (uint8, 1-D), got uint8, 3-D"),
    "int32":     ("t10k-labels-idx1-ubyte.gz", np.arange(6), 0x0C, "expected IDX magic 0x00000801 (uint8, 1-D), got int32"),
    "images":    ("train-images-idx3-ubyte.gz", np.zeros(6), 0x08, "expected IDX magic 0x00000803 (uint8, 3-D)"),
    "size":      ("t10k-images-idx3-ubyte.gz", np.zeros((6, 32, 32)), 0x08, "expected 28x28 images, got (32, 32)"),
}

@pytest.mark.parametrize("damage", IDX_DAMAGE)
def test_idx_errors_name_the_file(tmp_path, damage):
    root = idx_root(tmp_path / "fm")
    name, arr, code, expected = IDX_DAMAGE[damage]
    write_idx(root / name, arr, code)
    with pytest.raises(ValueError) as e: load_fmnist(root)
    assert str(e.value).startswith(f"{root / name}: {expected}"), str(e.value)

def test_not_an_idx_file_names_the_file(tmp_path):
    root = idx_root(tmp_path / "fm")
    bad = root / "train-labels-idx1-ubyte.gz"; bad.write_bytes(gzip.compress(b"\x89PNG\r\n\x1a\n" + bytes(20)))
    with pytest.raises(ValueError, match="not an IDX file") as e: load_fmnist(root)
    assert str(e.value).startswith(f"{bad}: ")
