"""Restore corrupted images with a trained run as the prior over clean images: inpainting
(--mask random:F | top | bottom | left | right | square[:S] | FILE.npy, 1 = observed),
denoising (MNIST: each Bernoulli outcome flipped with probability --rho; Frey Face: additive
Gaussian noise of standard deviation --noise-std) or super-resolution (only the means of
--k x --k blocks observed, with Gaussian noise --obs-noise). The corruption models are written
down in vaebench/uses/corruption.py. The first N images of a split (default the first 1,000
test images) are corrupted with a fixed seed and restored by sampling z from p(z|y):
Metropolis-within-Gibbs with the encoder as proposal (mwg), pseudo-Gibbs, and HMC on p(z|y)
(a reference without encoder), for N_z = 2 on request the exact answer by quadrature over z (--methods ...,grid),
against the baselines mean-image and encoder-decoder. Writes,
beside the run (or in --out), restore_<setting>.csv (per method: the held-out values'
log-likelihood, MSE and PSNR of the posterior mean, acceptance, images/s) and
restore_<setting>.png (observed / posterior means and samples / truth)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vaebench.cli.options import add_count, add_trained_run_options, count, finite_float, seed, set_threads
from vaebench.uses.corruption import TASKS
from vaebench.uses.restore import DEFAULTS, LIMITS
from vaebench.uses.samplers import ALL_METHODS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a trained run folder (run.json, checkpoint.pt)")
    p.add_argument("--task", choices=TASKS, required=True, help="inpaint, denoise or superres")
    p.add_argument(
        "--mask",
        help="inpaint: random:F (fraction F missing), top, bottom, left, right (that half "
        "missing), square[:S] (a centred S x S square missing) or a .npy file of the image's shape, "
        "1 = observed (default bottom)",
    )
    p.add_argument("--rho", type=finite_float, help="denoise, MNIST: flip probability in (0, 0.5) (default 0.1)")
    p.add_argument(
        "--noise-std",
        dest="noise_std",
        type=finite_float,
        help="denoise, Frey Face: noise standard deviation in (0, 1] (default 0.1)",
    )
    p.add_argument(
        "--k", type=count(1, 1000, "--k"), help="superres: block side, dividing the image's sides (default 2)"
    )
    p.add_argument(
        "--obs-noise",
        dest="obs_noise",
        type=finite_float,
        help="superres: standard deviation of the noise on each block mean, in (0, 1] (default 0.02)",
    )
    p.add_argument(
        "--methods",
        help=f"comma-separated, from {', '.join(ALL_METHODS)} (default: all but grid, which needs "
        "N_z = 2 and is slow; a run without encoder gets no encoder-based method)",
    )
    p.add_argument("--split", choices=("train", "test"), default="test", help="default test")
    add_count(p, "--n-points", 1, LIMITS, DEFAULTS, "the first N images of the split (default 1000)")
    add_count(p, "--burn-in", 0, LIMITS, DEFAULTS, "samplers: transitions before the kept ones (default 100)")
    add_count(p, "--samples", 1, LIMITS, DEFAULTS, "samplers: kept transitions per image (default 100)")
    add_count(p, "--grid", 0, LIMITS, DEFAULTS, "images in the figure (default 8; 0: no figure)")
    p.add_argument("--seed", type=seed, default=0, help="random seed of the corruption and the samplers (default 0)")
    p.add_argument("--out", type=Path, help="folder for the results (default: the run folder)")
    add_trained_run_options(p, progress_help="no per-method lines")


def run(args) -> int:
    from vaebench.uses.restore import file_names, restore_run

    set_threads(args)
    methods = None if args.methods is None else tuple(m.strip() for m in args.methods.split(",") if m.strip())
    rows = restore_run(
        args.run_dir,
        args.task,
        mask=args.mask,
        rho=args.rho,
        noise_std=args.noise_std,
        k=args.k,
        obs_noise=args.obs_noise,
        split=args.split,
        n_points=args.n_points,
        burn_in=args.burn_in,
        samples=args.samples,
        seed=args.seed,
        methods=methods,
        grid=args.grid,
        out=args.out,
        data_dir=args.data_dir,
        device=args.device,
        progress=args.progress,
    )
    where = args.out if args.out is not None else args.run_dir
    names = file_names(rows[0]["setting"])
    print(f"wrote {Path(where) / names['table']}" + (f" and {Path(where) / names['grid']}" if args.grid else ""))
    return 0
