#!/usr/bin/python
"""Send a bounded number of requests through Envoy and count the distinct backends that served them."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lb_distribution
short_description: Send requests through Envoy and count the distinct backends that served them
version_added: 0.1.0
author: gymfleet developers
description:
  - The runbook's pre-flight check 4 - a multi-node experiment whose requests all reached one host is invalid.
  - Sends up to O(requests) C(GET) requests to O(url) + O(path), one after another with O(delay) seconds between
    them, and stops early after O(time_limit) seconds.
  - Counts the backends that served them - from Envoy's per-backend request counters (C(rq_total) before and after,
    when O(admin_url) is given, which needs the run on the Envoy host), else from the response header
    O(upstream_header), which gymfleet's Envoy config sets to the serving backend.
  - Fails when fewer than O(expected_hosts) distinct backends served requests, naming how many each got.
  - The requests are plain reads (C(/health) by default); it changes nothing, and runs the same in check mode.
extends_documentation_fragment:
  - gymfleet.cluster.attributes.read_only
options:
  url:
    description: Envoy's listener, such as C(http://10.0.0.1:8000).
    type: str
    required: true
  path:
    description: The path to request.
    type: str
    default: /health
  requests:
    description: How many requests to send (1 to 10000).
    type: int
    default: 100
  delay:
    description: Seconds between requests.
    type: float
    default: 0.0
  time_limit:
    description: Stop sending after this many seconds.
    type: float
    default: 60
  expected_hosts:
    description: The number of distinct backends that must serve requests.
    type: int
    required: true
  admin_url:
    description: Envoy's admin listener, to count by its per-backend counters; empty counts by response header.
    type: str
    default: ""
  cluster:
    description: The Envoy cluster whose counters are read.
    type: str
    default: openenv_cluster
  upstream_header:
    description: Response header that names the serving backend.
    type: str
    default: x-gymfleet-upstream
  request_timeout:
    description: Seconds to wait for one answer.
    type: float
    default: 10
"""

EXAMPLES = r"""
- name: 100 requests must reach both environment servers (run on the Envoy host)
  gymfleet.cluster.lb_distribution:
    url: "http://{{ cluster_address }}:8000"
    requests: 100
    delay: 0.1
    expected_hosts: 2
    admin_url: http://127.0.0.1:9901
"""

RETURN = r"""
hosts:
  description: Backend address to the number of requests it served during the check.
  returned: always
  type: dict
  sample: {"10.0.0.2:8000": 50, "10.0.0.3:8000": 50}
distinct:
  description: How many backends served at least one request.
  returned: always
  type: int
counted_by:
  description: C(admin) (Envoy's counters) or C(header) (the response header).
  returned: always
  type: str
sent:
  description: Requests sent.
  returned: always
  type: int
succeeded:
  description: Requests answered with a 2xx status.
  returned: always
  type: int
failed:
  description: Requests that failed (no answer, or a status other than 2xx).
  returned: always
  type: int
elapsed:
  description: Seconds spent sending.
  returned: always
  type: float
"""

import time
from urllib.error import HTTPError

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url
from ansible_collections.gymfleet.cluster.plugins.module_utils.envoy_admin import fetch_hosts


def counters(params: dict) -> dict:
    rows = fetch_hosts(params["admin_url"], params["cluster"], params["request_timeout"])
    if rows is None:
        raise ValueError(f"Envoy at {params['admin_url']} has no cluster {params['cluster']}")
    return {row["address"]: row["requests"] for row in rows}


def send(params: dict) -> tuple[dict, int, int, int, float]:
    """Header counts, sent, succeeded, failed, elapsed."""
    seen: dict = {}
    sent = succeeded = 0
    start = time.monotonic()
    target = params["url"].rstrip("/") + params["path"]
    while sent < params["requests"] and time.monotonic() - start < params["time_limit"]:
        sent += 1
        try:
            response = open_url(target, timeout=params["request_timeout"], validate_certs=True)
            response.read()
            succeeded += 1
            upstream = response.headers.get(params["upstream_header"])
        except HTTPError as exc:  # an answer all the same: the header still names the backend
            upstream = exc.headers.get(params["upstream_header"]) if exc.headers else None
        except Exception:
            upstream = None
        if upstream:
            seen[upstream] = seen.get(upstream, 0) + 1
        if params["delay"] and sent < params["requests"]:
            time.sleep(params["delay"])
    return seen, sent, succeeded, sent - succeeded, round(time.monotonic() - start, 2)


def main():
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "path": {"type": "str", "default": "/health"},
            "requests": {"type": "int", "default": 100},
            "delay": {"type": "float", "default": 0.0},
            "time_limit": {"type": "float", "default": 60},
            "expected_hosts": {"type": "int", "required": True},
            "admin_url": {"type": "str", "default": ""},
            "cluster": {"type": "str", "default": "openenv_cluster"},
            "upstream_header": {"type": "str", "default": "x-gymfleet-upstream"},
            "request_timeout": {"type": "float", "default": 10},
        },
        supports_check_mode=True,
    )
    params = module.params
    if not 1 <= params["requests"] <= 10000:
        module.fail_json(msg=f"requests is {params['requests']}; fix: send between 1 and 10000")
    try:
        before = counters(params) if params["admin_url"] else None
        seen, sent, succeeded, failed, elapsed = send(params)
        if before is not None:
            after = counters(params)
            seen = {address: after[address] - before.get(address, 0) for address in after
                    if after[address] > before.get(address, 0)}
    except Exception as exc:
        module.fail_json(msg=f"reading Envoy's counters failed: {exc}")
    result = {"hosts": seen, "distinct": len(seen), "counted_by": "admin" if params["admin_url"] else "header",
              "sent": sent, "succeeded": succeeded, "failed": failed, "elapsed": elapsed, "changed": False}
    if len(seen) < params["expected_hosts"]:
        served = ", ".join(f"{address}: {count}" for address, count in sorted(seen.items())) or "none"
        module.fail_json(msg=f"{len(seen)} of {params['expected_hosts']} backends served the {sent} requests "
                             f"({served}; {failed} failed); fix: check the backends' health in Envoy "
                             "(envoy_cluster_health), a run on fewer hosts than expected is not valid", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
