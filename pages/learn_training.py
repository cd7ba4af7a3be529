"""Learn · Training: the four losses on editable logits and labels (and why BCEWithLogitsLoss
beats Sigmoid + BCELoss at logit ±100), five optimizers walking a 2-D loss surface with
Adam's first steps as a table checked against torch.optim.Adam, and the weights of runs
trained with and without weight decay. Every control lives in the URL."""

import numpy as np
import pandas as pd
import streamlit as st

from cnn_core.concepts import losses, optimizers, regularization
from cnn_core.concepts.convolution import parse_matrix
from ui import cache
from ui import learn_charts as lc
from ui import learn_widgets as lw
from ui.learn_widgets import Control
from ui.router import ensure_routed

ensure_routed()

MODELS = lw.learned_models()
RATES = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
VIEWS = ("Losses", "Numerical stability", "Optimizers", "Weight decay")
LINK = lw.Linked(
    "tr_",
    {
        "view": Control(VIEWS[0], VIEWS),
        "logits": Control("2.5 -1.0 0.3 -4.0"),
        "labels": Control("1 0 0 1"),
        "scores": Control("2.0 0.5 -1.0\n0.1 0.2 3.0"),
        "classes": Control("0 2"),
        "far": Control("-100 -20 0 20 100 200"),
        "target": Control(0, (0, 1)),
        "surface": Control("Rosenbrock", tuple(optimizers.SURFACES)),
        "methods": Control(list(optimizers.OPTIMIZERS)),
        "lr": Control(0.1, RATES),
        "lr_sgd": Control(0.001, RATES),
        "steps": Control(200, low=1, high=1000),
        "rows": Control(5, low=1, high=50),
        "runs": Control(list(MODELS)[:2]),  # the two newest finished runs
    },
)
key = LINK.key
STABILITY = {
    "sigmoid_bce_loss": "Sigmoid + BCELoss: loss",
    "sigmoid_bce_grad": "Sigmoid + BCELoss: ∂loss/∂z",
    "with_logits_loss": "BCEWithLogitsLoss: loss",
    "with_logits_grad": "BCEWithLogitsLoss: ∂loss/∂z",
    "exact_loss": "exact loss (float64)",
}


def binary_losses() -> None:
    cols = st.columns(2)
    slot = st.container()
    cols[0].text_input("Logits z", key=key("logits"))
    cols[1].text_input("Labels y (0 or 1)", key=key("labels"))

    def compute() -> None:
        z = parse_matrix(LINK.value("logits"), "logits", ndim=1)
        y = parse_matrix(LINK.value("labels"), "labels", ndim=1)
        p = losses.sigmoid(z)
        rows = {
            "BCEWithLogitsLoss(z, y)": (losses.bce_with_logits(z, y), z),
            "BCELoss(σ(z), y)": (losses.bce(p, y), p),
        }
        st.dataframe(pd.DataFrame({"z": z, "y": y, "σ(z)": p}).T, width="stretch")
        lc.loss_table(
            {
                name: (value, losses.torch_reference(name.split("(")[0], x, y))
                for name, (value, x) in rows.items()
            }
        )

    lw.guarded(slot, compute)


def multiclass_losses() -> None:
    cols = st.columns(2)
    slot = st.container()
    cols[0].text_area("Logits (one row per sample)", key=key("scores"), height=90)
    cols[1].text_input("Class labels", key=key("classes"))

    def compute() -> None:
        z = parse_matrix(LINK.value("scores"), "logits")
        y = parse_matrix(LINK.value("classes"), "class labels", ndim=1)
        logp = losses.log_softmax(z)
        st.dataframe(pd.DataFrame(np.exp(logp)).add_prefix("softmax ").round(4))
        lc.loss_table(
            {
                "CrossEntropyLoss(z, y)": (
                    losses.cross_entropy(z, y),
                    losses.torch_reference("CrossEntropyLoss", z, y),
                ),
                "NLLLoss(log_softmax(z), y)": (
                    losses.nll(logp, y),
                    losses.torch_reference("NLLLoss", logp, y),
                ),
            }
        )

    lw.guarded(slot, compute)


def stability() -> None:
    cols = st.columns([3, 1])
    slot = st.container()
    cols[0].text_input("Logits", key=key("far"))
    target = cols[1].radio("Label", (0, 1), horizontal=True, key=key("target"))

    def compute() -> None:
        table = losses.stability_table(
            parse_matrix(LINK.value("far"), "logits", ndim=1).tolist(), target
        )
        st.dataframe(  # 4 significant digits: a loss of 3.7e-44 is not "0.000000000000…"
            pd.DataFrame(table).set_index("logit").rename(columns=STABILITY),
            width="stretch",
            column_config={
                c: st.column_config.NumberColumn(format="%.4g") for c in STABILITY.values()
            },
        )

    lw.guarded(slot, compute)
    st.caption(
        "In float32, σ(100) is exactly 1 and σ(−100) underflows toward 0: Sigmoid + BCELoss "
        "then takes log 0 (clamped to −100, so the loss caps at 100) and the gradient through "
        "the saturated sigmoid is 0 — a confidently wrong prediction stops learning. "
        "BCEWithLogitsLoss folds the sigmoid into the log (max(z,0) − z·y + log(1+e^−|z|)): "
        "exact loss, gradient σ(z) − y. CrossEntropyLoss does the same for softmax + NLLLoss."
    )


def optimizer_walks() -> None:
    cols = st.columns([2, 4, 2, 2, 2])
    name = cols[0].selectbox("Surface", list(optimizers.SURFACES), key=key("surface"))
    picked = cols[1].multiselect("Optimizers", optimizers.OPTIMIZERS, key=key("methods"))
    cols[2].select_slider("lr (adaptive)", RATES, key=key("lr"))
    cols[3].select_slider("lr (SGD, momentum)", RATES, key=key("lr_sgd"))
    steps = cols[4].number_input("Steps", 1, 1000, key=key("steps"))
    walks = {}
    for method in picked:
        lr = LINK.value("lr_sgd" if method in ("SGD", "Momentum") else "lr")
        walks[f"{method} (lr {lr:g})"] = lw.trajectory(method, name, lr, steps)
    lc.chart(lc.surface_figure(name, walks), "tr_fig_surface")
    diverged = [label for label, walk in walks.items() if len(walk) < steps + 1]
    if diverged:
        st.warning(f"Diverged (stopped where |θ| passed 10⁶): {', '.join(diverged)}.")
    adam_steps(name, LINK.value("lr"))


def adam_steps(name: str, lr: float) -> None:
    count = st.number_input("Adam steps in the table", 1, 50, key=key("rows"))
    rows = optimizers.adam_table(name, lr, count)
    st.markdown(
        "**Adam** (β₁ = 0.9, β₂ = 0.999, ε = 10⁻⁸): m ← β₁m + (1−β₁)g · v ← β₂v + (1−β₂)g² · "
        "m̂ = m/(1−β₁ᵗ) · v̂ = v/(1−β₂ᵗ) · θ ← θ − lr·m̂/(√v̂ + ε)"
    )
    st.dataframe(lc.vector_table(rows), hide_index=True, width="stretch")
    reference = optimizers.torch_trajectory("Adam", name, lr, count)[1:]
    ours = np.array([row["theta"] for row in rows])
    gap = float(np.abs(ours[: len(reference)] - reference).max())
    st.caption(f"torch.optim.Adam on the same problem: max |θ by hand − θ torch| = {gap:.1e}.")


def weight_decay() -> None:
    models = MODELS
    if not models:
        st.info("No finished run yet: train two runs, one with weight decay, to compare them.")
        return
    known = [k for k in LINK.value("runs") if k in models]
    if known != LINK.value("runs"):  # a link may name runs deleted since
        st.session_state[key("runs")] = known
    picked = st.multiselect(
        "Runs",
        list(models),
        format_func=lambda k: models[k].label,
        key=key("runs"),
        max_selections=4,
    )
    named, stats = {}, []
    for run in picked:
        predictor = cache.predictor(models[run].path)
        decay = predictor.config.weight_decay
        label = f"{models[run].label} · weight decay {decay:g}"
        named[label] = w = regularization.weights(predictor)
        stats.append({"run": label, "weights": w.size, "std": w.std(), "‖w‖²": float(w @ w)})
    if not named:
        return
    edges, shares = regularization.histograms(named)
    lc.chart(lc.histogram_figure(edges, shares), "tr_fig_hist")
    st.dataframe(pd.DataFrame(stats), hide_index=True, width="stretch")
    st.caption(
        "Weight decay λ adds λ·w to every gradient (Adam, SGD: the gradient of an L2 penalty "
        "λ/2·‖w‖²; AdamW shrinks w by lr·λ directly), pulling weights toward 0: a narrower "
        "histogram, a smaller ‖w‖². Train one config with weight decay 0 and 1e-3 to see it."
    )
    st.page_link(
        "pages/train.py", label="Train with weight decay", icon=":material/model_training:"
    )


st.title("Losses, optimizers, regularization")
LINK.restore()
view = lw.pick_view(LINK)
with lw.timed("This view"):
    if view == VIEWS[0]:
        st.subheader("Binary: one logit per sample")
        binary_losses()
        st.subheader("Multiclass: one logit per class")
        multiclass_losses()
    elif view == VIEWS[1]:
        stability()
    elif view == VIEWS[2]:
        optimizer_walks()
    else:
        weight_decay()
LINK.publish()
