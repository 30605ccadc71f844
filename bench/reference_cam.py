"""Grad-CAM, Grad-CAM++, LayerCAM and Score-CAM through tf-keras-vis: the reference implementation.

MedViz computes these maps on the compiled primitives of an
:class:`~medviz.explain.Explainer` (:mod:`medviz.explain.cams`). This module
keeps the straightforward tf-keras-vis 0.8.7 route, outside the library, for
two uses: the tests cross-check the compiled maps against it
(``tests/explain/test_explain_methods.py``), and the benchmarks time it as the
"naive" way (:mod:`bench.latency`, :mod:`bench.explanations_readme`). It needs
the ``tf-keras-vis`` package (a test/bench requirement, not a runtime one).
"""

from __future__ import annotations

import numpy as np

from medviz.errors import ModelError
from medviz.explain import Explainer
from medviz.explain.layers import resolve_cam_layer


def _output_layer(model):
    """The layer producing ``model``'s first output (its last layer when Keras does not say)."""
    import keras

    history = getattr(model.outputs[0], "_keras_history", None)
    layer = getattr(history, "operation", None) if history is not None else None
    return layer if isinstance(layer, keras.layers.Layer) else model.layers[-1]


class ReferenceCam:
    """tf-keras-vis CAM objects for one model and method, built once and reused.

    Building is the slow part of tf-keras-vis (it clones the model and applies
    the modifier); a careful notebook user builds once and calls many times.
    :func:`reference_cam` builds a new one per call (the naive way); the latency
    benchmark races both against MedViz's compiled path.

    Args:
        model: A ``keras.Model``.
        method: ``"gradcam"``, ``"gradcam++"``, ``"layercam"`` or ``"scorecam"``.
        layer: 4-D layer (default: :func:`medviz.explain.layers.default_cam_layer`).

    Raises:
        ModelError: ``method`` is not one of those four.
    """

    def __init__(self, model, *, method: str = "gradcam", layer: str | None = None) -> None:
        import keras
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.layercam import Layercam
        from tf_keras_vis.scorecam import Scorecam

        classes = {
            "gradcam": Gradcam,
            "gradcam++": GradcamPlusPlus,
            "layercam": Layercam,
            "scorecam": Scorecam,
        }
        if method not in classes:
            raise ModelError(
                f"reference_cam supports gradcam, gradcam++, layercam, scorecam; got {method!r}"
            )
        self.model = model
        self.method = method
        self.explainer = Explainer(model)
        self.layer = resolve_cam_layer(model, layer)
        explainer = self.explainer

        def to_linear(clone: keras.Model) -> keras.Model | None:
            last = _output_layer(clone)
            z = clone.outputs[0]
            if isinstance(last, (keras.layers.Activation, keras.layers.Softmax)):
                z = last.input  # a separate activation layer: its input holds the logits
            elif explainer.head in ("softmax", "sigmoid"):
                last.activation = keras.activations.linear
            if explainer.binary:
                # Softmax of [-z/2, z/2] is [1 - sigmoid(z), sigmoid(z)], and the
                # class-0 logit -z/2 has the gradient direction of the score -z.
                z = keras.ops.concatenate([z * -0.5, z * 0.5], axis=-1)
            return keras.Model(clone.inputs, z) if z is not clone.outputs[0] else None

        self._vis = classes[method](model, model_modifier=to_linear, clone=True)

    def __call__(
        self,
        image: np.ndarray,
        *,
        class_index: int | None = None,
        max_n: int | None = None,
        expand: bool = True,
        normalize: bool = True,
    ) -> np.ndarray:
        """The map of ``image``; arguments as in :func:`reference_cam`.

        Returns:
            ``(H, W)`` float32 map in ``[0, 1]`` (layer resolution if not ``expand``).
        """
        explainer, model = self.explainer, self.model
        x = explainer.prepare(image)
        cls = explainer.check_class(class_index)
        if cls < 0:
            out = np.asarray(model(x, training=False))[0]
            cut = 0.5 if explainer.head == "sigmoid" else 0.0  # probability or logit
            cls = int(out[0] > cut) if explainer.binary else int(np.argmax(out))
        options = {"max_N": max_n} if self.method == "scorecam" else {}
        cam = self._vis(
            lambda out: out[:, cls],
            x,
            penultimate_layer=self.layer,
            seek_penultimate_conv_layer=False,
            expand_cam=expand,
            normalize_cam=normalize,
            **options,
        )
        return np.asarray(cam, dtype=np.float32)[0]


def reference_cam(
    model,
    image: np.ndarray,
    *,
    method: str = "gradcam",
    class_index: int | None = None,
    layer: str | None = None,
    max_n: int | None = None,
    expand: bool = True,
    normalize: bool = True,
) -> np.ndarray:
    """The same CAMs through tf-keras-vis, rebuilding its objects on every call.

    This is the straightforward way of using tf-keras-vis 0.8.7 with Keras 3,
    with its traps handled: ``ReplaceToLinear`` fails (``output_names``) and
    its conv-layer search fails, so a model modifier that swaps the last
    activation to linear on tf-keras-vis's clone is passed, together with
    ``penultimate_layer`` and ``seek_penultimate_conv_layer=False``; a
    single-sigmoid head is explained through a two-logit view ``[0, z]``
    whose softmax is ``[1 - p, p]``. It is used to cross-check the compiled
    implementations and as the "naive" baseline of the speed benchmark
    (:class:`ReferenceCam` is the reused-instance baseline).

    Args:
        model: A ``keras.Model``.
        image: ``(H, W, C)`` or ``(1, H, W, C)`` raw pixels in ``[0, 255]``.
        method: ``"gradcam"``, ``"gradcam++"``, ``"layercam"`` or ``"scorecam"``.
        class_index: Class to explain (default: the predicted class).
        layer: 4-D layer (default: :func:`medviz.explain.layers.default_cam_layer`).
        max_n: Faster Score-CAM channel count.
        expand: Upsample to the input size (tf-keras-vis uses ``scipy.ndimage.zoom``).
        normalize: Scale to ``[0, 1]`` (tf-keras-vis ``normalize_cam``). Raw
            values of a single-sigmoid model are half of those of
            :func:`medviz.explain.cams.gradient_cams`, because its two-logit
            view is ``[-z/2, z/2]``.

    Returns:
        ``(H, W)`` float32 map in ``[0, 1]`` (layer resolution if not ``expand``).
    """
    # Deliberately not cached and nothing compiled: this is the naive path.
    cam = ReferenceCam(model, method=method, layer=layer)
    return cam(image, class_index=class_index, max_n=max_n, expand=expand, normalize=normalize)
