"""HOW it runs, in two rooms, and the ``overfit`` command line.

- :mod:`search.trainer`: one trial. The shared trainer trains a case's model under one config to memorise its
  data, measures it, names the symptoms of a failure and judges the end (fixed, or why not).
- :mod:`search.engine`: the sweep. The ablation plan and the Optuna search per case, collapse pruning, the Ray
  Tune trainable, MLflow recording and the live display, all run as one Tune experiment per ``overfit sweep``.
"""
