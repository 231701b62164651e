"""Summary tables of ``vaebench infer`` and ``vaebench restore`` over many runs: the per-run
files under a results folder (``<root>/<run>/inference_<split>.json``,
``posterior_<split>.csv``, ``restore_<setting>.csv``) collected into tidy CSVs and markdown
tables (written atomically):

  <root>/inference.csv   one row per (run, split): the averages and Monte Carlo standard errors
                         of log p(x), the ELBOs and the gaps, and the encoder's posterior summary
                         (mean over latent dimensions)
  <root>/restore.csv     every restore_<setting>.csv row
  <root>/tables.md       both as markdown
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from vaebench.fileio import atomic_write_csv, atomic_write_text
from vaebench.formatting import format_value

# fmt: off
INFERENCE_TABLE_COLUMNS = ("run", "dataset", "algorithm", "nz", "split", "n_points", "log_px_hmc", "log_px_hmc_se",
                           "log_px_is", "log_px_is_se", "elbo_encoder", "elbo_optimised", "inference_gap",
                           "inference_gap_se", "approximation_gap", "approximation_gap_se", "amortisation_gap",
                           "amortisation_gap_se", "encoder_log_std_ratio", "optimised_log_std_ratio",
                           "encoder_mean_rmse_in_std", "active_dims", "hmc_accept", "note")
# fmt: on
ALGORITHM_ORDER = {"aevb": 0, "wake-sleep": 1, "mcem": 2}
METHOD_ORDER = {"mwg": 0, "pseudo-gibbs": 1, "hmc": 2, "grid": 3, "mean-image": 4, "encoder-decoder": 5}
ACTIVE_STD = 0.9  # a latent dimension is "active" when its average HMC posterior sd is below this


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def inference_rows(root) -> list[dict]:
    rows = []
    for summary_path in sorted(Path(root).glob("*/inference_*.json")):
        s = json.loads(summary_path.read_text(encoding="utf-8"))
        split = s["split"]
        row = {k: s.get(k, "") for k in ("run", "dataset", "algorithm", "nz", "split", "n_points", "note")}
        row["hmc_accept"] = s.get("hmc_accept", "")
        for key, value in s["mean"].items():
            row[key] = value
            if key in s["mc_stderr"]:
                row[f"{key}_se"] = s["mc_stderr"][key]
        post_path = summary_path.parent / f"posterior_{split}.csv"
        if post_path.is_file():
            post = _read_csv(post_path)
            active = [r for r in post if float(r["hmc_std"]) < ACTIVE_STD]
            row["active_dims"] = len(active)
            for col in ("encoder_log_std_ratio", "optimised_log_std_ratio", "encoder_mean_rmse_in_std"):
                vals = [float(r[col]) for r in (active or post) if r[col] != ""]
                row[col] = sum(vals) / len(vals) if vals else ""
        rows.append(row)
    rows.sort(key=lambda r: (r["dataset"], ALGORITHM_ORDER.get(r["algorithm"], 9), int(r["nz"]), r["run"]))
    return rows


def restore_rows(root) -> list[dict]:
    rows = []
    for path in sorted(Path(root).glob("*/restore_*.csv")):
        rows += _read_csv(path)
    rows.sort(key=lambda r: (r["dataset"], r["run"], r["task"], r["setting"], METHOD_ORDER.get(r["method"], 9)))
    return rows


def _f(v, digits=2, signed=False):
    return format_value(v, digits, missing="", signed=signed)


def inference_markdown(rows) -> str:
    head = (
        "| run | N_z | points | log p(x): HMC | log p(x): IS | ELBO: encoder | ELBO: best q | inference gap | "
        "approximation gap | amortisation gap | active dims | log(sd_q / sd_post) encoder | best q |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        gap = lambda k: f"{_f(r.get(k))} ± {_f(r.get(k + '_se'))}" if r.get(k, "") != "" else "n/a"
        lines.append(
            "| "
            + " | ".join(
                [
                    r["run"],
                    str(r["nz"]),
                    str(r["n_points"]),
                    f"{_f(r.get('log_px_hmc'))} ± {_f(r.get('log_px_hmc_se'))}",
                    _f(r.get("log_px_is")) or "n/a",
                    _f(r.get("elbo_encoder")) or "n/a",
                    _f(r.get("elbo_optimised")) or "n/a",
                    gap("inference_gap"),
                    gap("approximation_gap"),
                    gap("amortisation_gap"),
                    str(r.get("active_dims", "")),
                    _f(r.get("encoder_log_std_ratio"), signed=True) or "n/a",
                    _f(r.get("optimised_log_std_ratio"), signed=True) or "n/a",
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def restore_markdown(rows) -> str:
    from vaebench.uses.restore import METHOD_LABELS

    out = []
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["run"], r["setting"]), []).append(r)
    for (run, setting), rs in groups.items():
        first = rs[0]
        out += [
            f"**{run}, {setting}** ({first['n_images']} {first['split']} images, "
            f"{first['hidden_per_image']} hidden values per image)",
            "",
            "| method | held-out log-lik (nats/image) | per value | MSE | PSNR (dB) | acceptance | images/s |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rs:
            out.append(
                f"| {METHOD_LABELS.get(r['method'], r['method'])} | {_f(r['heldout_loglik'])} ± "
                f"{_f(r['heldout_loglik_stderr'])} | {_f(r['heldout_loglik_per_value'], 4)} | "
                f"{_f(r['mse'], 4)} ± {_f(r['mse_stderr'], 4)} | {_f(r['psnr'])} | {_f(r['accept_rate'])} | "
                f"{_f(r['images_per_s'], 0)} |"
            )
        out.append("")
    return "\n".join(out)


def collect(root) -> dict:
    """Write <root>/inference.csv, restore.csv and tables.md; return the rows."""
    root = Path(root)
    inf, res = inference_rows(root), restore_rows(root)
    if inf:
        atomic_write_csv(root / "inference.csv", INFERENCE_TABLE_COLUMNS, inf)
    if res:
        from vaebench.uses.restore import RESTORE_COLUMNS

        atomic_write_csv(root / "restore.csv", RESTORE_COLUMNS, res)
    md = []
    if inf:
        md += ["## Posterior inference of z", "", inference_markdown(inf)]
    if res:
        md += ["## Restoration", "", restore_markdown(res)]
    if md:
        atomic_write_text(root / "tables.md", "\n".join(md))
    return {"inference": inf, "restore": res}
