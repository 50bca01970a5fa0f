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


class Recorder:
    """Stands in for Ansible's module execution: the module arguments each run got, and a result per call."""

    def __init__(self):
        self.runs = []

    def __call__(self, module_name, task_vars, module_args):
        self.runs.append(module_args)
        calls = module_args.get("calls")
        if calls is None:
            return {"changed": False, "services": [module_args["component"]]}
        results = [{"component": c["component"], "changed": c["component"] == "redis", "services": [c["component"]]}
                   for c in calls]
        return {"changed": any(r["changed"] for r in results), "results": results}


def action(monkeypatch, args):
    from types import SimpleNamespace

    from ansible.plugins.action import ActionBase

    monkeypatch.setattr(ActionBase, "run", lambda self, tmp=None, task_vars=None: {})
    plugin = object.__new__(services.ActionModule)
    plugin._task = SimpleNamespace(args=args)
    plugin._execute_module = Recorder()
    return plugin


def test_deferred_calls_wait_for_the_hosts_next_call_which_carries_them_first(monkeypatch, tmp_path):
    monkeypatch.setattr(services.C, "DEFAULT_LOCAL_TMP", str(tmp_path))
    batch = {"inventory_hostname": "node1", "gymfleet_engine_batch": True}
    for component in ("firewall", "redis"):
        plugin = action(monkeypatch, {"component": component, "defer": True})
        result = plugin.run(task_vars=batch)
        assert result["deferred"] and not plugin._execute_module.runs, "nothing reaches the host yet"
    plugin = action(monkeypatch, {"component": "omniboxes", "defer": False})
    result = plugin.run(task_vars=batch)
    assert [[c["component"] for c in run["calls"]] for run in plugin._execute_module.runs] == [
        ["firewall", "redis", "omniboxes"]], "one module run, the queue first"
    # The task's own result is its call's, so a later task reads it as before; changed counts the queue's too.
    assert result["services"] == ["omniboxes"] and result["changed"] is True
    assert [r["component"] for r in result["results"]] == ["firewall", "redis", "omniboxes"]
    flush = action(monkeypatch, {"flush": True})
    assert flush.run(task_vars=batch)["skipped"] and not flush._execute_module.runs, "an empty queue costs no call"


def test_defer_runs_at_once_outside_the_lifecycle_playbooks_and_a_flush_runs_the_queue(monkeypatch, tmp_path):
    monkeypatch.setattr(services.C, "DEFAULT_LOCAL_TMP", str(tmp_path))
    alone = action(monkeypatch, {"component": "redis", "defer": True})
    assert alone.run(task_vars={"inventory_hostname": "node1"})["services"] == ["redis"]
    assert alone._execute_module.runs == [{"component": "redis"}]
    queued = action(monkeypatch, {"component": "openenv", "defer": True})
    queued.run(task_vars={"inventory_hostname": "node2", "gymfleet_engine_batch": True})
    flush = action(monkeypatch, {"flush": True})
    result = flush.run(task_vars={"inventory_hostname": "node2"})
    assert flush._execute_module.runs == [{"calls": [{"component": "openenv"}]}]
    assert result["results"][0]["component"] == "openenv"
    refused = action(monkeypatch, {"flush": True, "component": "x"})
    assert "flush takes no other option" in refused.run(task_vars={"inventory_hostname": "node2"})["msg"]
