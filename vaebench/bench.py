"""Time the hot-path ops (vaebench.ops) on every backend against eager PyTorch
(the library of ``vaebench bench``, whose options are in vaebench/cli/bench.py).

For each op, size and mode (fwd: forward only; fwdbwd: forward and backward
under a random upstream gradient) and backend: warm-up calls (these include
Numba's JIT and torch.compile's compile), then the median of the repeated timed
calls (CUDA events and synchronisation on a GPU). The table gives the time,
the GB/s of the minimal traffic (each input read once, each output and
gradient written once), the speed-up against eager and against torch.compile
measured in the same run, and the fraction of the memory floor reached (the
minimal traffic at the copy bandwidth measured at the start of the run).
Writes <out>/<device>.csv and <out>/<device>.png (seaborn).
"""

from __future__ import annotations

import io
import math
import os
import platform
import re
import statistics
import time

from vaebench.errors import VaebenchError

MODES = ("fwd", "fwdbwd")
# full-size (B x D) outputs of the forward pass (per-row outputs are counted as B)
FULL_OUTPUTS = {
    "reparameterize": 1,
    "gaussian_kl": 0,
    "encoder_head": 1,
    "location_scale_rsample": 1,
    "bernoulli_log_likelihood": 0,
    "gaussian_log_likelihood": 0,
}
# reparameterize's g_mu (location_scale_rsample's g_loc) is the upstream gradient itself: nothing written
WRITTEN_GRADS = {"reparameterize": 1, "location_scale_rsample": 1}


def parse_size(s: str) -> tuple[int, int]:
    """'BxD' (or 'B,D') as (B, D)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", s)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise VaebenchError(f"--sizes: {s!r} is not of the form BxD with B, D >= 1 (e.g. 100x784)")
    return int(m.group(1)), int(m.group(2))


def device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} cores)"


def device_slug(device) -> str:
    name = device_name(device)
    prefix = "cuda" if device.type == "cuda" else "cpu"
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"{prefix}-{slug}" if not slug.startswith(prefix) else slug


def copy_bandwidth(device, dtype, nbytes=256 << 20, repeats=10) -> float:
    """GB/s of dst.copy_(src) (read + write counted)."""
    import torch

    n = nbytes // 4
    src = torch.ones(n, device=device)
    dst = torch.empty_like(src)
    times = _time(lambda: dst.copy_(src), device, warmup=2, repeats=repeats)
    return 2 * nbytes / statistics.median(times) / 1e9


def _time(fn, device, warmup, repeats):
    import torch

    for _ in range(warmup):
        fn()
    out = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(repeats):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize(device)
            out.append(a.elapsed_time(b) / 1e3)
    else:
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return out


def traffic_bytes(op, mode, B, D, itemsize) -> int:
    from vaebench.ops_catalog import INPUTS

    names, grads = INPUTS[op]
    full = len(names) + FULL_OUTPUTS[op]
    rows = 1 if op != "reparameterize" else 0  # per-row output (kl or ll)
    if mode == "fwdbwd":
        full += WRITTEN_GRADS.get(op, len(grads))
    return (full * B * D + rows * B) * itemsize


def make_call(op: str, backend: str, mode: str, B: int, D: int, device="cpu", dtype=None):
    """A call of ``op`` on ``backend`` to time, on inputs of B x D from the catalog: the
    forward pass under no_grad (mode 'fwd'), or forward and backward under a random upstream
    gradient ('fwdbwd'). Numba's JIT and torch.compile run on the first call (for 'fwdbwd',
    in here: one forward pass gives the shapes of the upstream gradients)."""
    import torch

    from vaebench import ops
    from vaebench.ops_catalog import make_inputs

    fn = getattr(ops, op)
    args = list(make_inputs(op, (B, D), dtype or torch.float32, device, requires_grad=True).values())
    if mode == "fwd":

        def call():
            with torch.no_grad():
                fn(*args, backend=backend)

        return call
    leaves = [a for a in args if a.requires_grad]
    g = torch.Generator(device=device).manual_seed(1)
    outs = _outputs(fn(*args, backend=backend))
    ups = [torch.randn(o.shape, generator=g, device=o.device, dtype=o.dtype) for o in outs]

    def call():
        torch.autograd.grad(_outputs(fn(*args, backend=backend)), leaves, ups)

    return call


def _outputs(res):
    return res if isinstance(res, tuple) else (res,)


def run_bench(
    *,
    ops=None,
    backends=None,
    device=None,
    sizes=None,
    modes=MODES,
    repeats=20,
    warmup=3,
    dtype="float32",
    out="results/kernels",
    note="",
    plot=True,
    log=print,
) -> list[dict]:
    """Time ``ops`` (default: every op of the catalog) on ``backends`` (default: those that run
    on ``device`` here, without the Triton interpreter) against eager, at ``sizes`` (a list of
    (B, D); default: the catalog's for each op) and write <out>/<device>.csv and .png. Bad
    arguments raise a one-line VaebenchError before anything is timed."""
    import torch

    from vaebench import ops_catalog as cat
    from vaebench.devices import check_device
    from vaebench.fileio import atomic_path, atomic_write_text
    from vaebench.runs import check_out_path

    device = check_device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = check_out_path(out)
    ops = list(ops or cat.TENSOR_OPS)
    bad = [o for o in ops if o not in cat.TENSOR_OPS]
    if bad:
        raise VaebenchError(f"--ops: unknown op {bad[0]!r}; choose from {', '.join(cat.TENSOR_OPS)}")
    here = cat.available_backends(device)
    backends = list(backends or cat.available_backends(device, interpreted=False))
    for b in backends:
        if b not in cat.BACKENDS:
            raise VaebenchError(f"--backends: unknown backend {b!r}; choose from {', '.join(cat.BACKENDS)}")
        if b not in here:
            raise VaebenchError(f"--backends {b} does not run on {device.type} here (these do: {', '.join(here)})")
    if repeats < 1 or warmup < 0:
        raise VaebenchError("--repeats must be >= 1 and --warmup >= 0")
    torch_dtype = getattr(torch, dtype)
    if "eager" not in backends:
        backends = ["eager", *backends]  # speed-ups are against eager in the same run

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    bw = copy_bandwidth(device, torch_dtype)
    name = device_name(device)
    log(
        f"device: {name}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"copy bandwidth {bw:.1f} GB/s; load average {load:.2f}"
    )
    itemsize = torch.empty(0, dtype=torch_dtype).element_size()
    rows = []
    for op in ops:
        for B, D in sizes or cat.sizes(op, device):
            for mode in modes:
                nbytes = traffic_bytes(op, mode, B, D, itemsize)
                times = {}
                for backend in backends:
                    warm = warmup + (2 if backend == "compile" else 0)
                    try:
                        call = make_call(op, backend, mode, B, D, device, torch_dtype)
                        times[backend] = statistics.median(_time(call, device, warm, repeats))
                    except Exception as exc:  # a backend that cannot run this case: reported, not fatal
                        log(f"  {op} {B}x{D} {mode} {backend}: skipped ({type(exc).__name__}: {exc})")
                for backend, t in times.items():
                    rows.append(
                        {
                            "op": op,
                            "B": B,
                            "D": D,
                            "size": f"{B}x{D}",
                            "mode": mode,
                            "backend": backend,
                            "dtype": dtype,
                            "ms": t * 1e3,
                            "gbps": nbytes / t / 1e9,
                            "speedup_vs_eager": times["eager"] / t if "eager" in times else float("nan"),
                            "speedup_vs_compile": times["compile"] / t if "compile" in times else float("nan"),
                            "floor_fraction": nbytes / (bw * 1e9) / t,
                            "traffic_mb": nbytes / 1e6,
                            "device": name,
                            "copy_gbps": bw,
                            "threads": torch.get_num_threads(),
                            "torch": torch.__version__,
                            "load_avg": load,
                            "repeats": repeats,
                            "note": note,
                        }
                    )
    if not rows:
        raise VaebenchError("nothing was timed")
    log(format_table(rows))
    slug = device_slug(device)
    import pandas as pd

    df = pd.DataFrame(rows)
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.6g")
    csv_path = out / f"{slug}.csv"
    atomic_write_text(csv_path, buf.getvalue())
    log(f"wrote {csv_path}")
    if plot:
        png = out / f"{slug}.png"
        with atomic_path(png) as tmp:
            _plot(df, name, tmp)
        log(f"wrote {png}")
    return rows


def format_table(rows) -> str:
    head = (
        f"{'op':<26}{'size':>11} {'mode':<7}{'backend':<9}{'ms':>10}{'GB/s':>8}{'x eager':>9}"
        f"{'x compile':>10}{'floor':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        xc = r["speedup_vs_compile"]
        lines.append(
            f"{r['op']:<26}{r['size']:>11} {r['mode']:<7}{r['backend']:<9}{r['ms']:>10.4f}"
            f"{r['gbps']:>8.2f}{r['speedup_vs_eager']:>9.2f}"
            f"{(f'{xc:.2f}' if not math.isnan(xc) else '-'):>10}{r['floor_fraction']:>7.0%}"
        )
    return "\n".join(lines)


def _plot(df, title, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    d = df.copy()
    d["case"] = d["op"].str.replace("_log_likelihood", "_ll") + "\n" + d["size"]
    g = sns.catplot(
        data=d,
        kind="bar",
        x="case",
        y="speedup_vs_eager",
        hue="backend",
        col="mode",
        height=4.5,
        aspect=1.6,
        sharey=False,
    )
    for ax in g.axes.flat:
        ax.axhline(1.0, color="0.3", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.tick_params(axis="x", labelsize=7, rotation=30)
        ax.set_xlabel("")
    g.set_ylabels("speed-up vs eager (same run)")
    note = df["note"].iloc[0] if "note" in df and isinstance(df["note"].iloc[0], str) else ""
    g.figure.suptitle(
        f"{title}: median of {int(df['repeats'].iloc[0])} repeats" + (f" ({note})" if note else ""), fontsize=9
    )
    g.figure.tight_layout()
    g.figure.savefig(path, dpi=110, format="png")
    plt.close(g.figure)
