"""Test helpers for ftx and for plugin authors.

Opt in from a plugin's ``conftest.py``::

    pytest_plugins = ["ftx.testing.pytest_plugin"]

which provides the fixtures ``ftx_tiny_model``, ``ftx_tiny_base_model``, ``ftx_tiny_data``,
``ftx_cli`` and ``ftx_manager``; :func:`ftx.testing.conformance.check_plugin` runs the whole
conformance kit against an installed plugin, a method or an objective.
"""

from ftx.testing.tiny import make_tiny_model, write_tiny_dataset, write_tiny_preference_dataset

__all__ = ["make_tiny_model", "write_tiny_dataset", "write_tiny_preference_dataset"]
