"""Controller half of gymfleet.cluster.host_files: controller files, trees and templates become content.

When the target is the controller itself (a local connection, no become), such as a connection file written for
the user, the layout is applied here, in this process: the same code and argument spec as the module, without
starting a Python and building a module payload for one small file."""

from __future__ import annotations

import os
import subprocess

from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible_collections.gymfleet.cluster.plugins.module_utils.host_layout import LAYOUT_OPTIONS, host_files_result
from ansible_collections.gymfleet.cluster.plugins.plugin_utils.layout import expand_layout


def run_here(argv: list[str], environ_update: dict | None = None) -> tuple[int, str, str]:
    """AnsibleModule.run_command's contract (argv, exit status and text output), on the controller."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False,
                          env={**os.environ, **(environ_update or {})})
    return done.returncode, done.stdout, done.stderr


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
        if self._connection.transport == "local" and not self._play_context.become:
            checked = ArgumentSpecValidator(LAYOUT_OPTIONS).validate(module_args)
            if checked.error_messages:
                result.update(failed=True, msg=f"host_files: {'; '.join(checked.error_messages)}")
                return result
            result.update(host_files_result(checked.validated_parameters, bool(self._task.check_mode),
                                            bool(self._task.diff), run_here))
            return result
        result.update(self._execute_module(module_name="gymfleet.cluster.host_files", task_vars=task_vars,
                                           module_args=module_args))
        result.pop("invocation", None)
        return result
