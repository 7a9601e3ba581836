"""Create `bench/.venv-avalanche` (reusing the installed torch/torchvision) and install avalanche-lib into it.

The best-known CL library is only a point of comparison: it lives in its own virtual environment, made with
`--system-site-packages` so it reuses this machine's torch and torchvision (no second multi-GB torch), and
torch/torchvision are pinned to the installed versions with a constraints file. clnb never depends on it.
Run: python bench/avalanche_env.py   (prints the venv's python; idempotent)
"""
import os, subprocess, sys, venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-avalanche"
PACKAGE = os.environ.get("CLNB_BENCH_AVALANCHE", "avalanche-lib")  # e.g. "avalanche-lib==0.6.0"

def venv_python(venv_dir:Path=VENV) -> Path:
    "The python executable of the venv."
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

def _imports(py:Path) -> bool:
    r = subprocess.run([str(py), "-c", "import avalanche, avalanche.training"], capture_output=True)
    return r.returncode == 0

def ensure(venv_dir:Path=VENV, quiet:bool=True) -> Path:
    "The venv's python, after creating the venv and installing avalanche-lib when needed."
    py = venv_python(venv_dir)
    if py.exists() and _imports(py): return py
    if not py.exists(): venv.EnvBuilder(system_site_packages=True, with_pip=True).create(venv_dir)
    import torch, torchvision  # pin what is installed here, so pip keeps the system torch
    pins = venv_dir / "constraints.txt"
    base = lambda v: v.split("+")[0]  # "==2.14.1" also matches the local build "2.14.1+cu130"
    pins.write_text(f"torch=={base(torch.__version__)}\ntorchvision=={base(torchvision.__version__)}\n")
    cmd = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-c", str(pins), PACKAGE]
    if quiet: cmd.insert(4, "-q")
    subprocess.run(cmd, check=True)
    if not _imports(py):
        r = subprocess.run([str(py), "-c", "import avalanche.training"], capture_output=True, text=True)
        raise RuntimeError(f"avalanche-lib installed in {venv_dir} but does not import:\n{r.stderr[-2000:]}")
    return py

if __name__ == "__main__":
    print(ensure(quiet="-v" not in sys.argv))
