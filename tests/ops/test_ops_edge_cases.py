"""Edge cases where the kernel backends used to part from eager: an empty last dimension,
double backward, infinite Bernoulli logits and targets; and the kernels package standing
alone (no import of vaebench, cheap error and constants modules)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vaebench_kernels
from vaebench import ops
from vaebench.errors import InputError
from vaebench.ops_catalog import OPS, TENSOR_OPS, available_backends, make_inputs

from ._ops_cases import compare_with_eager, outputs

BACKENDS = available_backends("cpu")
KERNEL_BACKENDS = [b for b in BACKENDS if b in ("numba", "triton")]
INF = float("inf")


# ---- the kernels package stands alone ----------------------------------------------


def test_kernels_import_nothing_from_vaebench():
    root = Path(vaebench_kernels.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            found += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] == "vaebench"]
    assert len(list(root.glob("*.py"))) > 5 and not found, found


def test_each_op_is_named_after_itself_in_the_kernels():
    # kernels/<op>.py defines <op> and the custom op vaebench_kernels::<op> (reparameterize_seeded
    # lives in reparameterize.py, whose kernels it shares), so ops.py translates no names
    for op in OPS:
        fn = ops._kernel(op)
        module = "reparameterize" if op == "reparameterize_seeded" else op
        assert (fn.__name__, fn.__module__) == (op, f"vaebench_kernels.{module}")
        assert hasattr(torch.ops.vaebench_kernels, op), op


def test_kernel_errors_and_constants_import_without_torch_numba_triton():
    code = (
        "import sys, vaebench_kernels.errors, vaebench_kernels.constants; "
        "print(sorted(m for m in ('torch', 'numba', 'triton', 'vaebench') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_vaebench_errors_are_kernel_errors():
    from vaebench_kernels.constants import LOGVAR_MAX, LOGVAR_MIN
    from vaebench_kernels.errors import KernelInputError

    assert issubclass(InputError, KernelInputError) and issubclass(KernelInputError, ValueError)
    assert (ops.LOGVAR_MIN, ops.LOGVAR_MAX) == (LOGVAR_MIN, LOGVAR_MAX) == (-30.0, 20.0)


# ---- an empty last dimension -------------------------------------------------------


def _call(op, backend, shape, dtype=torch.float32):
    """(op's outputs, the inputs that get a gradient) on fresh inputs of ``shape``."""
    inputs = make_inputs("reparameterize" if op == "reparameterize_seeded" else op, shape, dtype, requires_grad=True)
    args = [inputs["mu"], inputs["logvar"], 3] if op == "reparameterize_seeded" else list(inputs.values())
    return outputs(getattr(ops, op)(*args, backend=backend)), [a for a in inputs.values() if a.requires_grad]


@pytest.mark.parametrize("shape", [(2, 3, 0), (4, 0), (2, 0, 5)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@pytest.mark.parametrize("op", OPS)
def test_empty_dimensions_match_eager(op, backend, shape):
    # (2, 3, 0) used to fail with "cannot reshape tensor of 0 elements into shape [-1, 0]"
    results = []
    for b in ("eager", backend):
        outs, leaves = _call(op, b, shape)
        grads = torch.autograd.grad(outs, leaves, [torch.ones_like(o) for o in outs])
        results.append([o.detach() for o in outs] + list(grads))
    for e, a in zip(*results):
        torch.testing.assert_close(a, e)  # same shapes; zeros where eager sums an empty row


# ---- double backward ---------------------------------------------------------------


def _second_derivative(op, backend):
    outs, leaves = _call(op, backend, (3, 4))
    grads = torch.autograd.grad(sum(o.sum() for o in outs), leaves, create_graph=True)
    return torch.autograd.grad(sum((g * g).sum() for g in grads), leaves, allow_unused=True)


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
@pytest.mark.parametrize("op", OPS)
def test_double_backward_is_refused_on_kernel_backends(op, backend):
    # it used to give None (or nothing to differentiate) where eager gives a value
    assert any(s is not None and s.abs().sum() > 0 for s in _second_derivative(op, "eager"))
    with pytest.raises(NotImplementedError, match=f"{op}: double backward .* not supported on backend '{backend}'"):
        _second_derivative(op, backend)


@pytest.mark.parametrize("op", OPS)
def test_first_backward_with_retain_graph_still_works_on_kernels(op):
    # the likelihoods' eager path scales its gradient buffers in place: a second backward recomputes them
    for backend in KERNEL_BACKENDS:
        outs, leaves = _call(op, backend, (3, 4))
        g1 = torch.autograd.grad(outs[0].sum(), leaves, retain_graph=True)
        g2 = torch.autograd.grad(outs[0].sum(), leaves)
        for a, b in zip(g1, g2):
            torch.testing.assert_close(a, b)


# ---- infinite Bernoulli logits and targets -----------------------------------------


def _infinite_cases(copies):
    """Each pair of a logit in {0, +-3, +-100, +-inf} and a target in {+-inf, 0, 1, 0.3} on a row
    of its own (an inf in a row's sum would hide another case), ``copies`` times, at varying
    columns of 64 ordinary values (the vectorised loop sees it at every lane)."""
    l, x = (
        torch.cartesian_prod(
            torch.tensor([0.0, 3.0, -3.0, 100.0, -100.0, INF, -INF]), torch.tensor([INF, -INF, 0.0, 1.0, 0.3])
        )
        .repeat(copies, 1)
        .T
    )
    inputs = make_inputs("bernoulli_log_likelihood", (len(l), 64))
    rows, cols = torch.arange(len(l)), torch.arange(len(l)) % 64
    inputs["logits"][rows, cols], inputs["x"][rows, cols] = l, x
    return inputs


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "eager"])
@pytest.mark.parametrize("copies", [1, 30], ids=["serial", "parallel"])  # 30 x 35 x 64 >= PARALLEL_MIN
def test_bernoulli_infinite_logits_and_targets_match_eager(backend, copies):
    # kernels gave NaN for l = +inf, x = 0 (inf - inf) where eager gives -inf, and -inf for
    # l = -inf, x = 1 where eager gives NaN: now every backend evaluates eager's formula
    if backend == "compile":
        torch._dynamo.reset()
    compare_with_eager("bernoulli_log_likelihood", backend, _infinite_cases(copies), ("logits", "x"), torch.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bernoulli_rejects_infinite_targets_under_validation(backend):
    old = ops.get_validation()
    ops.set_validation(True)
    try:
        for v in (INF, -INF):
            with pytest.raises(InputError, match=rf"'x' must lie in \[0, 1\].*{v}"):
                ops.bernoulli_log_likelihood(
                    torch.zeros(2, 3), torch.tensor([[0.0, 1.0, 0.5], [1.0, v, 0.0]]), backend=backend
                )
    finally:
        ops.set_validation(old)


def test_catalog_lists_every_op():
    assert set(TENSOR_OPS) | {"reparameterize_seeded"} == set(OPS) == set(ops.OPS)


def test_catalog_backends_follow_the_device_rules(monkeypatch):
    pytest.importorskip("numba")
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert available_backends("cpu") == ("eager", "numba", "compile")
    assert available_backends("cuda") == ("eager", "triton", "compile")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert available_backends("cpu") == ("eager", "numba", "triton", "compile")
    assert available_backends("cpu", interpreted=False) == ("eager", "numba", "compile")
