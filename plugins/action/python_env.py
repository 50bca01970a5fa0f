"""Controller half of gymfleet.cluster.python_env: the host's name goes in front of a failure's message.

Documented in plugins/modules/python_env.py.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        result.update(self._execute_module(module_name="gymfleet.cluster.python_env", module_args=self._task.args,
                                           task_vars=task_vars))
        if result.get("failed") and result.get("msg"):
            result["msg"] = f"host {task_vars.get('inventory_hostname')}: {result['msg']}"
        return result
