"""Decide a host's cluster address in one task: host_facts' round trip (interfaces, and the route towards the
control host when the address is neither given nor the tailnet's), then the decision and its checks, here.

Documented in plugins/modules/cluster_address_facts.py, as ansible-doc expects for action plugins.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase


def decide(host: str, facts: dict, ip: str, tailnet: str, route_label: str, route_variable: str) -> tuple[dict, str]:
    """The facts cluster_address and cluster_address_source, or an empty dict and the one line that says why not.

    facts: host_facts' ansible_facts (all_ipv4_addresses, and route_source when a route was asked for);
    route_label names the control host in the source, route_variable the setting a route error points at."""
    route = facts.get("route_source") or {}
    if ip:
        address, source = ip, "cluster_address_ip"
    elif tailnet:
        address, source = tailnet, "tailscale"
    elif route.get("error"):
        return {}, (f"host {host}: {route['error']} ({route_variable}); fix: set cluster_address_ip to this host's "
                    f"address on the cluster network")
    else:
        address, source = route.get("source", ""), f"route to {route_label or route.get('target', '')}"
    local = facts.get("all_ipv4_addresses") or []
    if address not in local:
        return {}, (f"host {host}: cluster address {address} (from {source}) is not on any interface here; fix: set "
                    f"cluster_address_ip to one of {', '.join(local) or '(this host has no IPv4 address)'}")
    return {"cluster_address": address, "cluster_address_source": source}, ""


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("ip", "tailnet", "route_to", "route_label", "route_variable", "paths"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = {"ip": "", "tailnet": "", "route_to": "", "route_label": "", "route_variable": "", **self._task.args}
        host = task_vars.get("inventory_hostname", "?")
        asked = args["route_to"] if not (args["ip"] or args["tailnet"]) else ""
        module_args = {"route_to": asked} if asked else {}
        if self._task.args.get("paths"):
            module_args["paths"] = self._task.args["paths"]
        gathered = self._execute_module(module_name="gymfleet.cluster.host_facts", task_vars=task_vars,
                                        module_args=module_args)
        gathered.pop("invocation", None)
        if gathered.get("failed"):
            result.update(failed=True, msg=f"host {host}: {gathered.get('msg', 'host_facts failed')}")
            return result
        facts = gathered.get("ansible_facts", {})
        if "path_kinds" in gathered:
            result["path_kinds"] = gathered["path_kinds"]
        decided, problem = decide(host, facts, args["ip"], args["tailnet"], args["route_label"], args["route_variable"])
        if problem:
            result.update(failed=True, msg=problem, ansible_facts=facts)
            return result
        # Cached with the gathered facts, so a later run with --limit, or status, knows every member's address.
        result.update(changed=False, ansible_facts={**facts, **decided}, **decided)
        return result
