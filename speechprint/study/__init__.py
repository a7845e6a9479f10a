"""Optuna studies: a study file -> trials -> ``run(config)`` -> MLflow.

One module per reason to change:

| module | what |
| --- | --- |
| ``searched`` | the training space; which parameters a study's spaces sample (for checks) |
| ``spec`` | the study-file schema (strict: unknown keys are errors naming the key path), and
  every name in it resolved against the registries |
| ``space`` | Trial -> ``RunConfig``: models' spaces, the training space, ``space:`` overrides |
| ``storage`` | Optuna storage URLs (importable without torch, MLflow or scikit-learn) |
| ``recovery`` | trials of dead workers (the only user of Optuna's private API) |
| ``session`` | one invocation's lifecycle: checks, study, MLflow parent run, budget |
| ``objective`` | one trial: config -> run -> value, with one failure policy |
| ``runner`` | ``run_study``: the one entry point, serial or with workers |
| ``workers`` | processes for ``--workers N`` (spawn, stop, judge exits) and each one's ``run_worker`` |
| ``summary`` | one-line descriptions of trials and studies, for whoever prints them |

This package's ``__init__`` imports nothing, so ``speechprint.study.storage`` stays light.
"""
