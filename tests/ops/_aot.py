"""Ahead-of-time compilation of the Triton kernels for named GPU targets, on a machine without a
GPU (test_kernels_aot.py), in a child process: ``python -m tests.ops._aot --shapes paper --out
FILE`` writes what it compiled and found as JSON.

Why a child: ``triton.jit`` reads TRITON_INTERPRET when it decorates, and Triton decorates its
own library (``tl.sum``, ``tl.randn``, ...) when it is imported, so in the CPU suite's process
(TRITON_INTERPRET=1 before Triton is imported) those are the interpreter's functions and a kernel
that calls them does not compile; the child runs with TRITON_INTERPRET=0 from its start, as a GPU
process does.

The variants are the launchers' own: the ops run (``vaebench.ops``, backend triton, forward and
backward, for every subset of inputs needing a gradient) on meta tensors of the sizes asked for,
with every kernel of every ``@triton_kernels`` file (``kernel_files``) replaced by a recorder, so
no kernel runs and any size costs nothing (past 2**31 elements too). Each recorded launch becomes
the compile request ``JITFunction.run`` would make on a GPU of the target: Triton's own binder
specializes the arguments (dtypes, integer widths and values of 1, 16-divisibility, alignment)
and ``_pack_args`` gives the signature, constexprs and attributes for ``triton.compile(ASTSource(
...), target=...)``. Triton's cache (keyed by the kernel's source hash, the target and the
options) keeps what was compiled.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from vaebench import ops
from vaebench.ops_catalog import INPUTS, sizes
from vaebench_kernels import _backend
from vaebench_kernels._triton_common import compiled_kernels, is_compiled, kernel_files
from vaebench_kernels.validate import TRITON_DTYPES

KB = 1024
BIG = 2**31  # elements: past it the element-wise kernels get 64-bit sizes


@dataclass(frozen=True)
class Target:
    """A GPU target and its limits: registers per thread, shared memory (LDS) per block."""

    name: str
    backend: str
    arch: int | str
    warp_size: int
    max_registers: int
    max_shared: int

    def gpu_target(self):
        from triton.backends.compiler import GPUTarget

        return GPUTarget(self.backend, self.arch, self.warp_size)


# NVIDIA: 255 registers per thread; 163 KB of shared memory per block on sm_80, 227 KB on sm_90
# and sm_100. AMD CDNA3 (MI300): 512 vector registers per lane (256 arch + 256 acc), 64 KB of LDS.
TARGETS = {
    t.name: t
    for t in (
        Target("sm_80", "cuda", 80, 32, 255, 163 * KB),
        Target("sm_90", "cuda", 90, 32, 255, 227 * KB),
        Target("sm_100", "cuda", 100, 32, 255, 227 * KB),
        Target("gfx942", "hip", "gfx942", 64, 512, 64 * KB),
    )
}


# ---- the sizes the launchers are driven at ----------------------------------------


def paper_shapes(op):
    """The paper's and the benchmark's (B, D) on a GPU (ops_catalog.sizes), and one past 2**31 elements."""
    timed = sizes("reparameterize" if op == "reparameterize_seeded" else op, "cuda")
    d = timed[0][1]
    return (*timed, (BIG // d + 1, d))


# every row block (powers of two up to 1024): D below, at and past each power of two, a multiple
# of 16 past it, D = 0 and 1 (a constant to Triton); 1, 3 and past 2**31 / D rows
ALL_D = sorted({0, *range(1, 34), *(d for k in range(5, 12) for d in (2**k - 1, 2**k, 2**k + 1, 2**k + 16))})


def all_shapes(op):
    return [(rows, d) for d in ALL_D for rows in (1, 3, BIG // max(d, 1) + 1)]


# paper: every dtype at the paper's sizes; all: also every row block and size class, the seeds 1
# (a constant to Triton) and 16 (16-divisible), inputs off their 16-byte alignment
SETS = {"paper": (paper_shapes, (7,), (0,)), "all": (all_shapes, (1, 16, 7), (0, 1))}


# ---- the launches the launchers make ---------------------------------------------


@dataclass
class Launch:
    kernel: object  # a compiled JITFunction (compiled_kernels), not the session's kernel
    args: tuple
    kwargs: dict


class _Recorder:
    """Stands in for a kernel: ``kernel[grid](*args, **kwargs)`` records the launch."""

    def __init__(self, kernel, launches: list):
        self.kernel, self.launches = kernel, launches

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.launches.append(Launch(self.kernel, args, kwargs))


@contextlib.contextmanager
def recording():
    """Within: the ops' Triton launches are recorded, not run, and meta tensors pass the device
    check. Yields (the launches, every kernel of the package compiled anew)."""
    launches: list[Launch] = []
    kernels = []
    with pytest.MonkeyPatch.context() as m:
        for name, getter in kernel_files().items():
            built = compiled_kernels(getter)
            recorders = tuple(_Recorder(k, launches) for k in (built if isinstance(built, tuple) else (built,)))
            kernels += [r.kernel for r in recorders]
            stand_in = recorders if isinstance(built, tuple) else recorders[0]
            m.setattr(name, lambda s=stand_in: s)  # the file's @triton_kernels function
        m.setattr(_backend, "require_triton", lambda op, device: None)
        m.setattr(ops, "_validate", False)
        yield launches, kernels


def _arity(op) -> int:
    return 2 if op == "reparameterize_seeded" else len(INPUTS[op][0])  # (mu, logvar, seed)


def drive(op, shape, dtype, *, seed=None, offset=0):
    """Run ``op`` forward and backward on meta tensors of ``shape`` for every subset of its inputs
    needing a gradient; ``offset``: the inputs start that many elements into their storage."""
    fn, n = getattr(ops, op), torch.Size(shape).numel()
    for needs in itertools.product((False, True), repeat=_arity(op)):
        leaves = [
            torch.empty(n + offset, dtype=dtype, device="meta")[offset:].view(shape).requires_grad_(g) for g in needs
        ]
        res = fn(*leaves, seed, backend="triton") if op == "reparameterize_seeded" else fn(*leaves, backend="triton")
        outs = res if isinstance(res, tuple) else (res,)
        if any(needs):
            wanted = [t for t in leaves if t.requires_grad]
            torch.autograd.grad(outs, wanted, [torch.ones_like(o) for o in outs], allow_unused=True)


def record(shapes_of, seeds=(7,), offsets=(0,)):
    """(launches, kernels): every op of vaebench.ops driven in every dtype the Triton backend takes
    (TRITON_DTYPES) at the shapes ``shapes_of(op)``, the seeded op with each of ``seeds``."""
    with recording() as (launches, kernels):
        for op in ops.OPS:
            for shape, dtype, offset in itertools.product(shapes_of(op), TRITON_DTYPES, offsets):
                for seed in seeds if op == "reparameterize_seeded" else (None,):
                    drive(op, shape, dtype, seed=seed, offset=offset)
    return launches, kernels


# ---- compile requests and their resources ------------------------------------------


@dataclass
class Request:
    """What JITFunction.run would compile for a launch on a target."""

    kernel: object
    signature: dict
    constexprs: dict
    attrs: dict
    options: dict
    key: str

    @property
    def name(self) -> str:
        return kernel_name(self.kernel)


def kernel_name(kernel) -> str:
    return f"{kernel.fn.__module__.rsplit('.', 1)[-1]}.{kernel.fn.__name__}"


def requests(launches, target: Target) -> list[Request]:
    """The distinct compile requests of ``launches`` on ``target`` (Triton's binder and _pack_args)."""
    from triton import knobs
    from triton.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature

    backend = make_backend(target.gpu_target())
    binders, out = {}, {}
    for launch in launches:
        k = launch.kernel
        if k not in binders:
            binders[k] = create_function_from_signature(k.signature, k.params, backend)
        kwargs = dict(launch.kwargs)  # as JITFunction.run completes them
        kwargs["debug"] = kwargs.get("debug", k.debug) or knobs.runtime.debug
        kwargs["instrumentation_mode"] = knobs.compilation.instrumentation_mode
        kwargs["fpsan_homomorphic_casts"] = knobs.compilation.fpsan_homomorphic_casts
        bound, specialization, options = binders[k](*launch.args, **kwargs)
        options, signature, constexprs, attrs = k._pack_args(backend, kwargs, bound, specialization, options)
        key = f"{kernel_name(k)} {signature} {constexprs} {attrs}"
        out.setdefault(key, Request(k, signature, constexprs, attrs, options.__dict__, key))
    return list(out.values())


def compile_request(req: Request, target: Target):
    import triton
    from triton.compiler import ASTSource

    src = ASTSource(req.kernel, req.signature, req.constexprs, req.attrs)
    return triton.compile(src, target=target.gpu_target(), options=req.options)


_F64_IR = re.compile(r"(?:\b|\dx)f64\b")  # f64, tensor<1024xf64>


def resources(compiled, target: Target) -> dict:
    """registers (per thread), spills, shared (bytes per block), f64 (float64 in the kernel's
    own Triton IR, before libdevice is linked), f64_machine (float64 instructions in the PTX or
    AMDGCN) and libdevice (whether the vendor math library was linked in)."""
    asm = compiled.asm
    out = {"shared": int(compiled.metadata.shared), "f64": bool(_F64_IR.search(asm["ttgir"]))}
    if target.backend == "cuda":
        usage = _cubin_usage(asm["cubin"])
        out["registers"] = usage["REG"]
        # local memory (the stack frame, where ptxas spills): n_spills as triton's driver reports it
        out["spills"] = (usage["STACK"] + usage["LOCAL"]) // 4
        out["shared"] += usage["SHARED"]
        out["f64_machine"] = len(re.findall(r"^\s*[\w.]+\.f64\b", asm["ptx"], re.M))
        out["libdevice"] = "@__nvvm_reflect" in asm["llir"]
    else:
        meta = dict(re.findall(r"^\s+\.(\w+):\s+(\d+)\s*$", asm["amdgcn"], re.M))
        out["registers"] = int(meta["vgpr_count"])
        out["spills"] = int(meta["vgpr_spill_count"]) + int(meta["sgpr_spill_count"])
        out["shared"] += int(meta["group_segment_fixed_size"])
        out["scratch"] = int(meta["private_segment_fixed_size"])
        out["f64_machine"] = len(re.findall(r"^\s+v_\w*f64", asm["amdgcn"], re.M))
        out["libdevice"] = "__ocml_" in asm["llir"]
    return out


def _cubin_usage(cubin: bytes) -> dict:
    from triton import knobs

    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run(
            [knobs.nvidia.cuobjdump.path, "-res-usage", f.name], capture_output=True, text=True, check=True
        ).stdout
    return {k: int(v) for k, v in re.findall(r"\b(REG|STACK|SHARED|LOCAL):(\d+)", text)}


def problems(res: dict, target: Target) -> list[str]:
    """What in ``res`` (resources()) breaks the target's limits or the fp32 rule."""
    out = []
    if res["registers"] > target.max_registers:
        out.append(f"{res['registers']} registers per thread > {target.max_registers}")
    if res["spills"] or res.get("scratch"):
        out.append(f"spills ({res['spills']} spilled registers, {res.get('scratch', 0)} bytes of scratch)")
    if res["shared"] > target.max_shared:
        out.append(f"{res['shared']} bytes of shared memory per block > {target.max_shared}")
    if res["f64"]:
        out.append("float64 in the kernel's own code (Triton IR)")
    if res["f64_machine"] and not res["libdevice"]:
        out.append(f"{res['f64_machine']} float64 instructions, and no libdevice call to hold them")
    return out


def backend_missing(target: Target) -> str | None:
    """Why the bundled Triton backend cannot compile for ``target`` here (a one-line probe), or None."""
    import triton
    import triton.language as tl
    from triton.compiler import ASTSource

    @triton.jit
    def probe(X, Y, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        tl.store(Y + offs, tl.load(X + offs))

    try:
        src = ASTSource(probe, {"X": "*fp32", "Y": "*fp32", "BLOCK": "constexpr"}, {"BLOCK": 64})
        triton.compile(src, target=target.gpu_target())
    except Exception as exc:
        return f"Triton {triton.__version__}'s bundled {target.backend} backend cannot compile for {target.name}: {exc}"
    return None


def compile_target(launches, target: Target) -> dict:
    """What the child reports for ``target``: each variant's resources, the problems, the time."""
    start = time.perf_counter()
    missing = backend_missing(target)
    if missing:
        return {"skipped": missing}
    variants, found = [], []
    for req in requests(launches, target):
        entry = {
            "kernel": req.name,
            "key": req.key,
            "signature": req.signature,
            "constexprs": {req.kernel.arg_names[i]: v for (i,), v in req.constexprs.items()},
        }
        try:
            entry["resources"] = res = resources(compile_request(req, target), target)
        except Exception as exc:  # a kernel that stops compiling
            found.append(f"{req.key}: does not compile for {target.name}: {str(exc).strip()[:2000]}")
        else:
            found += [f"{req.key}: {p}" for p in problems(res, target)]
        variants.append(entry)
    return {"variants": variants, "problems": found, "seconds": round(time.perf_counter() - start, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.ops._aot")
    p.add_argument("--shapes", choices=sorted(SETS), default="paper")
    p.add_argument("--targets", nargs="+", choices=list(TARGETS), default=list(TARGETS))
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    import triton.language as tl

    launches, kernels = record(*SETS[args.shapes])
    report = {
        "TRITON_INTERPRET": os.environ.get("TRITON_INTERPRET"),
        "compiled": all(is_compiled(k) for k in (*kernels, tl.sum, tl.randn)),  # Triton's library too
        "kernels": sorted(kernel_name(k) for k in kernels),
        "launched": sorted({kernel_name(launch.kernel) for launch in launches}),
        "targets": {name: compile_target(launches, TARGETS[name]) for name in args.targets},
    }
    args.out.write_text(json.dumps(report, indent=1, default=repr))
    return 0


def run_child(shapes: str, out: Path, targets=tuple(TARGETS)) -> dict:
    """main() in a child process with TRITON_INTERPRET=0 from its start; its report."""
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "tests.ops._aot", "--shapes", shapes, "--targets", *targets, "--out", str(out)]
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "TRITON_INTERPRET": "0", "PYTHONPATH": path}
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stderr[-4000:]}"
    return json.loads(out.read_text())


if __name__ == "__main__":
    sys.exit(main())
