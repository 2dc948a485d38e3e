"""The functions the data configs call in ``new_variables``. weaver registers every plain function
of the module given to ``--custom-functions`` (``data/jet_functions.py`` re-exports this one), so
import only what the YAMLs call."""

from multiscale.kinematics import wrap_phi  # noqa: F401
from multiscale.preprocessing import (  # noqa: F401
    aligned_eta, aligned_phi, concat_jets, fill_like, mass_hypothesis, safe_log,
)
