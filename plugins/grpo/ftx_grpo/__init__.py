"""ftx-grpo: the ``grpo`` objective (Group Relative Policy Optimization: reinforcement learning
from rewards a program checks) through TRL's ``GRPOTrainer``, on any ftx method, and the
rewards that come with it (entry points in group ``ftx.rewards``).

``ftx_grpo.objective`` is the objective's entry point (its hooks), ``ftx_grpo.rewards`` the
built-in rewards, ``ftx_grpo.trainer`` the trainer (imported at run time only: it imports TRL).
Importing ``ftx_grpo``, its objective or its rewards imports no torch.
"""
