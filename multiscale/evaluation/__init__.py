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

import importlib

_EXPORTS = {"CutBasedSelection": "cutbased", "PredictionError": "io", "read_prediction": "io",
            "read_predictions": "io", "evaluate_models": "summary"}
__all__ = list(_EXPORTS)


def __getattr__(name):
    """The package's names, imported when first asked for: the generator and the truth tagging import
    ``evaluation.yields`` alone, and each of their processes would otherwise load scipy, scikit-learn and
    pyhf for nothing (1.2 s a process)."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS])
