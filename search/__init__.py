"""HOW it runs: one trial (train to overfit, measure, detect symptoms), and the ``overfit`` CLI."""
