"""Comparisons made once, outside the benchmark suite, each run from the repository root:

- ``original_tf_model1``: the original TensorFlow package's model_1 demo rebuilt for timing (needs
  its own venv with TensorFlow); ``compare_original.sh`` times it alternately with ``matched``;
- ``ab_matched``: A/B timing of the matched training step across checkouts, environment settings
  or network options (e.g. ``cpu_kernels=False``);
- ``profile_step``: where a CPU training step's time goes, per ATen operator;
- ``merging_table``: what merging did to Les Houches runs of the generator (docs/generation.md).

docs/performance.md has the figures and the commands (docs/generation.md for ``merging_table``).
"""
