"""Controller half of gymfleet.cluster.host_files: controller files, trees and templates become content."""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible_collections.gymfleet.cluster.plugins.plugin_utils.layout import expand_layout


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        try:
            module_args = expand_layout(self, self._task.args, task_vars)
        except (AnsibleError, OSError) as exc:
            result.update(failed=True, msg=str(exc))
            return result
        result.update(self._execute_module(module_name="gymfleet.cluster.host_files", task_vars=task_vars,
                                           module_args=module_args))
        result.pop("invocation", None)
        return result
