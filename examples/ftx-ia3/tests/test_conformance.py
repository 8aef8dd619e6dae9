"""ftx's conformance kit on the ia3 plugin, at the plugin's own learning rate."""

from __future__ import annotations

from ftx.testing.conformance import check_plugin


def test_conformance(tmp_path):
    # hook: select_trainable (IA3 vectors only), hook: export (adapter/ + merged model/)
    report = check_plugin("ia3", tmp_path, learning_rate=None)
    assert report.hooks_answered["select_trainable"] == "ia3"
    assert report.hooks_answered["export"] == "ia3"
    # One vector per targeted layer: a tiny fraction of the model trains.
    assert 0 < report.trainable_params < report.total_params / 50
    # The kit's export check compared base + adapter/ with the merged model/ (same logits).
    assert "adapter" in report.artifacts and "export" in report.passed
