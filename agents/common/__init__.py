"""What every algorithm shares, as stable-baselines3's ``common`` package holds it: the agent API
(``base``: construction, ``learn``, ``predict``, checkpoints), errors, the checkpoint file, random
streams and schedules; for the neural agents the actor-critic policies, a numpy forward pass for
acting, the replay buffer, vector-env collection and the on-policy loop. Each algorithm is one
module (``agents/ppo.py``, ``a2c.py``, ``reinforce.py``) or folder (``agents/dqn/``,
``agents/tabular/``) on top of it."""
