"""The trainer: one trial of one case, trained to memorise its data, measured, and judged.

It knows nothing of Ray, Optuna or MLflow: :func:`~search.trainer.trial.run_trial` takes a case and a config and
returns a :class:`~search.trainer.trial.TrialResult` (outcome, symptoms with their evidence, the measured epochs'
history, a few samples). ``training`` holds the steps and the measurement, ``cadence`` says which epochs are
measured, ``metrics`` what a measured epoch records, ``symptoms`` one detector per failure, ``judge`` the verdict
on a history, ``check`` a case's one-step check before a sweep, ``optimizers`` the ``optimizer`` factor's values.
"""
