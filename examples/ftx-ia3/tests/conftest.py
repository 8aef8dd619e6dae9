"""Enable ftx's pytest plugin: fixtures ftx_tiny_model, ftx_tiny_data, ftx_cli, ftx_manager."""

pytest_plugins = ["ftx.testing.pytest_plugin"]
