"""The manifest of systems as preflight uses it: the roles a host may get, by group."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.gymfleet.cluster.plugins.module_utils.systems import ManifestError, components


def system_components(manifest: dict, roles_dir: str) -> list[dict]:
    """[{role, groups, preflight}] for every component of meta/systems.yml, in deploy order."""
    try:
        return [{"role": c["role"], "groups": c["groups"], "preflight": c["preflight"]}
                for c in components(manifest, roles_dir)]
    except ManifestError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"system_components": system_components}
