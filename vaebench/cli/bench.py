"""Time the hot-path ops on every backend against eager PyTorch (and torch.compile) in the
same run: the median time, the GB/s of the minimal traffic, the speed-ups and the fraction
of the memory floor (the copy bandwidth measured at the start). Writes <out>/<device>.csv
and <out>/<device>.png."""

from __future__ import annotations

import argparse

from vaebench import bench


def add_arguments(p: argparse.ArgumentParser) -> None:
    from vaebench.ops_catalog import BACKENDS, TENSOR_OPS

    p.add_argument(
        "--ops", nargs="+", default=None, metavar="OP", help=f"ops to time (default: all): {', '.join(TENSOR_OPS)}"
    )
    p.add_argument(
        "--backends",
        nargs="+",
        default=None,
        metavar="B",
        help=f"some of {', '.join(BACKENDS)} (default: those that run on the device here: "
        "eager numba compile on the CPU, eager triton compile on a GPU)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument(
        "--sizes",
        nargs="+",
        default=None,
        metavar="BxD",
        help="sizes as BxD (default: 100x20 10000x20 for the latent ops, "
        "100x784 10000x784 for the likelihoods, plus a large size on a GPU)",
    )
    p.add_argument("--modes", nargs="+", default=list(bench.MODES), choices=bench.MODES)
    p.add_argument("--repeats", type=int, default=20, help="timed calls per case (median reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per case first")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64", "float16", "bfloat16"))
    p.add_argument("--out", default="results/kernels", help="folder for <device>.csv and <device>.png")
    p.add_argument("--note", default="", help="free text stored with the results (e.g. 'machine shared')")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")


def run(args) -> int:
    sizes = [bench.parse_size(s) for s in args.sizes] if args.sizes else None
    bench.run_bench(
        ops=args.ops,
        backends=args.backends,
        device=args.device,
        sizes=sizes,
        modes=args.modes,
        repeats=args.repeats,
        warmup=args.warmup,
        dtype=args.dtype,
        out=args.out,
        note=args.note,
        plot=not args.no_plot,
    )
    return 0
