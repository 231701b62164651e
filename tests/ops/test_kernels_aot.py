"""Every Triton kernel variant the launchers request, compiled ahead of time on this CPU machine
for real GPU targets -- NVIDIA sm_80, sm_90 and sm_100, and AMD gfx942 -- and checked against
each target's limits: registers per thread, no spills, shared memory per block, and no float64
in the kernels' own code (float64 instructions only inside libdevice: tl.randn's cosf has them
on its slow path for huge arguments). The variants come from the launchers themselves and are
compiled in a child process without the interpreter (_aot.py). The default suite takes the
paper's and the benchmark's sizes (and one past 2**31 elements) in every dtype; ``-m slow``
also every row block, size class, seed class and misaligned inputs. No GPU runs here: this
shows that the kernels build and fit, not that they give the right values.
"""

from __future__ import annotations

import collections

import pytest

from vaebench import ops
from vaebench_kernels._triton_common import kernel_files
from vaebench_kernels.validate import TRITON_DTYPES

from . import _aot

pytest.importorskip("triton")

TARGETS = list(_aot.TARGETS)


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    """paper(target): the child's report on the paper's variants for ``target``, made on first request."""
    made = {}

    def report(target):
        if target not in made:
            made[target] = _aot.run_child("paper", tmp_path_factory.mktemp("aot") / "paper.json", targets=(target,))
        return made[target]

    return report


def summary(name, report) -> str:
    variants = [v for v in report["variants"] if "resources" in v]
    res = [v["resources"] for v in variants]
    worst = max(variants, key=lambda v: v["resources"]["registers"])
    f64 = collections.Counter(v["kernel"] for v in variants if v["resources"]["f64_machine"])
    return (
        f"{name}: {len(variants)} variants of {len({v['kernel'] for v in variants})} kernels in {report['seconds']} s; "
        f"at most {worst['resources']['registers']} registers ({worst['kernel']}), "
        f"{max(r['spills'] for r in res)} spills, at most {max(r['shared'] for r in res)} bytes of shared memory; "
        f"float64 instructions (libdevice) in {dict(f64) or 'none'}"
    )


def check(report, name):
    got = report["targets"][name]
    if "skipped" in got:
        pytest.skip(got["skipped"])
    assert not got["problems"], "\n".join(got["problems"])
    print(summary(name, got))


@pytest.mark.parametrize("target", TARGETS)
def test_paper_variants_compile_within_the_limits(paper, target):
    check(paper(target), target)


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_every_variant_compiles_within_the_limits(target, tmp_path):
    check(_aot.run_child("all", tmp_path / "all.json", targets=(target,)), target)


def test_the_compile_runs_without_the_interpreter(paper):
    # the CPU suite has the interpreter on; the child compiles with it off from its start, so the
    # kernels and Triton's own library (tl.sum, tl.randn) are compiled JITFunctions there
    report = paper("sm_80")
    assert report["TRITON_INTERPRET"] == "0" and report["compiled"]


def test_the_variants_are_the_launchers(paper):
    # every kernel of every @triton_kernels file is launched, in every dtype the backend takes,
    # with both values of each on/off switch, and with 64-bit sizes too
    report = paper("sm_80")
    assert report["launched"] == report["kernels"]
    variants = report["targets"]["sm_80"]["variants"]
    pointers = {t for v in variants for t in v["signature"].values() if t.startswith("*")}
    assert len(pointers) == len(TRITON_DTYPES) and pointers == {"*fp32", "*fp16", "*bf16"}
    assert {v["signature"].get("N") for v in variants} == {None, "i32", "i64"}
    switches = collections.defaultdict(set)
    for v in variants:
        for arg, value in v["constexprs"].items():
            if isinstance(value, bool):
                switches[v["kernel"], arg].add(value)
    assert switches and all(values == {False, True} for values in switches.values()), dict(switches)


def test_each_limit_is_checked():
    sm80 = _aot.TARGETS["sm_80"]
    bad = {"registers": 256, "spills": 1, "shared": 163 * 1024 + 1, "f64": True, "f64_machine": 3, "libdevice": False}
    assert len(_aot.problems(bad, sm80)) == 5
    good = {"registers": 255, "spills": 0, "shared": 163 * 1024, "f64": False, "f64_machine": 3, "libdevice": True}
    assert not _aot.problems(good, sm80)


def test_the_ops_drive_every_kernel_file():
    # the launchers are driven through vaebench.ops (every op of ops.OPS): each kernel file is some op's
    assert {name.rsplit(".", 1)[0] for name in kernel_files()} == {ops._kernel(op).__module__ for op in ops.OPS}
