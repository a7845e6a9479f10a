"""What a study or experiment file may name, checkable without the heavy libraries.

A model is two things: its *declaration* (name, the feature kinds it takes, its family, the
parameters its builder takes and its search space), which is data, and its *implementation* (a
torch module or a scikit-learn estimator), which imports torch or scikit-learn. The declarations
live here, so checking a study or experiment file (every name, parameter, pair and ``space:``
override) costs no torch, MLflow or scikit-learn import; ``speechprint.models`` implements each
declared model (``@implements(name)``) and builds them. Feature extractors need no split: their
modules import their heavy libraries only when they run.
"""
