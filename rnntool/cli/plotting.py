"""Plots for `rnntool models show ... --plot FILE.png` (matplotlib, the optional extra rnntool[plot]).

    plot_history(bundles, aliases, "history.png")   # each version's validation metric, aliases marked
    plot_training_curve(bundle, "run.png")          # train loss and validation metric over steps
    plot_confusion_matrix(report, "cm.png")        # a classification report's confusion matrix

matplotlib is imported only when a plot is drawn, and only its Agg canvas is used (no pyplot, no
GUI, no global backend switch). Files are written atomically; the format follows the suffix.
"""


import os
from pathlib import Path

from rnntool.errors import OptionalDependencyMissing, RnnToolError, UsageError
from rnntool.registry.history import (
    CURVE_METRIC,
    is_number,
    metric_label,
    plotted_metrics,
    promotion,
    series,
    training_log,
)
from rnntool.textio import atomic_path

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
INSTALL_HINT = "matplotlib is not installed; pip install 'rnntool[plot]'"
PANEL_SIZE = (7.0, 2.8)  # inches per panel; at 110 dpi about 770 x 310 pixels
DPI = 110


def plot_format(dest: str | os.PathLike) -> str:
    """The file format for ``dest`` from its suffix (UsageError for anything else)."""
    suffix = Path(dest).suffix.lower()
    if str(dest) in ("", "-") or suffix not in FORMATS:
        raise UsageError(f"--plot needs a file name ending in .png, .svg or .pdf, not {str(dest)!r}")
    return FORMATS[suffix]


def _figure(panels: int):
    """A Figure with ``panels`` stacked axes on an Agg canvas (the import that may fail)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise OptionalDependencyMissing(INSTALL_HINT) from None
    fig = Figure(figsize=(PANEL_SIZE[0], PANEL_SIZE[1] * panels + 0.6), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    return fig, list(axes)


def _integer_locator():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _save(fig, dest: str | os.PathLike, fmt: str) -> Path:
    from matplotlib import rc_context

    with atomic_path(dest) as tmp, rc_context({"svg.fonttype": "none"}):  # SVG text stays text
        fig.savefig(tmp, format=fmt)
    return Path(dest)


# -- across versions ------------------------------------------------------------------------------
def plot_history(bundles: list, aliases: dict[int, list[str]], dest: str | os.PathLike) -> Path:
    """One panel per key validation metric, one point per version; aliases and promotions marked.

    ``aliases`` maps a version number to its alias names.
    """
    fmt = plot_format(dest)  # a bad file name fails before any work
    if not bundles:
        raise RnnToolError("no versions to plot")
    name = bundles[0].name
    metrics = plotted_metrics(bundles)
    if not metrics:
        raise RnnToolError(
            f"{name} has no validation metrics to plot ({bundles[0].kind} bundles record none); "
            "plot a language or translation model"
        )
    fig, axes = _figure(len(metrics))
    for ax, metric in zip(axes, metrics):
        points = [(b, float(b.metrics[metric])) for b in bundles if is_number(b.metrics.get(metric))]
        xs = [b.version for b, _ in points]
        ys = [y for _, y in points]
        ax.plot(xs, ys, marker="o", color="tab:blue", linewidth=1.5, zorder=2)
        promoted = [(b.version, y) for b, y in points if (promotion(b) or {}).get("promoted")]
        if promoted:
            ax.scatter(*zip(*promoted), s=140, facecolors="none", edgecolors="tab:green", linewidths=1.8,
                       zorder=3, label="promoted")
            ax.legend(loc="best", fontsize="small")
        for b, y in points:
            names = aliases.get(b.version) or []
            if names:
                ax.annotate(", ".join(f"@{a}" for a in names), (b.version, y), textcoords="offset points",
                            xytext=(0, 12), ha="center", fontsize="small", color="tab:red", fontweight="bold")
        ax.set_ylabel(metric)
        ax.set_title(metric_label(metric), fontsize="medium", loc="left")
        ax.grid(True, alpha=0.3)
        ax.margins(x=0.08, y=0.2)
    versions = [b.version for b in bundles if b.version is not None]
    axes[-1].set_xlabel("version")
    if versions:
        axes[-1].set_xticks(versions if len(versions) <= 20 else versions[:: max(1, len(versions) // 20)])
    fig.suptitle(f"{name}: {len(bundles)} version(s)")
    return _save(fig, dest, fmt)


# -- one training run ------------------------------------------------------------------------------
def plot_training_curve(bundle, dest: str | os.PathLike, aliases: list[str] | None = None) -> Path:
    """Train and validation loss over steps (top), the kind's quality metric (bottom); best step marked."""
    fmt = plot_format(dest)  # a bad file name fails before any work
    records = training_log(bundle)
    train_steps, train_loss = series(records, "train", "loss")
    if len(train_steps) < 2:  # few "train" lines (log_every): use each eval's window loss instead
        train_steps, train_loss = series(records, "eval", "train_loss")
    val_steps, val_loss = series(records, "eval", "val_loss")
    curves = {m: series(records, "eval", m) for m in CURVE_METRIC.get(bundle.kind, ())}
    curve_metric = next((m for m, (steps, _) in curves.items() if steps), None)
    if not train_steps and not val_steps:
        raise RnnToolError(f"{bundle.ref}: its training log has no loss values to plot (was it trained at all?)")
    fig, axes = _figure(2 if curve_metric else 1)
    ax = axes[0]
    if train_steps:
        ax.plot(train_steps, train_loss, color="tab:blue", linewidth=1.2, label="train loss")
    if val_steps:
        ax.plot(val_steps, val_loss, color="tab:orange", marker="o", markersize=3, linewidth=1.5,
                label="validation loss")
    ax.set_ylabel("loss (nats/token)")
    if curve_metric:
        steps, values = curves[curve_metric]
        axes[1].plot(steps, values, color="tab:green", marker="o", markersize=3, linewidth=1.5)
        axes[1].set_ylabel(curve_metric)
        axes[1].set_title(metric_label(curve_metric), fontsize="medium", loc="left")
    best_step = bundle.metrics.get("best_step")
    for i, a in enumerate(axes):
        a.grid(True, alpha=0.3)
        a.margins(x=0.03)
        if is_number(best_step):
            a.axvline(best_step, color="grey", linestyle=":", linewidth=1.2,
                      label=f"best weights (step {int(best_step)})" if i == 0 else None)
    axes[0].legend(loc="best", fontsize="small")
    axes[-1].xaxis.set_major_locator(_integer_locator())
    axes[-1].set_xlabel("step")
    tag = f" ({', '.join('@' + a for a in aliases)})" if aliases else ""
    fig.suptitle(f"{bundle.ref}{tag}: training curve")
    return _save(fig, dest, fmt)



# -- a classifier's confusion matrix ---------------------------------------------------------------
def _square_figure(side: float):
    """A Figure with one axes, ``side`` inches square, on an Agg canvas (the import that may fail)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise OptionalDependencyMissing(INSTALL_HINT) from None
    fig = Figure(figsize=(side + 1.2, side), dpi=DPI, layout="constrained")  # + room for the colour bar
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, 1)


def _short(label, width: int = 14) -> str:
    text = str(label)
    return text if len(text) <= width else text[: width - 1] + "~"


def plot_confusion_matrix(report: dict, dest: str | os.PathLike) -> Path:
    """Heatmap of a classification report's confusion matrix: gold rows, predicted columns.

    Colours are row-normalised (the fraction of each gold class predicted as each class), the cells
    show the counts. ``report`` is ``rnntool.kinds.classifier.metrics.classification_report``'s dict.
    """
    fmt = plot_format(dest)  # a bad file name fails before any work
    matrix = report.get("confusion_matrix")
    if not matrix or not matrix.get("labels"):
        raise RnnToolError("no confusion matrix to plot: multi-label reports have none (plot single-label results)")
    labels = [_short(x) for x in matrix["labels"]]
    counts = [[int(c) for c in row] for row in matrix["matrix"]]
    k = len(labels)
    totals = [sum(row) for row in counts]
    fractions = [[c / t if t else 0.0 for c in row] for row, t in zip(counts, totals)]
    fig, ax = _square_figure(min(max(3.0 + 0.45 * k, 4.5), 14.0))
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="equal")
    colorbar = fig.colorbar(image, ax=ax, shrink=0.8)
    colorbar.set_label("fraction of the gold class")
    if k <= 30:  # beyond that the numbers would not fit in the cells
        size = "medium" if k <= 8 else ("small" if k <= 15 else "x-small")
        for i, row in enumerate(counts):
            for j, c in enumerate(row):
                ax.text(j, i, str(c), ha="center", va="center", fontsize=size,
                        color="white" if fractions[i][j] > 0.5 else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    rotate = k > 6 or max((len(x) for x in labels), default=0) > 6
    ax.set_xticklabels(labels, rotation=45 if rotate else 0, ha="right" if rotate else "center",
                       rotation_mode="anchor")
    ax.set_yticklabels(labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    title = f"confusion matrix: {sum(totals)} examples"
    if isinstance(report.get("accuracy"), (int, float)):
        title += f", accuracy {report['accuracy']:.3f}"
    ax.set_title(title, fontsize="medium")
    return _save(fig, dest, fmt)


__all__ = ["INSTALL_HINT", "plot_confusion_matrix", "plot_format", "plot_history", "plot_training_curve"]
