"""Functions the data configs use in ``new_variables``; pass this file to weaver with
``--custom-functions data/jet_functions.py``. weaver registers every plain function in this
module's namespace, so import only what the YAMLs call."""

from multiscale.preprocessing import (  # noqa: F401
    aligned_eta, aligned_phi, concat_jets, fill_like, mass_hypothesis, safe_log, wrap_phi,
)
