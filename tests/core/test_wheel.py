"""A regular (not editable) install reproduces from an empty folder: the configs and the
paper's values ship in the wheel and are found through importlib.resources."""

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOY = (
    "[budgets.quick]\nsamples = 1000\n[defaults]\nfirst_eval = 1000\n[datasets.mnist]\nhidden = 8\nnz = [3]\n"
    "[algorithms.aevb]\nlr = 0.02\n[algorithms.wake-sleep]\nlr = 0.01\n"
)


def run(*argv, cwd, env=None):
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{argv}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    """A virtualenv with vaebench installed from its wheel (dependencies from this one)."""
    pytest.importorskip("setuptools")
    tmp = tmp_path_factory.mktemp("wheel")
    build = tmp / "build"
    build.mkdir()
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        tmp / "dist",
        ROOT,
        cwd=build,
    )
    wheel = next((tmp / "dist").glob("vaebench-*.whl"))
    run(sys.executable, "-m", "venv", tmp / "venv", cwd=tmp)
    run(tmp / "venv" / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel, cwd=tmp)
    # the dependencies (torch, ...) from this environment's site-packages, after the venv's own;
    # a path line in a .pth adds the folder without running its .pth files (no editable vaebench)
    child = next((tmp / "venv" / "lib").glob("python*/site-packages"))
    (child / "zz_parent_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return tmp / "venv"


def test_the_wheel_carries_the_configs_and_paper_values(wheel_venv, tmp_path):
    out = run(
        wheel_venv / "bin" / "python",
        "-c",
        "import vaebench.resources as r; print(r.config_path('figure2')); print(r.config_path('figure3')); "
        "print(r.paper_dir() / 'figure2_reference.csv')",
        cwd=tmp_path,
    )
    paths = [Path(line) for line in out.split()]
    assert all(p.is_file() for p in paths), paths
    assert all("site-packages" in str(p) and not str(p).startswith(str(ROOT)) for p in paths), paths


def test_a_tiny_reproduction_runs_from_an_empty_folder(wheel_venv, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "toy.toml").write_text(TOY)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run(
        wheel_venv / "bin" / "vaebench",
        "reproduce",
        "figure2",
        "--config",
        tmp_path / "toy.toml",
        "--datasets",
        "mnist",
        "--jobs",
        "1",
        "--threads",
        "1",
        "--no-progress",
        cwd=empty,
        env=env,
    )
    out = empty / "results" / "figure2" / "quick"
    assert (out / "figure2_table.md").is_file() and (out / "figure2.png").is_file()
    assert (out / "mnist_nz3_aevb" / "run.json").is_file()
