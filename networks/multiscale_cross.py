"""weaver network config for the multi-scale cross-attention transformer (arXiv:2401.00452).

    weaver --data-config data/jets_kin.yaml --network-config networks/multiscale_cross.py \
           --custom-functions data/jet_functions.py -o fusion "'cross'" ...

The network lives in the package (``multiscale/network.py``); options (``-o NAME VALUE``): preset
(``python -m multiscale.definitions presets`` lists them, the default first), seed, every field of
``multiscale.nn.NetworkConfig`` (fusion, jet_dim, jet_heads, jet_layers, obj_dim, obj_heads, obj_layers,
cross_layers, mlp_dims, dropout, pair_bias, jet_max_tokens, jet_max_features, obj_max_features,
cpu_kernels, ...), and batched_loader
(weaver's own training and evaluation loops fed whole batches instead of event by event; False:
weaver's per-event loader).
"""

from multiscale.network import get_evaluate_fn, get_loss, get_model, get_train_fn  # noqa: F401
