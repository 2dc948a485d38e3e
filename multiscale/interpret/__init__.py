"""Interpretability of the multi-scale transformer: attention maps and Grad-CAM.

- ``data``: events read through weaver's own pipeline (identical preprocessing), split by label;
- ``layout``: which token of a stream goes to which labelled row/column of a map;
- ``attention``: self- and cross-attention maps averaged over events (padding-aware);
- ``gradcam``: Grad-CAM of the class score on a stream's self-attention block, per constituent,
  projected into the aligned (eta, phi) plane;
- ``plots``: the figures; ``cli``: ``tools/attention_maps.py`` and ``tools/gradcam.py``.

See docs/interpretability.md.
"""
