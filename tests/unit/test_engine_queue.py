"""The controller's queue of deferred engine calls (services' defer and flush)."""

import stat

from ansible_collections.gymfleet.cluster.plugins.action import services


def test_the_queue_keeps_calls_in_order_for_this_user_alone_and_empties_when_taken(monkeypatch, tmp_path):
    monkeypatch.setattr(services.C, "DEFAULT_LOCAL_TMP", str(tmp_path))
    first, second = services.EngineQueue("node1"), services.EngineQueue("node2")
    assert first.take() == []
    first.append({"component": "firewall", "layout": {"secret_files": [{"content": "token"}]}})
    first.append({"component": "redis"})
    second.append({"component": "openenv"})
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.path.parent.stat().st_mode) == 0o700
    assert [c["component"] for c in first.take()] == ["firewall", "redis"]
    assert first.take() == [] and not first.path.exists()
    assert [c["component"] for c in second.take()] == ["openenv"]
