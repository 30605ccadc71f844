"""Concept tests: Testing with Concept Activation Vectors (TCAV, Kim et al., ICML 2018).

A user names a concept by example images ("bright specks", "dense tissue") and
asks whether a class of the model is sensitive to it. For each chosen layer:

1. The layer's activations of the concept images and of a set of random
   images are flattened, and a linear classifier (logistic regression) is
   fitted to tell them apart. The unit normal of its decision boundary,
   pointing towards the concept, is the **concept activation vector** (CAV).
2. For every image of the class, the gradient of the class score with respect
   to the layer's activations is taken (the *pre*-softmax/sigmoid logit, as
   every explanation in :mod:`medviz.explain.engine` uses; a saturated
   probability has no gradient). Its dot product with the CAV is the
   directional derivative: positive means "more of the concept, more of this
   class".
3. The **TCAV score** is the fraction of class images with a positive
   directional derivative.
4. **Significance**: steps 1–3 are repeated against ``runs`` different random
   counterpart sets, and the same is done for ``runs`` random "concepts" (fixed
   sets of random images, each against the same counterparts). A random concept
   is a fixed set just like the user's, so the baseline is each random
   concept's *mean* score: a two-sided t-test asks whether the concept's mean
   score is a plausible draw from those means (a prediction t-test, ``runs - 1``
   degrees of freedom). Comparing with per-run scores of ever new random pairs,
   as a plain reading of the paper suggests, called fixed random sets
   significant (on a tiny model: p = 0.011 for a set of pure noise). The
   concept counts as significant at a layer when the p-value is below
   ``alpha`` divided by the number of layers tested (Bonferroni).

The class gradients do not depend on the CAV, so they are computed once per
layer; each CAV costs one small logistic regression, fitted in the span of its
examples (``runs * (runs + 1)`` of them per layer).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from medviz.errors import MedvizError

if TYPE_CHECKING:  # pragma: no cover
    from medviz.explain import Explainer

TCAV_LIMITS = (
    "Each bar is the fraction of the class's images whose score rises when the layer's "
    "activations move towards the concept, next to the same number for random 'concepts'; a "
    "star marks a layer where the concept differs significantly from random. It tests only the "
    "concept your examples define at that layer (their size, contrast or any other shared trait "
    "included) and shows sensitivity, not that the model needs the concept or where in the image "
    "it finds it."
)
"""Two sentences on what the TCAV view shows and what it cannot show."""

MIN_EXAMPLES = 4
"""Fewest concept and random images a CAV is learnt from."""

ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class LayerTcav:
    """The TCAV test of one concept for one class at one layer.

    Attributes:
        layer: Layer name.
        scores: ``(runs,)`` TCAV scores of the concept, one per random set.
        random_scores: ``(runs,)`` mean TCAV score of each random concept (a fixed
            random set, against the same counterparts as the concept).
        cav_accuracy: Mean held-out accuracy of the concept-vs-random classifiers
            (near 0.5: the layer cannot tell the concept from random images).
        p_value: Two-sided prediction t-test of the mean of ``scores`` against
            ``random_scores`` (``nan`` when all are equal).
        significant: ``p_value`` below the Bonferroni-corrected level.
    """

    layer: str
    scores: np.ndarray
    random_scores: np.ndarray
    cav_accuracy: float
    p_value: float
    significant: bool

    @property
    def score_mean(self) -> float:
        """Mean TCAV score of the concept."""
        return float(np.mean(self.scores))

    @property
    def score_std(self) -> float:
        """Standard deviation of the concept's TCAV scores over random sets."""
        return float(np.std(self.scores))

    @property
    def random_mean(self) -> float:
        """Mean TCAV score of random concepts (the baseline)."""
        return float(np.mean(self.random_scores))

    @property
    def random_std(self) -> float:
        """Standard deviation of the random concepts' scores."""
        return float(np.std(self.random_scores))


@dataclass(frozen=True)
class TcavResult:
    """A concept tested for one class at several layers.

    Attributes:
        concept: Concept name.
        class_name: The class tested.
        class_index: Its index in the model's classes.
        layers: One :class:`LayerTcav` per layer, in the order asked.
        n_concept: Concept images used.
        n_random: Images in the random pool.
        n_class: Class images whose derivatives were measured.
        runs: Random sets per layer.
        alpha: Significance level before the Bonferroni correction.
        seconds: Wall time.
    """

    concept: str
    class_name: str
    class_index: int
    layers: tuple[LayerTcav, ...]
    n_concept: int
    n_random: int
    n_class: int
    runs: int
    alpha: float
    seconds: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (``medviz tcav --json``)."""
        return {
            "concept": self.concept,
            "class": self.class_name,
            "class_index": self.class_index,
            "n_concept": self.n_concept,
            "n_random": self.n_random,
            "n_class": self.n_class,
            "runs": self.runs,
            "alpha": self.alpha,
            "corrected_alpha": self.alpha / max(len(self.layers), 1),
            "seconds": round(self.seconds, 3),
            "limits": TCAV_LIMITS,
            "layers": [
                {
                    "layer": r.layer,
                    "score_mean": r.score_mean,
                    "score_std": r.score_std,
                    "random_mean": r.random_mean,
                    "random_std": r.random_std,
                    "cav_accuracy": r.cav_accuracy,
                    "p_value": r.p_value,
                    "significant": r.significant,
                    "scores": r.scores.tolist(),
                    "random_scores": r.random_scores.tolist(),
                }
                for r in self.layers
            ],
        }


def default_tcav_layers(model, *, n_stages: int = 3) -> list[str]:
    """The end of each of the last ``n_stages`` conv stages (chosen by output shape).

    Args:
        model: A flat Keras image classifier.
        n_stages: How many of the deepest spatial resolutions to take.

    Returns:
        Layer names, shallow to deep.
    """
    from medviz.ood.features import PENULTIMATE, feature_layers

    return [name for name in feature_layers(model, n_stages=n_stages) if name != PENULTIMATE]


def learn_cav(
    concept: np.ndarray, random: np.ndarray, *, seed: int = 0, held_out: bool = True
) -> tuple[np.ndarray, float]:
    """The concept activation vector separating ``concept`` from ``random`` activations.

    Args:
        concept: ``(n_c, D)`` flattened layer activations of the concept images.
        random: ``(n_r, D)`` activations of random images.
        seed: Seed of the held-out split.
        held_out: Also measure the classifier on a held-out quarter (one more fit);
            without it the accuracy is ``nan``.

    Returns:
        ``(cav (D,) float64 of unit length pointing towards the concept, held-out
        accuracy of the classifier)``.

    Raises:
        ValueError: Fewer than :data:`MIN_EXAMPLES` rows on either side, or
            different feature lengths.
    """
    from sklearn.linear_model import LogisticRegression

    concept = np.asarray(concept, dtype=np.float64)
    random = np.asarray(random, dtype=np.float64)
    if min(len(concept), len(random)) < MIN_EXAMPLES:
        raise ValueError(
            f"a CAV needs at least {MIN_EXAMPLES} concept and {MIN_EXAMPLES} random examples, "
            f"got {len(concept)} and {len(random)}"
        )
    if concept.shape[1:] != random.shape[1:]:
        raise ValueError(
            f"concept and random activations differ in shape: {concept.shape} vs {random.shape}"
        )
    x = np.concatenate([concept, random])
    y = np.concatenate([np.ones(len(concept)), np.zeros(len(random))])
    # Activations of different layers differ in scale by orders of magnitude; one global
    # scale keeps the regularisation comparable without changing the direction per unit.
    scale = max(float(np.abs(x).max()), 1e-8)
    x = x / scale
    rng = np.random.default_rng(seed)
    held = np.zeros(len(x), bool)
    for side in (np.flatnonzero(y == 1), np.flatnonzero(y == 0)):
        held[rng.choice(side, size=max(1, len(side) // 4), replace=False)] = True

    def fit(rows: np.ndarray) -> tuple[np.ndarray, float]:
        # With far fewer examples than units (a conv layer has thousands), the L2-penalised
        # optimum lies in the span of the examples (representer theorem): fit in the
        # coordinates of that span (an orthonormal basis from the SVD) and map back. Same
        # answer, but L-BFGS works on ~n instead of D dimensions (seconds → milliseconds).
        _, _, basis = np.linalg.svd(x[rows], full_matrices=False)  # (r, D), orthonormal rows
        model = LogisticRegression(C=1.0, max_iter=2000).fit(x[rows] @ basis.T, y[rows])
        return basis.T @ model.coef_[0], float(model.intercept_[0])

    accuracy = float("nan")
    if held_out:
        weights, bias = fit(~held)
        accuracy = float(np.mean(((x[held] @ weights + bias) > 0) == (y[held] == 1)))
    normal, _ = fit(np.ones(len(x), bool))
    return normal / max(float(np.linalg.norm(normal)), 1e-12), accuracy


def prediction_p_value(value: float, null: np.ndarray) -> float:
    """Two-sided p-value that ``value`` is a draw from the distribution of ``null``.

    A t-test of one new observation against a sample (prediction interval):
    ``t = (value - mean) / (sd * sqrt(1 + 1/n))`` with ``n - 1`` degrees of freedom.

    Args:
        value: The concept's mean TCAV score.
        null: ``(n,)`` mean TCAV scores of random concepts, ``n >= 2``.

    Returns:
        The p-value; ``nan`` when ``null`` is constant and equals ``value``, ``0`` when
        it is constant and differs.
    """
    null = np.asarray(null, dtype=np.float64)
    n = len(null)
    sd = float(np.std(null, ddof=1))
    if sd == 0.0:
        return float("nan") if value == float(null.mean()) else 0.0
    t = (value - float(null.mean())) / (sd * math.sqrt(1.0 + 1.0 / n))
    try:
        from scipy import stats
    except ImportError:  # pragma: no cover - scipy is a runtime dependency
        return float(math.erfc(abs(t) / math.sqrt(2.0)))  # normal approximation
    return float(2.0 * stats.t.sf(abs(t), df=n - 1))


def _activations(explainer: Explainer, images: np.ndarray, layer: str) -> np.ndarray:
    x = explainer.prepare_batch(images)
    return explainer.features(x, layer=layer).reshape(len(x), -1)


def _class_gradients(
    explainer: Explainer, images: np.ndarray, class_index: int, layer: str, batch_size: int
) -> np.ndarray:
    """``(n, D)`` gradients of the class logit with respect to the flattened layer output."""
    x = explainer.prepare_batch(images)
    parts = []
    for start in range(0, len(x), batch_size):
        chunk = x[start : start + batch_size]
        classes = np.full(len(chunk), class_index, np.int32)
        _, _, _, grads, _ = explainer.layer_gradients(chunk, classes, layer=layer)
        parts.append(np.asarray(grads, dtype=np.float64).reshape(len(chunk), -1))
    return np.concatenate(parts)


def run_tcav(
    explainer: Explainer,
    concept_images: np.ndarray,
    random_images: np.ndarray,
    class_images: np.ndarray,
    *,
    class_index: int,
    layers: Sequence[str],
    concept: str = "concept",
    class_name: str | None = None,
    runs: int = 10,
    alpha: float = 0.05,
    seed: int = 0,
    batch_size: int = 32,
    on_progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TcavResult:
    """TCAV scores of a concept for one class at each layer, with their significance.

    Args:
        explainer: The model's :class:`~medviz.explain.Explainer`.
        concept_images: ``(n_c, S, S, C)`` model inputs in ``[0, 255]`` that show the concept.
        random_images: ``(n_r, S, S, C)`` random model inputs (the pool random sets are
            drawn from; ideally ``n_r >= 2 * n_c``).
        class_images: ``(n, S, S, C)`` images of the class tested.
        class_index: The class tested (an index into the model's classes).
        layers: Layers to test (names of the model's layers).
        concept: Name of the concept for people.
        class_name: Name of the class for people (default: ``"class <index>"``).
        runs: Random sets per layer (the paper uses tens to hundreds).
        alpha: Significance level; corrected for the number of layers.
        seed: Seed of the random sets.
        batch_size: Images per gradient pass.
        on_progress: Called with ``(done, total, message)`` after each layer step.
        should_stop: Polled between steps; returning ``True`` raises
            :class:`~medviz.errors.MedvizError` ("stopped").

    Returns:
        The :class:`TcavResult`.

    Raises:
        ValueError: ``runs < 2``, no layers, or ``alpha`` outside ``(0, 1)``.
        MedvizError: Too few concept, random or class images, a bad class
            index, an unknown layer, or stopped.
    """
    from medviz.explain.layers import get_layer

    if runs < 2:
        raise ValueError(f"runs must be at least 2 (a t-test needs spread), got {runs}")
    if not layers:
        raise ValueError("give at least one layer to test")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n_c, n_r, n_class = len(concept_images), len(random_images), len(class_images)
    if n_c < MIN_EXAMPLES:
        raise MedvizError(
            f"the concept {concept!r} has {n_c} image(s); give at least {MIN_EXAMPLES}"
        )
    if n_r < 2 * MIN_EXAMPLES:
        raise MedvizError(
            f"the random pool has {n_r} image(s); give at least {2 * MIN_EXAMPLES} (random "
            "concepts are learnt between two disjoint random sets)"
        )
    if n_class < 1:
        raise MedvizError("no images of the class to test")
    explainer.check_class(class_index)
    for layer in layers:
        get_layer(explainer.model, layer)  # a clear error naming the model's layers
    started = time.perf_counter()
    # Random sets as large as the concept set, but two must fit the pool disjointly.
    # Small dense algebra (hundreds of tiny SVDs and fits): many BLAS threads only fight
    # each other; on a busy 2-core machine one 75×150 SVD took a second instead of 1 ms.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _run_layers(
            explainer, concept_images, random_images, class_images, class_index=class_index,
            layers=layers, concept=concept, class_name=class_name, runs=runs, alpha=alpha,
            seed=seed, batch_size=batch_size, on_progress=on_progress, should_stop=should_stop,
            started=started,
        )  # fmt: skip


def _run_layers(
    explainer, concept_images, random_images, class_images, *, class_index, layers, concept,
    class_name, runs, alpha, seed, batch_size, on_progress, should_stop, started,
) -> TcavResult:  # fmt: skip
    """The body of :func:`run_tcav` once its inputs are checked."""
    n_c, n_r, n_class = len(concept_images), len(random_images), len(class_images)
    set_size = max(MIN_EXAMPLES, min(n_c, n_r // 2))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(runs):
        order = rng.permutation(n_r)
        draws.append((order[:set_size], order[set_size : 2 * set_size]))
    total = len(layers) * (runs + 1)
    done = 0
    corrected = alpha / len(layers)
    results = []
    for layer in layers:
        if should_stop is not None and should_stop():
            raise MedvizError("the concept test was stopped")
        concept_acts = _activations(explainer, concept_images, layer)
        random_acts = _activations(explainer, random_images, layer)
        grads = _class_gradients(explainer, class_images, class_index, layer, batch_size)
        # Every CAV of this layer lies in the span of the concept and random activations
        # (see learn_cav), so all of them are fitted in the coordinates of that span, found
        # once: n_c + n_r numbers per image instead of h * w * c (e.g. 150 instead of 32,768).
        # Rotations keep dot products, so the gradients are projected the same way.
        # The basis comes from the eigenvectors of the small Gram matrix (matrix products only):
        # an SVD of the wide activation matrix took seconds per layer on a busy 2-core CPU.
        stacked = np.concatenate([concept_acts, random_acts]).astype(np.float64)
        eigenvalues, vectors = np.linalg.eigh(stacked @ stacked.T)
        keep = eigenvalues > max(float(eigenvalues.max()), 1e-30) * 1e-10
        vectors, lengths = vectors[:, keep], np.sqrt(eigenvalues[keep])
        coords = vectors * lengths  # each image in the orthonormal basis of the span
        concept_acts, random_acts = coords[:n_c], coords[n_c:]
        grads = (grads @ stacked.T) @ vectors / lengths
        done += 1
        if on_progress is not None:
            on_progress(done, total, f"{layer}: activations and class gradients")
        scores, accuracies = [], []
        null = np.zeros((runs, runs))  # [random concept j, counterpart set i]
        for run, (counter, _) in enumerate(draws):
            if should_stop is not None and should_stop():
                raise MedvizError("the concept test was stopped")
            cav, accuracy = learn_cav(concept_acts, random_acts[counter], seed=seed + run)
            scores.append(float(np.mean(grads @ cav > 0)))
            accuracies.append(accuracy)
            for j, (_, fixed) in enumerate(draws):
                # Random concept j is the fixed set ``fixed``, less any images it shares
                # with this counterpart (draw i's own second set never overlaps it).
                picked = np.setdiff1d(fixed, counter)
                if len(picked) < MIN_EXAMPLES:
                    picked = draws[run][1]
                random_cav, _ = learn_cav(
                    random_acts[picked], random_acts[counter], seed=seed + run, held_out=False
                )
                null[j, run] = float(np.mean(grads @ random_cav > 0))
            done += 1
            if on_progress is not None:
                on_progress(done, total, f"{layer}: random set {run + 1}/{runs}")
        # A random "concept" is a fixed set of images just like the concept, so the baseline
        # is the mean score of each fixed random set over the same counterparts: comparing
        # with per-run scores of ever new random pairs would call most fixed sets significant.
        random_scores = null.mean(axis=1)
        p = prediction_p_value(float(np.mean(scores)), random_scores)
        results.append(
            LayerTcav(
                layer=layer,
                scores=np.array(scores),
                random_scores=random_scores,
                cav_accuracy=float(np.mean(accuracies)),
                p_value=p,
                significant=bool(not math.isnan(p) and p < corrected),
            )
        )
    return TcavResult(
        concept=concept,
        class_name=class_name or f"class {class_index}",
        class_index=int(class_index),
        layers=tuple(results),
        n_concept=n_c,
        n_random=n_r,
        n_class=n_class,
        runs=runs,
        alpha=alpha,
        seconds=time.perf_counter() - started,
    )
