"""Plot a training run's loss curves (train.py writes log.csv, vae_log.csv, vae_decoder_log.csv).

    python scripts/plot_training_log.py RUN_DIR OUT.png
"""

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STAGES = (("vae_log.csv", "VAE (reconstruction MSE)", "reconstruction"), ("vae_decoder_log.csv", "VAE decoder", "reconstruction"),
          ("log.csv", "main stage (denoising MSE: noise, or velocity)", "loss"))  # fmt: skip


def read(path: Path, column: str) -> tuple[list[int], list[float]]:
    with path.open() as file:
        rows = list(csv.DictReader(file))
    return [int(row["step"]) for row in rows], [float(row[column]) for row in rows]


def smooth(values: list[float], window: int = 20) -> list[float]:
    return [sum(values[max(0, i - window + 1) : i + 1]) / len(values[max(0, i - window + 1) : i + 1]) for i in range(len(values))]


def main(run: Path, out: Path) -> None:
    present = [(file, title, column) for file, title, column in STAGES if (run / file).is_file()]
    figure, axes = plt.subplots(1, len(present), figsize=(5 * len(present), 3.5), squeeze=False)
    for axis, (file, title, column) in zip(axes[0], present, strict=True):
        steps, values = read(run / file, column)
        axis.plot(steps, values, alpha=0.3, color="tab:blue")
        axis.plot(steps, smooth(values), color="tab:blue")
        axis.set(title=title, xlabel="step", yscale="log")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out, dpi=100)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
