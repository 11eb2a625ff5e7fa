"""The sweep engine: every case's ablation and Optuna search as one Ray Tune experiment, recorded in MLflow.

``plan`` lists a case's ablation, ``searcher`` hands out the plan and asks each case's Optuna study for the
search's trials, ``pruning`` stops the trials that collapse, ``trainable`` runs a trial inside Ray, ``recording``
and ``tracking`` write every trial to MLflow from the driver, ``progress`` is the live display and ``sweep`` ties
them together for ``overfit sweep``. Modules import Ray lazily where they can: importing this package is cheap.
"""
