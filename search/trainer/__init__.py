"""The trainer: one trial of one case, trained to memorise its data, measured, and judged.

It knows nothing of Ray, Optuna or MLflow: :func:`run_trial` takes a case and a config and returns a
:class:`TrialResult` (outcome, symptoms with their evidence, per-epoch history). ``metrics`` says what an epoch
measures, ``symptoms`` holds one detector per failure, ``optimizers`` the ``optimizer`` factor's values.
"""
