"""Explanations you can trust: CAMs, saliency, feature maps, activation maximisation, deep dream.

One module per technique (as in tf-keras-vis and MONAI):

* :mod:`~medviz.explain.layers`: which layers can be explained.
* :mod:`~medviz.explain.engine`: :class:`Explainer`, the per-model cache of
  compiled TensorFlow functions every method runs on.
* :mod:`~medviz.explain.maps`: upsampling and ``[0, 1]`` normalisation, the
  steps every method ends with.
* :mod:`~medviz.explain.cams`: Grad-CAM, Grad-CAM++, LayerCAM, Score-CAM.
* :mod:`~medviz.explain.saliency`: saliency, SmoothGrad, integrated
  gradients, occlusion.
* :mod:`~medviz.explain.methods`: :data:`METHODS` and :func:`explain`.
* :mod:`~medviz.explain.features`: feature maps and first-layer kernels.
* :mod:`~medviz.explain.activation_max`, :mod:`~medviz.explain.deep_dream`.
* :mod:`~medviz.explain.overlay`: colour maps, overlays, legends (pure numpy).
* :mod:`~medviz.explain.trust`: sanity check, deletion/insertion,
  agreement, localisation.
* :mod:`~medviz.explain.commands`: the ``explain``, ``dream`` and
  ``localize`` command-line commands.

Names are imported lazily (PEP 562), so ``import medviz.explain.commands``
(the CLI's ``--help``) and :mod:`~medviz.explain.overlay` stay cheap;
the first access to a TensorFlow-backed name imports TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# These two functions share their module's name. They are bound eagerly
# (both modules are TensorFlow-free at import time): a lazily bound name would
# be shadowed by the submodule as soon as anything imported it.
from medviz.explain.deep_dream import DeepDream, deep_dream
from medviz.explain.overlay import (
    COLORMAPS,
    ColorLegend,
    colorbar,
    colormap,
    colormap_stops,
    overlay,
    save_png,
    to_rgb,
)

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ActivationMaximization": "medviz.explain.activation_max",
    "Agreement": "medviz.explain.trust",
    "CAM_METHODS": "medviz.explain.methods",
    "Explainer": "medviz.explain.engine",
    "Explanation": "medviz.explain.methods",
    "FaithfulnessCurves": "medviz.explain.trust",
    "FamilyAgreement": "medviz.explain.checks",
    "LocalizationBaseline": "medviz.explain.trust",
    "LocalizationReport": "medviz.explain.trust",
    "METHODS": "medviz.explain.methods",
    "MethodInfo": "medviz.explain.methods",
    "Regularizers": "medviz.explain.activation_max",
    "SanityCheck": "medviz.explain.trust",
    "TrustSummary": "medviz.explain.checks",
    "activation_maximization": "medviz.explain.activation_max",
    "bootstrap_ci": "medviz.metrics.bootstrap",
    "cam_agreement": "medviz.explain.trust",
    "canonical_method": "medviz.explain.methods",
    "check_heatmap": "medviz.explain.checks",
    "clear_cache": "medviz.explain.engine",
    "conv_layers": "medviz.explain.layers",
    "default_cam_layer": "medviz.explain.layers",
    "deletion_insertion": "medviz.explain.trust",
    "explain": "medviz.explain.methods",
    "family_agreement": "medviz.explain.checks",
    "feature_grid": "medviz.explain.features",
    "feature_maps": "medviz.explain.features",
    "filter_kernels": "medviz.explain.features",
    "foreground_mass": "medviz.explain.checks",
    "get_explainer": "medviz.explain.engine",
    "gradcam": "medviz.explain.cams",
    "gradcam_plus_plus": "medviz.explain.cams",
    "gradient_cams": "medviz.explain.cams",
    "integrated_gradients": "medviz.explain.saliency",
    "kernel_grid": "medviz.explain.features",
    "layer_names": "medviz.explain.layers",
    "layercam": "medviz.explain.cams",
    "localization_score": "medviz.explain.trust",
    "map_class_names": "medviz.explain.trust",
    "method_options": "medviz.explain.methods",
    "normalize_feature_maps": "medviz.explain.features",
    "normalize_maps": "medviz.explain.maps",
    "occlusion_sensitivity": "medviz.explain.saliency",
    "pointing_game": "medviz.explain.trust",
    "randomized_copy": "medviz.explain.trust",
    "sanity_check": "medviz.explain.trust",
    "scorecam": "medviz.explain.cams",
    "smoothgrad": "medviz.explain.saliency",
    "spearman": "medviz.explain.trust",
    "strongest_maps": "medviz.explain.features",
    "tile": "medviz.explain.features",
    "topk_iou": "medviz.explain.trust",
    "trust_summary": "medviz.explain.checks",
    "vanilla_saliency": "medviz.explain.saliency",
    "with_model_classes": "medviz.explain.trust",
}

if TYPE_CHECKING:  # pragma: no cover - static names for type checkers and IDEs
    from medviz.explain.activation_max import (
        ActivationMaximization,
        Regularizers,
        activation_maximization,
    )
    from medviz.explain.cams import (
        gradcam,
        gradcam_plus_plus,
        gradient_cams,
        layercam,
        scorecam,
    )
    from medviz.explain.checks import (
        FamilyAgreement,
        TrustSummary,
        check_heatmap,
        family_agreement,
        foreground_mass,
        trust_summary,
    )
    from medviz.explain.engine import Explainer, clear_cache, get_explainer
    from medviz.explain.features import (
        feature_grid,
        feature_maps,
        filter_kernels,
        kernel_grid,
        normalize_feature_maps,
        strongest_maps,
        tile,
    )
    from medviz.explain.layers import conv_layers, default_cam_layer, layer_names
    from medviz.explain.maps import normalize_maps
    from medviz.explain.methods import (
        CAM_METHODS,
        METHODS,
        Explanation,
        MethodInfo,
        canonical_method,
        explain,
        method_options,
    )
    from medviz.explain.saliency import (
        integrated_gradients,
        occlusion_sensitivity,
        smoothgrad,
        vanilla_saliency,
    )
    from medviz.explain.trust import (
        Agreement,
        FaithfulnessCurves,
        LocalizationBaseline,
        LocalizationReport,
        SanityCheck,
        cam_agreement,
        deletion_insertion,
        localization_score,
        map_class_names,
        pointing_game,
        randomized_copy,
        sanity_check,
        spearman,
        topk_iou,
        with_model_classes,
    )
    from medviz.metrics.bootstrap import bootstrap_ci

__all__ = [
    "CAM_METHODS",
    "COLORMAPS",
    "METHODS",
    "ActivationMaximization",
    "Agreement",
    "ColorLegend",
    "DeepDream",
    "Explainer",
    "Explanation",
    "FaithfulnessCurves",
    "FamilyAgreement",
    "LocalizationBaseline",
    "LocalizationReport",
    "MethodInfo",
    "Regularizers",
    "SanityCheck",
    "TrustSummary",
    "activation_maximization",
    "bootstrap_ci",
    "cam_agreement",
    "canonical_method",
    "check_heatmap",
    "clear_cache",
    "colorbar",
    "colormap",
    "colormap_stops",
    "conv_layers",
    "deep_dream",
    "default_cam_layer",
    "deletion_insertion",
    "explain",
    "family_agreement",
    "feature_grid",
    "feature_maps",
    "filter_kernels",
    "foreground_mass",
    "get_explainer",
    "gradcam",
    "gradcam_plus_plus",
    "gradient_cams",
    "integrated_gradients",
    "kernel_grid",
    "layer_names",
    "layercam",
    "localization_score",
    "map_class_names",
    "method_options",
    "normalize_feature_maps",
    "normalize_maps",
    "occlusion_sensitivity",
    "overlay",
    "pointing_game",
    "randomized_copy",
    "sanity_check",
    "save_png",
    "scorecam",
    "smoothgrad",
    "spearman",
    "strongest_maps",
    "tile",
    "to_rgb",
    "topk_iou",
    "trust_summary",
    "vanilla_saliency",
    "with_model_classes",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'medviz.explain' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
