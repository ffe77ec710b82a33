"""Learning-curve plots as PNG bytes: the overview page and the simulator's curves.png share this.

matplotlib is imported lazily (it is slow to import and only plots need it) and
always with the Agg backend, so plotting works in a server thread with no display.
"""
from __future__ import annotations

import io
import math
from typing import Sequence

# Colour-blind-safe (Okabe-Ito), in the order series are drawn.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
LINESTYLES = ("-", "--", ":", "-.")
LEGEND_INSIDE_MAX = 8


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def accuracy_png(fig, ax, dpi: int) -> bytes:
    """An accuracy-over-labels figure, styled as every curve here is, as PNG bytes."""
    ax.set_xlabel("labels")
    ax.set_ylabel("accuracy")
    ax.grid(True, color="#dddddd", linewidth=0.8)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.legend(loc="lower right", frameon=False, fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _finite(values) -> list[float]:
    return [float(v) if v is not None and math.isfinite(float(v)) else math.nan for v in values]


def learning_curves(series: Sequence[dict], *, reference: tuple[float, str] | None = None, title: str | None = None,
                    xlabel: str = "labels", ylabel: str = "accuracy", width: int = 720, height: int = 405,
                    dpi: int = 100, empty_message: str = "no model yet") -> bytes:
    """A PNG of ``width`` x ``height`` pixels with one line per series.

    ``series``: ``[{"name", "x", "y", "std" (optional: a shaded ±std band)}]``.
    ``reference``: ``(value, name)``, drawn as a dashed horizontal line (e.g. accuracy on all labels).
    With no points at all the image says ``empty_message`` instead of showing empty axes.
    """
    plt = _pyplot()
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    try:
        ax = fig.add_subplot(1, 1, 1)
        drawn = 0
        for i, s in enumerate(series):
            x = _finite(s.get("x") or [])
            y = _finite(s.get("y") or [])
            if len(x) != len(y):
                raise ValueError(f"series {s.get('name')!r}: x has {len(x)} points but y has {len(y)}")
            if not x:
                continue
            colour = PALETTE[i % len(PALETTE)]
            # Past the palette, the dash pattern tells lines of the same colour apart.
            dashes = LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)]
            ax.plot(x, y, marker="o" if len(x) < 30 else None, markersize=3.5, linewidth=1.8, color=colour,
                    linestyle=dashes, label=s.get("name"))
            std = s.get("std")
            if std is not None:
                sd = [0.0 if math.isnan(v) else v for v in _finite(std)]
                if len(sd) != len(y):
                    raise ValueError(f"series {s.get('name')!r}: std has {len(sd)} points but y has {len(y)}")
                ax.fill_between(x, [a - b for a, b in zip(y, sd)], [a + b for a, b in zip(y, sd)],
                                color=colour, alpha=0.18, linewidth=0)
            drawn += 1
        if reference is not None:
            value, name = reference
            ax.axhline(float(value), color="#555555", linestyle="--", linewidth=1.2, label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, color="#dddddd", linewidth=0.8)
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)
        if drawn == 0:
            # Empty axes with a message read as "a chart will be here", not as a broken image.
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.5, 0.5, empty_message, transform=ax.transAxes, ha="center", va="center", fontsize=15,
                    color="#666666")
        elif any(s.get("name") for s in series) or reference is not None:
            if drawn > LEGEND_INSIDE_MAX:
                # Many lines: the legend goes beside the axes instead of over the curves.
                ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize="small",
                          ncol=1 + drawn // 18)
            else:
                ax.legend(loc="lower right", frameon=False)
        if title:
            ax.set_title(title)
        fig.tight_layout()
        buf = io.BytesIO()
        # No bbox_inches="tight": the image must be exactly width x height.
        fig.savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()
    finally:
        plt.close(fig)


def project_curve(history: Sequence[dict], *, target: float | None = None, width: int = 720, height: int = 405,
                  dpi: int = 100) -> bytes:
    """The project page's plot, from the model versions (store.model_versions): how good the model is.

    The estimated accuracy on the data with its 90% interval (assay.evaluation.accuracy); the
    cross-validation on the labeled items, dashed and named as what it is (active learning labels the hard
    items, so it runs low); always answering the commonest class; the target; and where the stopping signal
    first fired.
    """
    good = [v for v in history if v.get("status") == "ok"]
    good.sort(key=lambda v: (v["n_labels"], v.get("version") or 0))
    est = [v for v in good if v.get("estimate") is not None]
    cv = [v for v in good if v.get("accuracy") is not None]
    if not est:
        # Versions from before the estimate existed (or multi-label projects): the cross-validation alone.
        methods = {v.get("accuracy_method") for v in cv if v.get("accuracy_method")}
        name = "accuracy" + (f" ({', '.join(sorted(methods))})" if methods else "")
        series = [{"name": name, "x": [v["n_labels"] for v in cv], "y": [v["accuracy"] for v in cv],
                   "std": [v.get("accuracy_std") or 0.0 for v in cv]}]
        return learning_curves(series, width=width, height=height, dpi=dpi)
    plt = _pyplot()
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    try:
        ax = fig.add_subplot(1, 1, 1)
        x = [v["n_labels"] for v in est]
        ax.fill_between(x, [v["estimate_low"] for v in est], [v["estimate_high"] for v in est], color=PALETTE[0],
                        alpha=0.18, linewidth=0, label="90% interval")
        ax.plot(x, [v["estimate"] for v in est], color=PALETTE[0], linewidth=2.2, marker="o" if len(x) < 30 else None,
                markersize=3.5, label="estimated accuracy on the data")
        if cv:
            ax.plot([v["n_labels"] for v in cv], [v["accuracy"] for v in cv], color="#888888", linewidth=1.2,
                    linestyle="--", label="CV on labeled items (hard ones: runs low)")
        majority = ((est[-1].get("evaluation") or {}).get("majority") or {}).get("accuracy")
        if majority is not None:
            ax.axhline(majority, color=PALETTE[1], linestyle=":", linewidth=1.5,
                       label=f"always the commonest class ({majority:.2f})")
        if target is not None:
            ax.axhline(target, color=PALETTE[2], linestyle="-.", linewidth=1.3, label=f"target ({target:.2f})")
        fired = next((v for v in good if v.get("stop_signal")), None)
        if fired is not None:
            ax.axvline(fired["n_labels"], color="#333333", linewidth=1.0, linestyle="-")
            ax.annotate("predictions stable:\nstop signal", (fired["n_labels"], 0.02),
                        xycoords=("data", "axes fraction"), xytext=(4, 4), textcoords="offset points", fontsize=9,
                        color="#333333")
        lows = [v["estimate_low"] for v in est] + ([majority] if majority is not None else [])
        ax.set_ylim(max(0.0, min(lows) - 0.05), 1.0)
        return accuracy_png(fig, ax, dpi)
    finally:
        plt.close(fig)
