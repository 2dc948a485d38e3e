"""Evaluation of trained classifiers on weaver prediction files (``tools/evaluate.py``,
``tools/compare_predictions.py``).

Modules, one job each:

* ``io``        read ``weaver --predict`` ROOT files, with one-line errors naming file and branch
* ``yields``    expected yields at a luminosity from the ``weight`` / ``xsec_fb`` / ``acceptance``
                observers; background MC statistics (sum, sqrt(sum w^2), N_eff)
* ``metrics``   weighted ROC, AUC, background rejection at fixed signal efficiency, best S/sqrt(B)
* ``likelihood``the binned HistFactory likelihood (pyhf's model), profiled exactly at any yield
* ``limits``    expected CLs upper limits and significance (asymptotic); score histograms with N_eff >= 10 per bin
* ``cutbased``  the classic cut-based reference analysis (soft-drop masses, b-tags, m_jj window), its
                optimisation per mass point and its expected limit
* ``summary``   per-training numbers, combined over repeated trainings of a model
* ``report``    ``metrics.json`` and the markdown table
* ``plotting``  ROC (rejection vs signal efficiency) and score distributions
* ``compare``   two prediction files of one sample compared event by event (``tools/compare_predictions.py``)
* ``cli``       the command lines of the evaluation tools

See ``docs/evaluation.md``.
"""

from .cutbased import CutBasedSelection
from .io import PredictionError, read_prediction, read_predictions
from .summary import evaluate_models

__all__ = ["CutBasedSelection", "PredictionError", "evaluate_models", "read_prediction", "read_predictions"]
