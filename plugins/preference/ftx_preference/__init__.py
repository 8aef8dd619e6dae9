"""ftx-preference: preference-tuning objectives for ftx — DPO, ORPO, SimPO and KTO through TRL.

Each objective is an entry point in group ``ftx.objectives`` (``ftx run --objective dpo``) and
runs under any method (``--plugin fft|sft|qlora|ia3|…``): the method decides what trains, the
objective which rows, which TRL trainer, the reference policy and the held-out metric. The four
share one module, :mod:`ftx_preference.shared`; each objective's module only states its
:class:`~ftx_preference.shared.Recipe`. Importing any of them imports no torch.
"""
