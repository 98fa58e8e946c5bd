"""Figures drawn from run folders (matplotlib, Agg backend). One fixed colour per variant in every figure."""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from regbench.report import Group
from regbench.runs import atomic_write


def _save(fig: plt.Figure, path: Path) -> Path:
    """Write a figure as PNG atomically, so an interrupted run never leaves half an image."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return path


def colours(groups: list[Group]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20")
    return {g.label: cmap(i % cmap.N) for i, g in enumerate(groups)}


def _curve(group: Group, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs, mean and std over seeds of one history column (seeds that stopped early drop out)."""
    length = max((len(r.history) for r in group.runs), default=0)
    table = np.full((len(group.runs), length), np.nan)
    for i, run in enumerate(group.runs):
        for j, row in enumerate(run.history):
            table[i, j] = row.get(key, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an epoch that every seed stopped before
        mean = np.nanmean(table, axis=0) if length else np.array([])
        std = np.nanstd(table, axis=0) if length else np.array([])
    return np.arange(1, length + 1), mean, std


def curves(
    groups: list[Group], train_key: str, val_key: str, ylabel: str, title: str, path: Path, scale: float = 1.0
) -> Path:
    """Train (solid) and validation (dashed) curves per variant: mean over seeds with a ±std band."""
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    palette = colours(groups)
    for g in groups:
        colour = palette[g.label]
        n = f" (n={g.n})" if g.n > 1 else ""
        for key, style, part in ((train_key, "-", "train"), (val_key, "--", "validation")):
            epochs, mean, std = _curve(g, key)
            if not len(epochs) or np.all(np.isnan(mean)):
                continue
            ax.plot(epochs, mean * scale, style, color=colour, label=f"{g.label} {part}{n}", linewidth=1.8)
            if g.n > 1:
                ax.fill_between(
                    epochs, (mean - std) * scale, (mean + std) * scale, color=colour, alpha=0.15, linewidth=0
                )
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, ncol=2 if len(groups) > 3 else 1)
    return _save(fig, path)


def loss_plot(groups: list[Group], path: Path) -> Path:
    return curves(
        groups,
        "data_loss",
        "val_data_loss",
        "cross-entropy (data loss, no penalty)",
        "Loss per epoch — train solid, validation dashed",
        path,
    )


def accuracy_plot(groups: list[Group], path: Path) -> Path:
    return curves(
        groups,
        "accuracy",
        "val_accuracy",
        "accuracy %",
        "Accuracy per epoch — train solid, validation dashed",
        path,
        scale=100.0,
    )


def weight_histogram(groups: list[Group], path: Path) -> Path:
    """Share of kernel weights per |w| bin (log axis), one line per variant, summed over seeds."""
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    palette = colours(groups)
    for g in groups:
        hists = [r.metrics.get("weights", {}).get("magnitude_histogram") for r in g.runs]
        hists = [h for h in hists if h]
        if not hists:
            continue
        edges = np.asarray(hists[0]["edges"])
        counts = np.sum([h["counts"] for h in hists], axis=0).astype(float)
        share = counts / counts.sum() * 100
        sparsity = g.stats.get("sparsity", {}).get("mean", math.nan) * 100
        ax.stairs(share, edges, color=palette[g.label], linewidth=1.8, label=f"{g.label} ({sparsity:.1f}% below 1e-3)")
    ax.axvline(1e-3, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("|w| of Dense kernels (log scale; leftmost bin holds everything below 1e-8)")
    ax.set_ylabel("% of weights")
    ax.set_title("Weight magnitudes — L1 piles weights near zero, L2 shrinks them all")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def accuracy_bars(groups: list[Group], path: Path) -> Path:
    """Test accuracy (mean ± std over seeds) and generalization gap per variant."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5), dpi=110)
    palette = colours(groups)
    labels = [g.label for g in groups]
    x = np.arange(len(groups))
    for ax, key, title in (
        (left, "test_accuracy", "test accuracy %"),
        (right, "generalization_gap", "generalization gap (train − test acc), pp"),
    ):
        means = np.array([g.stats[key]["mean"] * 100 for g in groups])
        stds = np.nan_to_num(np.array([g.stats[key]["std"] * 100 for g in groups]))
        ax.bar(x, means, yerr=stds, capsize=4, color=[palette[lbl] for lbl in labels])
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        if key == "test_accuracy" and np.isfinite(means).any():
            low = np.nanmin(means - stds)
            high = np.nanmax(means + stds)
            pad = max(0.2, (high - low) * 0.3)
            ax.set_ylim(max(0, low - pad), min(100, high + pad))
    return _save(fig, path)


def learning_curve(groups: list[Group], path: Path) -> Path:
    """Test accuracy against training-set size (data.train_subset), one line per variant name without its
    ``train_subset=...`` part: one line per regularizer."""
    from regbench.identity import comparable_config

    lines: dict[str, list[tuple[float, float, float]]] = {}
    for g in groups:
        flat = comparable_config(g.config)
        size = flat.get("data.train_subset")
        if size is None:
            continue
        label = ",".join(p for p in g.variant.split(",") if not p.startswith("train_subset=")) or "all"
        stats = g.stats["test_accuracy"]
        lines.setdefault(label, []).append((size, stats["mean"] * 100, np.nan_to_num(stats["std"] * 100)))
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    cmap = plt.get_cmap("tab10" if len(lines) <= 10 else "tab20")
    for i, (label, points) in enumerate(lines.items()):
        points.sort()
        x, y, err = (np.array(v) for v in zip(*points, strict=True))
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, color=cmap(i % cmap.N), label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training examples used (data.train_subset, before the validation split)")
    ax.set_ylabel("test accuracy %")
    ax.set_title("Learning curve — regularization matters most when data are scarce")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path)
