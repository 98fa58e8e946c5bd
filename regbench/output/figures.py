"""Figures drawn from run folders (matplotlib, Agg backend). One fixed colour per variant in every figure."""

from __future__ import annotations

import io
import json
import math
import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from regbench.analysis.summary import Summary
from regbench.analysis.verdicts import Row
from regbench.store.files import atomic_write

matplotlib.use("Agg")
matplotlib.rcParams["text.parse_math"] = False  # variant names are text, never mathtext (a "$" in one would break)


def _save(fig: plt.Figure, path: Path, tight: bool = True) -> Path:
    """Write a figure as PNG atomically, so an interrupted run never leaves half an image. ``tight``: fit the
    layout first (a full draw: a figure with fixed margins skips it)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # A character the font lacks (a control character in a name from someone's folder) is drawn as a box.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
        if tight:
            fig.tight_layout()
        fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return path


def colours(summaries: list[Summary]) -> dict[str, tuple]:
    """tab10, or tab20 for more variants; without their greys, which the baseline's reference curve wears."""
    cmap = plt.get_cmap("tab10" if len(summaries) <= 9 else "tab20")
    palette = [c for c in cmap.colors if len(set(c)) > 1]
    return {g.label: palette[i % len(palette)] for i, g in enumerate(summaries)}


def _curve(summary: Summary, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs, mean and std over seeds of one history column (seeds that stopped early drop out)."""
    length = max((len(r.history) for r in summary.runs), default=0)
    table = np.full((len(summary.runs), length), np.nan)
    for i, run in enumerate(summary.runs):
        for j, row in enumerate(run.history):
            table[i, j] = row.get(key, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an epoch that every seed stopped before
        mean = np.nanmean(table, axis=0) if length else np.array([])
        std = np.nanstd(table, axis=0) if length else np.array([])
    return np.arange(1, length + 1), mean, std


def _margin(low: float, high: float, frac: float = 0.05) -> tuple[float, float]:
    """Limits with matplotlib's default 5 % margin on each side."""
    pad = (high - low) * frac
    return low - pad, high + pad


SMALL_MULTIPLES_ABOVE = 6  # more variants than this: one panel each instead of one tangle of curves


def _log_axis(ax, scale: str, **kwargs) -> None:
    """A log or symlog x axis whose tick labels are plain text (1e-08, 0.001, 1): matplotlib's default labels
    are mathtext, which regbench turns off so that no name is read as math."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale(scale, **kwargs)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))


def _fit(label: str, width: int = 60) -> str:
    """A label as a figure shows it: whole, or its start and end around an ellipsis when longer than ``width``
    (a long sweep label; tables and summaries keep it whole)."""
    if len(label) <= width:
        return label
    half = (width - 1) // 2
    return f"{label[:half]}…{label[-half:]}"


def _band(ax, summary: Summary, key: str, style: str, colour, label: str, scale: float, width: float = 1.8) -> tuple:
    """Plot one history column's mean over seeds (with a ±std band); return the (min, max) drawn, or ()."""
    epochs, mean, std = _curve(summary, key)
    if not len(epochs) or np.all(np.isnan(mean)):
        return ()
    ax.plot(epochs, mean * scale, style, color=colour, label=label, linewidth=width)
    if summary.n > 1:
        ax.fill_between(epochs, (mean - std) * scale, (mean + std) * scale, color=colour, alpha=0.15, linewidth=0)
    return np.nanmin((mean - std) * scale), np.nanmax((mean + std) * scale)


def _small_multiples(
    summaries: list[Summary], train_key: str, val_key: str, ylabel: str, title: str, path: Path, scale: float, base
) -> Path:
    """One panel per variant (train solid, validation dashed), the baseline's validation curve in grey in each."""
    cols = 3
    rows = math.ceil(len(summaries) / cols)
    height = 2.6 * rows + 0.6
    fig, axes = plt.subplots(rows, cols, figsize=(11, height), dpi=100, sharex=True, sharey=True)
    # Fixed margins (inches) instead of tight_layout, which would draw the whole grid once more
    fig.subplots_adjust(left=0.7 / 11, right=1 - 0.15 / 11, bottom=0.5 / height, top=1 - 0.8 / height, hspace=0.3)
    axes = np.atleast_1d(axes).ravel()
    palette = colours(summaries)
    # Limits set once at the end: autoscaling after each curve re-scales all shared panels every time (n² work in
    # the panels: docs/performance.md); a title at a fixed height skips a bounding-box pass.
    drawn: list[tuple] = []
    for ax, g in zip(axes, summaries, strict=False):
        ax.set_autoscale_on(False)
        if base is not None and g is not base:
            drawn.append(_band(ax, base, val_key, "--", "0.6", f"{_fit(base.label)} validation", scale, width=1.2))
        drawn.append(_band(ax, g, train_key, "-", palette[g.label], "train", scale))
        drawn.append(_band(ax, g, val_key, "--", palette[g.label], "validation", scale))
        ax.set_title(f"{_fit(g.label)} (n={g.n})", fontsize=9, y=1.0)
        ax.grid(alpha=0.3)
    low, high = min((d[0] for d in drawn if d), default=0.0), max((d[1] for d in drawn if d), default=1.0)
    epochs = max((len(r.history) for g in summaries for r in g.runs), default=1)
    axes[0].set_xlim(*_margin(1, max(epochs, 2)))
    axes[0].set_ylim(*_margin(low, high if high > low else low + 1))
    for ax in axes[len(summaries) :]:
        ax.axis("off")
    axes[0].legend(fontsize=7)
    axes[0].xaxis.get_major_locator().set_params(integer=True)
    axes[0].yaxis.get_major_locator().set_params(nbins=4)
    for ax in axes[max(0, len(summaries) - cols) : len(summaries)]:  # the lowest panel of each column
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.set_xlabel("epoch")
    for ax in axes[::cols]:
        ax.set_ylabel(ylabel, fontsize=8)
    fig.suptitle(title + (f"; grey: {_fit(base.label)}" if base is not None else ""))
    return _save(fig, path, tight=False)


def curves(
    summaries: list[Summary],
    train_key: str,
    val_key: str,
    ylabel: str,
    title: str,
    path: Path,
    scale: float = 1.0,
    base: Summary | None = None,
) -> Path:
    """Train (solid) and validation (dashed) curves per variant: mean over seeds with a ±std band. With more
    than SMALL_MULTIPLES_ABOVE variants, one panel per variant."""
    if len(summaries) > SMALL_MULTIPLES_ABOVE:
        return _small_multiples(summaries, train_key, val_key, ylabel, title, path, scale, base)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    palette = colours(summaries)
    for g in summaries:
        colour = palette[g.label]
        n = f" (n={g.n})" if g.n > 1 else ""
        for key, style, part in ((train_key, "-", "train"), (val_key, "--", "validation")):
            _band(ax, g, key, style, colour, f"{_fit(g.label)} {part}{n}", scale)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8, ncol=2 if len(summaries) > 3 else 1)
    return _save(fig, path)


def loss_plot(summaries: list[Summary], path: Path, base: Summary | None = None) -> Path:
    return curves(
        summaries,
        "data_loss",
        "val_data_loss",
        "cross-entropy (data loss, no penalty)",
        "Loss per epoch — train solid, validation dashed",
        path,
        base=base,
    )


def accuracy_plot(summaries: list[Summary], path: Path, base: Summary | None = None) -> Path:
    return curves(
        summaries,
        "accuracy",
        "val_accuracy",
        "accuracy %",
        "Accuracy per epoch — train solid, validation dashed",
        path,
        scale=100.0,
        base=base,
    )


def weight_histogram(summaries: list[Summary], path: Path) -> Path:
    """Share of kernel weights per |w| bin (log axis), one line per variant, summed over seeds."""
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    palette = colours(summaries)
    for g in summaries:
        hists = [r.record.weights.magnitude_histogram if r.record.weights else None for r in g.runs]
        hists = [h for h in hists if h]
        if not hists:
            continue
        edges = np.asarray(hists[0].edges)
        counts = np.sum([h.counts for h in hists], axis=0).astype(float)
        share = counts / counts.sum() * 100
        sparsity = g.stats["sparsity"].mean * 100
        ax.stairs(
            share, edges, color=palette[g.label], linewidth=1.8, label=f"{_fit(g.label)} ({sparsity:.1f}% below 1e-3)"
        )
    ax.axvline(1e-3, color="grey", linestyle=":", linewidth=1)
    _log_axis(ax, "log")
    ax.set_xlabel("|w| of Dense and conv kernels (log scale; leftmost bin holds everything below 1e-8)")
    ax.set_ylabel("% of weights")
    ax.set_title("Share of kernel weights per |w| bin, all layers and seeds pooled (dotted: 1e-3)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def accuracy_bars(summaries: list[Summary], path: Path) -> Path:
    """Test accuracy (mean ± std over seeds) and generalization gap per variant."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5), dpi=110)
    palette = colours(summaries)
    labels = [g.label for g in summaries]
    x = np.arange(len(summaries))
    for ax, key, title in (
        (left, "test_accuracy", "test accuracy %"),
        (right, "generalization_gap", "generalization gap (train − test acc), pp"),
    ):
        means = np.array([g.stats[key].mean * 100 for g in summaries])
        stds = np.nan_to_num(np.array([g.stats[key].std * 100 for g in summaries]))
        ax.bar(x, means, yerr=stds, capsize=4, color=[palette[lbl] for lbl in labels])
        ax.set_xticks(x, [_fit(lbl) for lbl in labels], rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        if key == "test_accuracy" and np.isfinite(means).any():
            low = np.nanmin(means - stds)
            high = np.nanmax(means + stds)
            pad = max(0.2, (high - low) * 0.3)
            ax.set_ylim(max(0, low - pad), min(100, high + pad))
    return _save(fig, path)


def learning_curve(summaries: list[Summary], path: Path) -> Path:
    """Test accuracy against training-set size (data.train_subset), one line per config apart from the size
    (one per regularizer), labelled with the other keys that differ."""
    from regbench.analysis.summary import changed_keys
    from regbench.store.identity import comparable_config

    flats = [comparable_config(g.config) for g in summaries]
    others = [k for k in changed_keys([g.config for g in summaries]) if k != "data.train_subset"]
    lines: dict[str, list[tuple[float, float, float]]] = {}
    for g, flat in zip(summaries, flats, strict=True):
        size = flat.get("data.train_subset")
        if size is None:
            continue
        label = ", ".join(f"{_short(k)}={_text(flat.get(k))}" for k in others) or "all"
        stats = g.stats["test_accuracy"]
        lines.setdefault(label, []).append((size, stats.mean * 100, np.nan_to_num(stats.std * 100)))
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    cmap = plt.get_cmap("tab10" if len(lines) <= 10 else "tab20")
    for i, (label, points) in enumerate(lines.items()):
        points.sort()
        x, y, err = (np.array(v) for v in zip(*points, strict=True))
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, color=cmap(i % cmap.N), label=label)
    _log_axis(ax, "log")
    ax.set_xlabel("training examples used (data.train_subset, before the validation split)")
    ax.set_ylabel("test accuracy %")
    ax.set_title("Learning curve — regularization matters most when data are scarce")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _value_of(summary: Summary, key: str):
    from regbench.store.identity import comparable_config

    return comparable_config(summary.config).get(key)


def _numeric(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _short(key: str) -> str:
    return key.split(".")[-1]


def _text(value) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


PANELS = (("test_accuracy", "test accuracy %"), ("generalization_gap", "generalization gap (train − test acc), pp"))


def sweep_plot(summaries: list[Summary], key: str, path: Path, base: Summary | None = None) -> Path:
    """One swept key: test accuracy and generalization gap (mean ± std over seeds) against its value. A key
    whose positive values span two decades or more gets a symmetric-log axis that still shows 0."""
    numeric = _numeric([_value_of(g, key) for g in summaries])
    points = sorted(summaries, key=lambda g: _value_of(g, key)) if numeric else list(summaries)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), dpi=110)
    for ax, (metric, label) in zip(axes, PANELS, strict=True):
        if numeric:
            x = np.array([_value_of(g, key) for g in points], dtype=float)
        else:
            x = np.arange(len(points), dtype=float)
            ax.set_xticks(x, [_text(_value_of(g, key)) for g in points], rotation=20, fontsize=8)
        mean = np.array([g.stats[metric].mean * 100 for g in points])
        std = np.nan_to_num(np.array([g.stats[metric].std * 100 for g in points]))
        ax.plot(x, mean, "o-", color="tab:blue", label="mean over seeds")
        ax.fill_between(x, mean - std, mean + std, color="tab:blue", alpha=0.2, linewidth=0, label="± std")
        if base is not None:
            ax.axhline(base.stats[metric].mean * 100, color="grey", linestyle="--", label=f"{base.label}")
        positive = x[x > 0] if numeric else np.array([])
        if numeric and len(positive) and positive.max() / positive.min() >= 100:
            _log_axis(ax, "symlog", linthresh=float(positive.min()))
        ax.set_xlabel(key + (" (symmetric log axis)" if ax.get_xscale() == "symlog" else ""))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Sweep over {_short(key)}: {len(points)} values, {min(g.n for g in summaries)}+ seeds each")
    return _save(fig, path)


def _grid_panel(ax, table: list[Row], rows_key: str, cols_key: str, axes: dict, metric: str, label: str) -> None:
    """A heatmap of ``metric`` over two swept keys; cells annotated mean ± std, '*' where the verdict is a
    difference."""
    rows, cols = axes[rows_key], axes[cols_key]
    grid = np.full((len(rows), len(cols)), np.nan)
    notes = [["" for _ in cols] for _ in rows]
    for row in table:
        g = row.summary
        i = rows.index(_value_of(g, rows_key))
        j = cols.index(_value_of(g, cols_key))
        s = g.stats[metric]
        grid[i, j] = s.mean * 100
        # the verdict is the tested metric's
        decided = row.metric == metric and row.verdict is not None and row.verdict.differs
        star = " *" if decided else ""
        std = f"\n± {s.std * 100:.2f}" if math.isfinite(s.std) else ""
        notes[i][j] = f"{s.mean * 100:.2f}{star}{std}"
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    middle = np.nanmean(grid) if np.isfinite(grid).any() else 0
    for i in range(len(rows)):
        for j in range(len(cols)):
            colour = "black" if np.isfinite(grid[i, j]) and grid[i, j] > middle else "white"
            ax.text(j, i, notes[i][j], ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(len(cols)), [_text(v) for v in cols], fontsize=8)
    ax.set_yticks(range(len(rows)), [_text(v) for v in rows], fontsize=8)
    ax.set_xlabel(cols_key)
    ax.set_ylabel(rows_key)
    ax.set_title(label, fontsize=10)
    plt.colorbar(image, ax=ax, fraction=0.046, pad=0.04)


def heatmap(table: list[Row], axes: dict[str, list], path: Path) -> Path:
    """Two swept keys: heatmaps of test accuracy and generalization gap. Three or more: small multiples of the
    test-accuracy heatmap over the first two keys, one panel per combination of the others (at most 12)."""
    keys = list(axes)
    rows_key, cols_key = keys[0], keys[1]
    if len(keys) == 2:
        fig, panels = plt.subplots(1, 2, figsize=(12, 0.6 * len(axes[rows_key]) + 3), dpi=110)
        for ax, (metric, label) in zip(panels, PANELS, strict=True):
            _grid_panel(ax, table, rows_key, cols_key, axes, metric, label + ", mean ± std")
    else:
        import itertools

        others = keys[2:]
        combos = list(itertools.product(*(axes[k] for k in others)))[:12]
        cols = min(3, len(combos))
        nrows = math.ceil(len(combos) / cols)
        fig, panels = plt.subplots(nrows, cols, figsize=(5.5 * cols, (0.5 * len(axes[rows_key]) + 2.5) * nrows))
        panels = np.atleast_1d(panels).ravel()
        for ax, combo in zip(panels, combos, strict=False):
            chosen = [r for r in table if all(_value_of(r.summary, k) == v for k, v in zip(others, combo, strict=True))]
            title = ", ".join(f"{_short(k)}={_text(v)}" for k, v in zip(others, combo, strict=True))
            _grid_panel(ax, chosen, rows_key, cols_key, axes, "test_accuracy", f"test accuracy %: {title}")
        for ax in panels[len(combos) :]:
            ax.axis("off")
    tested = table[0].metric.replace("_", " ") if table else ""
    fig.suptitle(f"Sweep grid; * = {tested}: a decided difference from the baseline (the table's verdict)")
    return _save(fig, path)
