"""Functions the data configs use in ``new_variables``; pass this file to weaver with
``--custom-functions data/jet_functions.py``. They live in the package (``multiscale/jet_functions.py``)."""

from multiscale.jet_functions import *  # noqa: F401,F403
