"""Time the hot-path ops (vaebench.ops) on every backend against eager PyTorch.

For each op, size and mode (fwd: forward only; fwdbwd: forward and backward
under a random upstream gradient) and backend: warm-up calls (these include
Numba's JIT and torch.compile's compile), then the median of --repeats timed
calls (CUDA events and synchronisation on a GPU). The table gives the time,
the GB/s of the minimal traffic (each input read once, each output and
gradient written once), the speed-up against eager and against torch.compile
measured in the same run, and the fraction of the memory floor reached (the
minimal traffic at the copy bandwidth measured at the start of the run).
Writes <out>/<device>.csv and <out>/<device>.png (seaborn).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import platform
import re
import statistics
import time

from vaebench.errors import VaebenchError

ALL_OPS = ("reparameterize", "gaussian_kl", "encoder_head", "bernoulli_log_likelihood", "gaussian_log_likelihood")
MODES = ("fwd", "fwdbwd")
LATENT_SIZES = ((100, 20), (10000, 20))
DATA_SIZES = ((100, 784), (10000, 784))
GPU_EXTRA = {"latent": (1_000_000, 20), "data": (100_000, 784)}

# inputs of each op (in call order) and which of them need a gradient
SPEC = {
    "reparameterize": (("mu", "logvar", "eps"), ("mu", "logvar")),
    "gaussian_kl": (("mu", "logvar"), ("mu", "logvar")),
    "encoder_head": (("mu", "logvar", "eps"), ("mu", "logvar")),
    "bernoulli_log_likelihood": (("logits", "x"), ("logits",)),
    "gaussian_log_likelihood": (("mean", "logvar", "x"), ("mean", "logvar")),
}
# full-size (B x D) outputs of the forward pass (per-row outputs are counted as B)
FULL_OUTPUTS = {"reparameterize": 1, "gaussian_kl": 0, "encoder_head": 1,
                "bernoulli_log_likelihood": 0, "gaussian_log_likelihood": 0}
# reparameterize's g_mu is the upstream gradient itself: nothing written
WRITTEN_GRADS = {"reparameterize": 1}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ops", nargs="+", default=list(ALL_OPS), metavar="OP",
                   help=f"ops to time (default: all): {', '.join(ALL_OPS)}")
    p.add_argument("--backends", nargs="+", default=None, metavar="B",
                   help="backends (default: eager numba compile on the CPU, eager triton compile on a GPU)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--sizes", nargs="+", default=None, metavar="BxD",
                   help="sizes as BxD (default: 100x20 10000x20 for the latent ops, "
                        "100x784 10000x784 for the likelihoods, plus a large size on a GPU)")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--repeats", type=int, default=20, help="timed calls per case (median reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per case first")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64", "float16", "bfloat16"))
    p.add_argument("--out", default="results/kernels", help="folder for <device>.csv and <device>.png")
    p.add_argument("--note", default="", help="free text stored with the results (e.g. 'machine shared')")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")


def _parse_size(s: str) -> tuple[int, int]:
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


def _inputs(op, B, D, device, dtype, seed=0):
    import torch
    g = torch.Generator(device=device).manual_seed(seed)
    names, grads = SPEC[op]
    t = {}
    for n in names:
        if n == "x" and op == "bernoulli_log_likelihood":
            v = (torch.rand(B, D, generator=g, device=device) < 0.3).to(dtype)
        elif n in ("x", "mean"):
            v = torch.rand(B, D, generator=g, device=device, dtype=dtype)
        else:
            v = torch.randn(B, D, generator=g, device=device, dtype=dtype)
        t[n] = v.requires_grad_(n in grads)
    return t


def traffic_bytes(op, mode, B, D, itemsize) -> int:
    names, grads = SPEC[op]
    n_in = len(names)
    full = n_in + FULL_OUTPUTS[op]
    rows = 1 if op != "reparameterize" else 0  # per-row output (kl or ll)
    if mode == "fwdbwd":
        full += WRITTEN_GRADS.get(op, len(grads))
    return (full * B * D + rows * B) * itemsize


def _case(op, backend, mode, B, D, device, dtype, warmup, repeats):
    import torch

    from vaebench import ops
    fn = getattr(ops, op)
    inp = _inputs(op, B, D, device, dtype)
    args = list(inp.values())
    leaves = [v for v in args if v.requires_grad]
    if mode == "fwd":
        def call():
            with torch.no_grad():
                fn(*args, backend=backend)
    else:
        res = fn(*args, backend=backend)
        outs = res if isinstance(res, tuple) else (res,)
        g = torch.Generator(device=device).manual_seed(1)
        ups = [torch.randn(o.shape, generator=g, device=device, dtype=dtype) for o in outs]

        def call():
            r = fn(*args, backend=backend)
            torch.autograd.grad(r if isinstance(r, tuple) else (r,), leaves, ups)
    return statistics.median(_time(call, device, warmup, repeats))


def run(args) -> int:
    import torch

    from vaebench import ops
    from vaebench.fileio import atomic_path, atomic_write_text

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type not in ("cpu", "cuda"):
        raise VaebenchError(f"--device: {device.type!r} is not supported (cpu or cuda)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VaebenchError("--device cuda: no CUDA device is available to this torch build")
    bad = [o for o in args.ops if o not in ALL_OPS]
    if bad:
        raise VaebenchError(f"--ops: unknown op {bad[0]!r}; choose from {', '.join(ALL_OPS)}")
    backends = args.backends or (["eager", "numba", "compile"] if device.type == "cpu"
                                 else ["eager", "triton", "compile"])
    bad = [b for b in backends if b not in ops.BACKENDS]
    if bad:
        raise VaebenchError(f"--backends: unknown backend {bad[0]!r}; choose from {', '.join(ops.BACKENDS)}")
    if device.type == "cpu" and "triton" in backends and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        raise VaebenchError("--backends triton needs a GPU (--device cuda); on the CPU only under TRITON_INTERPRET=1")
    if device.type == "cuda" and "numba" in backends:
        raise VaebenchError("--backends numba runs on the CPU only; use --device cpu")
    if args.repeats < 1 or args.warmup < 0:
        raise VaebenchError("--repeats must be >= 1 and --warmup >= 0")
    dtype = getattr(torch, args.dtype)
    sizes = [_parse_size(s) for s in args.sizes] if args.sizes else None
    if "eager" not in backends:
        backends = ["eager", *backends]  # speed-ups are against eager in the same run

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    bw = copy_bandwidth(device, dtype)
    name = device_name(device)
    print(f"device: {name}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"copy bandwidth {bw:.1f} GB/s; load average {load:.2f}")
    itemsize = torch.empty(0, dtype=dtype).element_size()
    rows = []
    for op in args.ops:
        kind = "latent" if op in ("reparameterize", "gaussian_kl", "encoder_head") else "data"
        op_sizes = sizes or list(LATENT_SIZES if kind == "latent" else DATA_SIZES) + (
            [GPU_EXTRA[kind]] if device.type == "cuda" else [])
        for (B, D) in op_sizes:
            for mode in args.modes:
                nbytes = traffic_bytes(op, mode, B, D, itemsize)
                floor_s = nbytes / (bw * 1e9)
                times = {}
                for backend in backends:
                    warm = args.warmup + (2 if backend == "compile" else 0)
                    try:
                        times[backend] = _case(op, backend, mode, B, D, device, dtype, warm, args.repeats)
                    except Exception as exc:  # a backend that cannot run here: reported, not fatal
                        print(f"  {op} {B}x{D} {mode} {backend}: skipped ({type(exc).__name__}: {exc})")
                for backend, t in times.items():
                    rows.append({
                        "op": op, "B": B, "D": D, "size": f"{B}x{D}", "mode": mode, "backend": backend,
                        "dtype": args.dtype, "ms": t * 1e3, "gbps": nbytes / t / 1e9,
                        "speedup_vs_eager": times["eager"] / t if "eager" in times else float("nan"),
                        "speedup_vs_compile": times["compile"] / t if "compile" in times else float("nan"),
                        "floor_fraction": floor_s / t, "traffic_mb": nbytes / 1e6,
                        "device": name, "copy_gbps": bw, "threads": torch.get_num_threads(),
                        "torch": torch.__version__, "load_avg": load, "repeats": args.repeats,
                        "note": args.note,
                    })
    if not rows:
        raise VaebenchError("nothing was timed")
    table = _format(rows)
    print(table)
    slug = device_slug(device)
    import pandas as pd
    df = pd.DataFrame(rows)
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.6g")
    csv_path = os.path.join(args.out, f"{slug}.csv")
    atomic_write_text(csv_path, buf.getvalue())
    print(f"wrote {csv_path}")
    if not args.no_plot:
        png = os.path.join(args.out, f"{slug}.png")
        with atomic_path(png) as tmp:
            _plot(df, name, tmp)
        print(f"wrote {png}")
    return 0


def _format(rows) -> str:
    head = f"{'op':<26}{'size':>11} {'mode':<7}{'backend':<9}{'ms':>10}{'GB/s':>8}{'x eager':>9}{'x compile':>10}{'floor':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        xc = r["speedup_vs_compile"]
        lines.append(f"{r['op']:<26}{r['size']:>11} {r['mode']:<7}{r['backend']:<9}{r['ms']:>10.4f}"
                     f"{r['gbps']:>8.2f}{r['speedup_vs_eager']:>9.2f}"
                     f"{(f'{xc:.2f}' if not math.isnan(xc) else '-'):>10}{r['floor_fraction']:>7.0%}")
    return "\n".join(lines)


def _plot(df, title, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns
    d = df.copy()
    d["case"] = d["op"].str.replace("_log_likelihood", "_ll") + "\n" + d["size"]
    g = sns.catplot(data=d, kind="bar", x="case", y="speedup_vs_eager", hue="backend", col="mode",
                    height=4.5, aspect=1.6, sharey=False)
    for ax in g.axes.flat:
        ax.axhline(1.0, color="0.3", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.tick_params(axis="x", labelsize=7, rotation=30)
        ax.set_xlabel("")
    g.set_ylabels("speed-up vs eager (same run)")
    note = df["note"].iloc[0] if "note" in df and isinstance(df["note"].iloc[0], str) else ""
    g.figure.suptitle(f"{title}: median of {int(df['repeats'].iloc[0])} repeats" + (f" ({note})" if note else ""),
                      fontsize=9)
    g.figure.tight_layout()
    g.figure.savefig(path, dpi=110, format="png")
    plt.close(g.figure)
