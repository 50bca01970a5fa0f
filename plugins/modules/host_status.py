#!/usr/bin/python
"""Ask a host about all of its components in one call: every probe they declare, in parallel."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_status
short_description: Run every status probe of a host's components in one call and return the raw answers
version_added: 0.2.0
author: gymfleet developers
description:
  - The status playbook's only task on a host. Each role declares its status checks (what to ask, and what its
    row shows); this module runs all probes of all checks of the host at once, in parallel, each bounded by
    O(timeout), and returns what each one saw. It judges nothing, the controller turns the answers into rows
    (filter P(gymfleet.cluster.status_report#filter)).
  - A probe never fails the task. A refused connection, a missing program or a bad answer is the C(error) of
    its result. Only a check the module cannot read fails it.
  - "Probe kinds, one per probe: C(command: {argv}) gives C(rc), C(stdout), C(stderr); C(http: {url, headers,
    json}) gives C(status) and the parsed C(json) body; C(redis: {host, port}) gives C(up), C(version),
    C(connected_clients), C(keys); C(redis_registry: {host, port, db}) gives OmniBoxes' registered C(nodes);
    C(ray_dashboard: {url, token_path}) gives Ray's C(nodes), C(alive), C(totals), C(ray_version);
    C(envoy_clusters: {admin_url, cluster}) gives the cluster's C(backends); C(units: {component} or
    {pattern}, and health) gives each unit's C(active_state), C(sub_state), C(restarts), C(enabled) and C(stale)
    (its process runs another definition than the installed unit's), and with C(health) each active unit's
    C(health) from the probe its declaration gave (kept in the unit); C(file: {path}) gives its C(text);
    C(iptables_chain: {chain, table, jumps, save_path}) gives whether the chain C(exists), its number of C(rules),
    its C(missing_jumps) and C(drift) (its rules differ from the copy the last deploy saved at C(save_path);
    null without one); C(listeners: {plan, unit_dir}) gives every socket beyond loopback that a process of a
    gymfleet unit listens on (C(listeners), each with its unit, component, pid, process, proto, address and port)
    and the port plan read from the JSON file C(plan)."
options:
  checks:
    description: The host's checks, each with its probes.
    type: list
    elements: dict
    required: true
    suboptions:
      id:
        description: Unique among the host's checks; the answers come back under it.
        type: str
        required: true
      probes:
        description: Probe name to probe, as described above.
        type: dict
        required: true
      row:
        description: What the controller needs to judge the answers (component, system, expected values); returned
          as given.
        type: dict
        default: {}
      secret:
        description: For the check's probes that say C(secret=true) (C(http), C(redis), C(redis_registry)), the
          password of a Redis probe and the value of the header O(checks[].secret_header) of an HTTP probe. Never
          returned or logged.
        type: str
      secret_header:
        description: The header of O(checks[].secret).
        type: str
        default: x-api-key
  timeout:
    description: Seconds each probe may take; probes run in parallel, so about the time of the whole call.
    type: float
    default: 5
  parallel:
    description: How many probes run at once.
    type: int
    default: 16
attributes:
  check_mode:
    support: full
    details: Reads only.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Ask the host about its Redis and its environment server
  gymfleet.cluster.host_status:
    checks:
      - id: redis-6379
        row: {system: redis, component: "redis :6379"}
        probes:
          info: {redis: {port: 6379, secret: true}}
        secret: "{{ redis_password }}"
      - id: openenv-8000
        row: {system: openenv, component: "openenv :8000"}
        probes:
          health: {http: {url: "http://10.0.0.2:8000/health", json: false}}
  register: host_report
"""

RETURN = r"""
checks:
  description: Every check as given (without its probes and secret), with C(results), probe name to answer.
  returned: always
  type: list
  elements: dict
  sample: [{id: redis-6379, row: {system: redis}, results: {info: {up: true, version: 7.0.15, keys: {}}}}]
addresses:
  description: The IPv4 addresses on the host's interfaces, to tell a cluster address that moved.
  returned: always
  type: list
  elements: str
elapsed:
  description: Seconds the probes took.
  returned: always
  type: float
"""

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.host_probes import ProbeError, kind_of, run_probe


def with_secret(name: str, kind: str, spec: dict, check: dict) -> dict:
    """The probe's spec with its check's secret, when the probe asks for it (C(secret: true))."""
    options = {key: value for key, value in spec[kind].items() if key != "secret"}
    if not spec[kind].get("secret") or check.get("secret") is None:
        return {kind: options}
    if kind in ("redis", "redis_registry"):
        return {kind: {**options, "password": check["secret"]}}
    if kind == "http":
        headers = {**(options.get("headers") or {}), check["secret_header"]: check["secret"]}
        return {kind: {**options, "headers": headers}}
    raise ProbeError(f"probe {name}: a {kind} probe takes no secret")


def local_addresses() -> list[str]:
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, timeout=5,
                             check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return sorted({fields[3].split("/")[0] for fields in (line.split() for line in out.splitlines())
                   if len(fields) > 3 and fields[2] == "inet"})


def main():
    module = AnsibleModule(
        argument_spec={
            "checks": {"type": "list", "elements": "dict", "required": True, "options": {
                "id": {"type": "str", "required": True},
                "probes": {"type": "dict", "required": True},
                "row": {"type": "dict", "default": {}},
                "secret": {"type": "str", "no_log": True},
                "secret_header": {"type": "str", "default": "x-api-key", "no_log": False},
            }},
            "timeout": {"type": "float", "default": 5},
            "parallel": {"type": "int", "default": 16},
        },
        supports_check_mode=True,
    )
    params = module.params
    checks = params["checks"]
    ids = [check["id"] for check in checks]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        module.fail_json(msg=f"checks: ids {', '.join(duplicates)} are given more than once; fix: make each unique")
    jobs = []
    try:
        for check in checks:
            for name, spec in check["probes"].items():
                where = f"{check['id']}.{name}"
                jobs.append((check["id"], name, with_secret(where, kind_of(where, spec), spec, check)))
    except ProbeError as exc:
        module.fail_json(msg=f"checks: {exc}")

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, params["parallel"])) as pool:
        futures = [(check_id, name, pool.submit(run_probe, module, name, spec, params["timeout"]))
                   for check_id, name, spec in jobs]
        addresses = local_addresses()
        answers: dict = {}
        for check_id, name, future in futures:
            try:
                answers.setdefault(check_id, {})[name] = future.result()
            except Exception as exc:  # a probe's own bug must not hide the other answers
                answers.setdefault(check_id, {})[name] = {"error": f"{type(exc).__name__}: {exc}"}
    module.exit_json(
        changed=False,
        checks=[{"id": c["id"], "row": c["row"], "results": answers.get(c["id"], {})} for c in checks],
        addresses=addresses,
        elapsed=round(time.monotonic() - start, 2),
    )


if __name__ == "__main__":
    main()
