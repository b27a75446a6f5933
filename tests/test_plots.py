"""id_rate.plots: every figure is a PNG drawn from small hand-made scores, with what it must show."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from id_rate import plots
from id_rate.protocols import IdRateResult, RatePoint


def result(tprs: dict[float, float | None], auc: float) -> IdRateResult:
    """An ID-rate result with the given TPR per target FPR (None: not resolvable) on 4 positives, 100 negatives."""
    points = [RatePoint(f, t, None if t is None else 0.5, True) for f, t in tprs.items()]
    return IdRateResult(n_query=4, n_query_identities=2, n_distractor=10, n_pos=4, n_neg=100, auc=auc, auc_error=0.0,
                        points=points, roc_fpr=np.array([0.0, 0.01, 0.1, 1.0]), roc_tpr=np.array([0.25, 0.5, 0.75, 1.0]),
                        pos_scores=np.array([0.9, 0.8, 0.7, 0.1]))


RESULTS = {"good": result({0.1: 0.75, 0.01: 0.5, 0.001: None}, 0.9),
           "chance": result({0.1: 0.25, 0.01: 0.0, 0.001: None}, 0.5)}
SCORES = {"good": {"pos": np.array([0.9, 0.8, 0.7, 0.1]), "neg_qq": np.array([0.0, -0.1]),
                   "neg_qd": np.array([0.2, -0.3, 0.05])},
          "chance": {"pos": np.array([0.1, 0.0]), "neg_qq": np.array([], np.float32), "neg_qd": np.array([0.1, -0.1])}}


@pytest.fixture()
def figures(monkeypatch):
    """Every figure the plot functions save, still open, in order (the PNG is written as well)."""
    saved = []
    real = plots._save

    def keep(fig, path):
        saved.append(fig)
        fig.canvas.draw()  # lay out before the real save closes it
        return real(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    return saved


def png_size(path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    with Image.open(path) as im:
        return im.size


def test_tpr_at_fpr_bars_are_the_table(tmp_path, figures):
    path = plots.plot_tpr_at_fpr(RESULTS, tmp_path / "bars.png")
    assert path == tmp_path / "bars.png" and png_size(path)[0] >= 600
    ax = figures[0].axes[0]
    heights = sorted(round(p.get_height(), 6) for p in ax.patches if p.get_height() > 0)
    assert heights == [0.25, 0.5, 0.75]  # chance's 0 at 0.01 is a zero-height bar; FPR 0.001 (n/r) has none
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.1", "0.01", "0.001"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["good", "chance"]


def test_roc_one_curve_per_model_on_log_fpr(tmp_path, figures):
    png_size(plots.plot_roc(RESULTS, tmp_path / "roc.png"))
    ax = figures[0].axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["good (AUC 0.900)", "chance (AUC 0.500)"]
    x = ax.lines[0].get_xdata()
    assert x[0] == pytest.approx(0.01)  # FPR 0 drawn at 1 / 100 negatives


def test_similarity_histograms_with_threshold(tmp_path, figures):
    png_size(plots.plot_similarity(SCORES, tmp_path / "sim.png", thresholds={"good": 0.45}))
    good, chance = figures[0].axes
    assert good.get_title() == "good" and chance.get_title() == "chance"
    assert [t.get_text() for t in good.get_legend().get_texts()] == list(plots.PAIR_KINDS.values())
    # the empty kind is left out of the legend, not drawn as an empty histogram
    assert [t.get_text() for t in chance.get_legend().get_texts()] == ["same person (query)", "query x distractor"]
    dashed = [ln for ln in good.lines if ln.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_xdata()) == [0.45, 0.45]
    assert not [ln for ln in chance.lines if ln.get_linestyle() == "--"]  # no threshold given for it


def test_accuracy_vs_threshold_marks_the_chosen_threshold(tmp_path, figures):
    t = np.array([0.0, 0.5, 1.0])
    curves = {"good": (t, np.array([0.5, 1.0, 0.5]), 0.5), "chance": (t, np.array([0.5, 0.5, 0.5]), 0.2)}
    png_size(plots.plot_accuracy_vs_threshold(curves, tmp_path / "acc.png"))
    ax = figures[0].axes[0]
    dotted = sorted(ln.get_xdata()[0] for ln in ax.lines if ln.get_linestyle() == ":")
    assert dotted == [0.2, 0.5]
    assert max(ax.lines[0].get_ydata()) == 1.0


def test_tsne_one_panel_per_model(tmp_path, figures):
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b"], 5)
    emb = np.where(labels[:, None] == "a", 1.0, -1.0) * np.ones((10, 4)) + rng.normal(scale=0.1, size=(10, 4))
    png_size(plots.plot_tsne({"m1": (emb, labels), "m2": (-emb, labels)}, tmp_path / "tsne.png"))
    axes = figures[0].axes
    assert [a.get_title() for a in axes] == ["m1", "m2"]
    assert [t.get_text() for t in axes[-1].get_legend().get_texts()] == ["a", "b"]
    assert len(axes[0].collections[0].get_offsets()) == 10
