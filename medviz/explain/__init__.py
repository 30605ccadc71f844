"""Explanations you can trust: CAMs, saliency, feature maps, activation maximisation, deep dream.

One module per technique (as in tf-keras-vis and MONAI):

* :mod:`~medviz.explain.layers`: which layers can be explained.
* :mod:`~medviz.explain.engine`: :class:`Explainer`, the per-model cache of
  compiled TensorFlow functions every method runs on.
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

Importing this package imports TensorFlow; ``import medviz`` does not.
"""

from medviz.explain.activation_max import ActivationMaximization, Regularizers, activation_maximization
from medviz.explain.cams import (
    gradcam,
    gradcam_plus_plus,
    gradient_cams,
    layercam,
    reference_cam,
    scorecam,
)
from medviz.explain.deep_dream import DeepDream, deep_dream
from medviz.explain.engine import Explainer, clear_cache, get_explainer, normalize_maps
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
from medviz.explain.methods import (
    CAM_METHODS,
    METHODS,
    Explanation,
    MethodInfo,
    canonical_method,
    explain,
    method_options,
)
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
from medviz.explain.saliency import (
    integrated_gradients,
    occlusion_sensitivity,
    smoothgrad,
    vanilla_saliency,
)
from medviz.explain.trust import (
    Agreement,
    FaithfulnessCurves,
    LocalizationReport,
    SanityCheck,
    bootstrap_ci,
    cam_agreement,
    deletion_insertion,
    localization_score,
    pointing_game,
    randomized_copy,
    sanity_check,
    spearman,
    topk_iou,
)

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
    "LocalizationReport",
    "MethodInfo",
    "Regularizers",
    "SanityCheck",
    "activation_maximization",
    "bootstrap_ci",
    "cam_agreement",
    "canonical_method",
    "clear_cache",
    "colorbar",
    "colormap",
    "colormap_stops",
    "conv_layers",
    "deep_dream",
    "default_cam_layer",
    "deletion_insertion",
    "explain",
    "feature_grid",
    "feature_maps",
    "filter_kernels",
    "get_explainer",
    "gradcam",
    "gradcam_plus_plus",
    "gradient_cams",
    "integrated_gradients",
    "kernel_grid",
    "layer_names",
    "layercam",
    "localization_score",
    "method_options",
    "normalize_feature_maps",
    "normalize_maps",
    "occlusion_sensitivity",
    "overlay",
    "pointing_game",
    "randomized_copy",
    "reference_cam",
    "sanity_check",
    "save_png",
    "scorecam",
    "smoothgrad",
    "spearman",
    "strongest_maps",
    "tile",
    "to_rgb",
    "topk_iou",
    "vanilla_saliency",
]
