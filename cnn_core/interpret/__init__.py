"""Interpretation: feature maps, filters, Captum attributions and their faithfulness.

``features`` shows what the layers compute, ``attributions`` which pixels mattered for a
class (``METHODS`` lists the Captum methods), ``faithfulness`` checks an attribution map
with the deletion test. Nothing here imports a UI or plotting library.
"""

from .attributions import (
    METHODS,
    Attribution,
    Method,
    attribute,
    attribution_method,
    gradcam_layer,
)
from .common import ClassScores
from .faithfulness import deletion_auc, deletion_curve
from .features import channel_order, feature_maps, filters, pick_channels, shape_flow

__all__ = [
    "METHODS",
    "Attribution",
    "ClassScores",
    "Method",
    "attribute",
    "channel_order",
    "deletion_auc",
    "deletion_curve",
    "feature_maps",
    "filters",
    "gradcam_layer",
    "attribution_method",
    "pick_channels",
    "shape_flow",
]
