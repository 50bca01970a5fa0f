#!/usr/bin/python
"""Each backend of an Envoy cluster as its health checks see it; fails unless every expected one is healthy."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: envoy_cluster_health
short_description: Each backend of an Envoy cluster as Envoy's health checks see it
version_added: 0.1.0
author: gymfleet developers
description:
  - Reads C(GET /clusters?format=json) from Envoy's admin listener and reports every backend of O(cluster) - its
    address, whether it is healthy, why not (the failure flags Envoy sets, such as C(failed_active_health_check)),
    and its request counters.
  - Health comes from Envoy's health status only, never from successful requests - below 50% healthy backends
    Envoy's panic mode sends traffic to unhealthy backends too, so requests can succeed while backends are down.
  - Fails unless every backend in O(expected) (every configured backend when O(expected) is empty) is present
    and healthy. With O(wait), asks again every O(interval) seconds until that holds, for up to O(timeout)
    seconds.
  - It only reads; it changes nothing.
extends_documentation_fragment:
  - gymfleet.cluster.attributes.read_only
  - gymfleet.cluster.polling
options:
  admin_url:
    description: Envoy's admin listener, which gymfleet keeps on loopback (run this on the Envoy host).
    type: str
    default: http://127.0.0.1:9901
  cluster:
    description: The cluster's name.
    type: str
    default: openenv_cluster
  expected:
    description: Backends that must be healthy, as C(address:port).
    type: list
    elements: str
    default: []
  wait:
    description: Wait until the expected backends are healthy instead of failing at once.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Check both environment servers are healthy in Envoy
  gymfleet.cluster.envoy_cluster_health:
    expected: [10.0.0.2:8000, 10.0.0.3:8000]

- name: Wait up to 30 s for a restarted backend to be healthy again
  gymfleet.cluster.envoy_cluster_health:
    expected: [10.0.0.2:8000, 10.0.0.3:8000]
    wait: true
    timeout: 30
"""

RETURN = r"""
backends:
  description: Every backend of the cluster, by address.
  returned: when the cluster exists
  type: list
  elements: dict
  contains:
    address:
      description: C(address:port).
      type: str
    healthy:
      description: Whether Envoy routes to it as healthy.
      type: bool
    reasons:
      description: Why not, as Envoy's flags (C(failed_active_health_check), C(failed_outlier_check), ...).
      type: list
      elements: str
    requests:
      description: Requests Envoy sent it (C(rq_total)).
      type: int
    errors:
      description: Its failed requests (C(rq_error)).
      type: int
    active_requests:
      description: Requests in flight (C(rq_active)).
      type: int
healthy:
  description: How many backends are healthy.
  returned: when the cluster exists
  type: int
total:
  description: How many backends the cluster has.
  returned: when the cluster exists
  type: int
unhealthy:
  description: The expected backends that are not healthy, each with its reasons.
  returned: always
  type: list
  elements: str
missing:
  description: Expected backends that are not in the cluster at all.
  returned: always
  type: list
  elements: str
waited:
  description: Seconds spent waiting.
  returned: always
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.envoy_admin import fetch_hosts, judge_backends
from ansible_collections.gymfleet.cluster.plugins.module_utils.polling import POLLING_ARGUMENT_SPEC


def main():
    module = AnsibleModule(
        argument_spec={
            "admin_url": {"type": "str", "default": "http://127.0.0.1:9901"},
            "cluster": {"type": "str", "default": "openenv_cluster"},
            "expected": {"type": "list", "elements": "str", "default": []},
            "wait": {"type": "bool", "default": False},
            **POLLING_ARGUMENT_SPEC,
        },
        supports_check_mode=True,
    )
    params = module.params
    start = time.monotonic()
    while True:
        summary = {"missing": [], "unhealthy": []}
        try:
            rows = fetch_hosts(params["admin_url"], params["cluster"], params["request_timeout"])
            if rows is None:
                problem = f"Envoy has no cluster {params['cluster']}"
            else:
                summary = judge_backends(rows, params["expected"])
                problems = ([f"not in the cluster: {', '.join(summary['missing'])}"] if summary["missing"] else []) + (
                    [f"unhealthy: {'; '.join(summary['unhealthy'])}"] if summary["unhealthy"] else [])
                problem = "; ".join(problems) or None
        except Exception as exc:  # Envoy not up yet, or not answering: the same as not healthy
            problem = f"{params['admin_url']}: {exc}"
        waited = round(time.monotonic() - start, 1)
        if problem is None:
            module.exit_json(changed=False, waited=waited, **summary)
        if not params["wait"] or waited >= params["timeout"]:
            module.fail_json(msg=f"cluster {params['cluster']}: {problem}", waited=waited, **summary)
        time.sleep(params["interval"])


if __name__ == "__main__":
    main()
