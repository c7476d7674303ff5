"""Sweeps over seeds and hyperparameters (``lab sweep``), their aggregate statistics (``lab report``)
and hyperparameter search with Optuna (``lab tune``). Every trial is an ordinary run directory made by
:func:`lab.train.train`; see docs/sweeps.md."""
