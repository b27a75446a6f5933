"""Figures of ID-rate results, drawn with seaborn: ROC on log FPR and TPR at each FPR per model (the
comparisons), genuine / impostor cosine-similarity distributions with the threshold, accuracy against the
threshold, t-SNE of the query identities. Each function writes one PNG (atomically) and returns its path."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from facedata.io import write_bytes_atomic

from .protocols import IdRateResult

STYLE = "whitegrid"  # a seaborn style, set per figure (never globally: other plots in the process keep theirs)
DPI = 100  # about 600 x 450 px per panel: readable in the README and a notebook, small on disk
# The three kinds of pair in a similarity sample (id_rate.evaluate.similarity_sample) and their legend labels.
PAIR_KINDS = {"pos": "same person (query)", "neg_qq": "different people (query)", "neg_qd": "query x distractor"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed (CI, a server)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    write_bytes_atomic(buf.getvalue(), Path(path))
    return Path(path)


def _palette(names) -> dict[str, tuple]:
    """One colour per model, the same in every panel of a figure."""
    import seaborn as sns

    names = list(names)
    return dict(zip(names, sns.color_palette(n_colors=max(1, len(names)))))


def plot_roc(results: dict[str, IdRateResult], path: Path) -> Path:
    """ROC curves of every model on one log-FPR axis; FPR 0 is drawn at the resolution limit 1 / negatives."""
    import pandas as pd
    import seaborn as sns

    plt = _pyplot()
    frames = [pd.DataFrame({"model": f"{name} (AUC {r.auc:.3f})", "false positive rate (log)":
                            np.maximum(r.roc_fpr, 1.0 / max(1, r.n_neg)), "true positive rate": r.roc_tpr})
              for name, r in results.items()]
    with sns.axes_style(STYLE):
        fig, ax = plt.subplots(figsize=(6, 4.5))
        if frames:
            sns.lineplot(pd.concat(frames, ignore_index=True), x="false positive rate (log)", y="true positive rate",
                         hue="model", estimator=None, sort=False, drawstyle="steps-post", ax=ax)
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.01)
    return _save(fig, path)


def plot_tpr_at_fpr(results: dict[str, IdRateResult], path: Path) -> Path:
    """The ID-rate table as bars: TPR at each target FPR, one bar per model. An FPR below 1 / negatives
    (not resolvable, "n/r" in the table) has no bar."""
    import pandas as pd
    import seaborn as sns

    plt = _pyplot()
    fprs = sorted({p.target_fpr for r in results.values() for p in r.points}, reverse=True)
    rows = [{"FPR": f"{p.target_fpr:g}", "TPR": p.tpr, "model": name}
            for name, r in results.items() for p in r.points if p.tpr is not None]
    with sns.axes_style(STYLE):
        fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(fprs) + 0.4 * len(results)), 4))
        if rows:
            sns.barplot(pd.DataFrame(rows), x="FPR", y="TPR", hue="model", order=[f"{f:g}" for f in fprs],
                        hue_order=list(results), palette=_palette(results), ax=ax)
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the bars, never over them
        ax.set_xlabel("target false positive rate (no bar: not resolvable on these negatives)")
        ax.set_ylabel("true positive rate")
        ax.set_ylim(0, 1.01)
    return _save(fig, path)


def plot_similarity(scores: dict[str, dict[str, np.ndarray]], path: Path,
                    thresholds: dict[str, float] | None = None) -> Path:
    """Per model: cosine-similarity distributions of same-person (genuine) pairs against different-people
    (impostor) pairs, each normalised to its own area; a dashed line at the model's threshold (cosine
    similarity) where ``thresholds`` gives one."""
    import pandas as pd
    import seaborn as sns

    plt = _pyplot()
    thresholds = thresholds or {}
    colours = _palette(PAIR_KINDS.values())  # a kind keeps its colour in a panel that lacks another kind
    with sns.axes_style(STYLE):
        fig, axes = plt.subplots(1, max(1, len(scores)), figsize=(4.2 * max(1, len(scores)), 3.4), squeeze=False)
        for ax, (name, s) in zip(axes[0], scores.items()):
            frames = [pd.DataFrame({"pairs": label, "cosine similarity": np.asarray(s[key], np.float64)})
                      for key, label in PAIR_KINDS.items() if len(s.get(key, ()))]
            if frames:
                sns.histplot(pd.concat(frames, ignore_index=True), x="cosine similarity", hue="pairs",
                             stat="density", common_norm=False, bins=np.linspace(-1, 1, 81), element="step",
                             palette=colours, alpha=0.35, ax=ax)
                legend = ax.get_legend()
                if legend is not None:
                    legend.set_title(None)
                    for text in legend.get_texts():
                        text.set_fontsize(7)
            if name in thresholds:
                ax.axvline(thresholds[name], color="black", linestyle="--", linewidth=1)
                ax.text(thresholds[name], 0.97, f" threshold {thresholds[name]:.3f}", transform=ax.get_xaxis_transform(),
                        fontsize=7, va="top")
            ax.set_xlim(-1, 1)
            ax.set_xticks(np.linspace(-1, 1, 5))
            ax.set_title(name, fontsize=9)
    return _save(fig, path)


def plot_accuracy_vs_threshold(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path: Path) -> Path:
    """Accuracy of "cosine distance < t" on the report split per model, dotted at the threshold chosen on
    the other split."""
    import pandas as pd
    import seaborn as sns

    plt = _pyplot()
    colours = _palette(curves)
    frames = [pd.DataFrame({"model": name, "cosine distance threshold": t, "accuracy": acc})
              for name, (t, acc, _) in curves.items()]
    with sns.axes_style(STYLE):
        fig, ax = plt.subplots(figsize=(6, 4))
        if frames:
            sns.lineplot(pd.concat(frames, ignore_index=True), x="cosine distance threshold", y="accuracy",
                         hue="model", palette=colours, estimator=None, sort=False, ax=ax)
            ax.legend(fontsize=8)
        for name, (_, _, chosen) in curves.items():
            ax.axvline(chosen, color=colours[name], linestyle=":", linewidth=1)
        ax.set_xlabel("cosine distance threshold (dotted: chosen on the other split)")
    return _save(fig, path)


def plot_tsne(embeddings: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, seed: int = 0) -> Path:
    """t-SNE of a few query identities per model, coloured by identity."""
    import pandas as pd
    import seaborn as sns
    from sklearn.manifold import TSNE

    plt = _pyplot()
    with sns.axes_style("white"):
        fig, axes = plt.subplots(1, max(1, len(embeddings)), figsize=(4 * max(1, len(embeddings)), 3.8), squeeze=False)
        for ax, (name, (emb, labels)) in zip(axes[0], embeddings.items()):
            xy = TSNE(2, perplexity=min(30, max(2, len(emb) // 4)), init="pca", random_state=seed).fit_transform(emb)
            df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "identity": np.asarray(labels).astype(str)})
            sns.scatterplot(df, x="x", y="y", hue="identity", s=16, ax=ax, legend=ax is axes[0][-1])
            ax.set(title=name, xlabel="", ylabel="", xticks=[], yticks=[])
            ax.title.set_fontsize(9)
        if axes[0][-1].get_legend() is not None:
            sns.move_legend(axes[0][-1], "best", fontsize=6, title=None)
    return _save(fig, path)
