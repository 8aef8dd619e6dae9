"""Objectives that ship with ftx-core: what a run learns from.

Each module here is an objective plugin, registered through ftx-core's own entry point in the
``ftx.objectives`` group exactly like a third party's (the runner never imports one by name).
``supervised`` is next-token loss on the assistant turns of conversations, today's behaviour
and the default of ``ftx run``.
"""
