"""Multi-scale cross-attention transformer for event classification (arXiv:2401.00452).

Sub-packages: ``generation`` (Pythia 8 + FastJet ntuples), ``nn`` (the network),
``preprocessing`` (jet alignment for weaver), ``evaluation`` (ROC, significance),
``interpret`` (attention maps, Grad-CAM).
"""

__version__ = "0.1.0"
