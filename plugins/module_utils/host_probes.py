"""The probes of a host's status: each one asks one thing and returns what it saw, as raw data.

`gymfleet.cluster.host_status` runs every probe a host's components declare in one call, in parallel under
one timeout; the controller then judges the answers (module_utils/status_rows.py). A probe never raises: a
refused connection, a missing program or a bad answer is an `error` in its result.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import urllib.error
import urllib.request

from ansible_collections.gymfleet.cluster.plugins.module_utils.envoy_admin import fetch_hosts
from ansible_collections.gymfleet.cluster.plugins.module_utils.iptables import CHAIN_OPTIONS, ChainError, chain_state
from ansible_collections.gymfleet.cluster.plugins.module_utils.listeners import ListenersUnreadable, service_listeners
from ansible_collections.gymfleet.cluster.plugins.module_utils.omniboxes import registry_nodes
from ansible_collections.gymfleet.cluster.plugins.module_utils.ray_dashboard import fetch as fetch_ray
from ansible_collections.gymfleet.cluster.plugins.module_utils.redis_args import connect, health
from ansible_collections.gymfleet.cluster.plugins.module_utils.resp import RespError
from ansible_collections.gymfleet.cluster.plugins.module_utils.services import probe as probe_health
from ansible_collections.gymfleet.cluster.plugins.module_utils.systemd_services import (
    DEFINITION_MARK,
    SystemdRuntime,
    marks,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.unit_file import read_unit


class ProbeError(ValueError):
    """A probe declaration the module cannot run."""


def _command(module, spec: dict, timeout: float) -> dict:
    argv = [str(arg) for arg in spec["argv"]]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except OSError as exc:
        return {"rc": None, "error": f"{argv[0]}: {exc.strerror}"}
    except subprocess.TimeoutExpired:
        return {"rc": None, "error": f"{' '.join(argv)}: no answer in {timeout:g} s"}
    return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def _http(module, spec: dict, timeout: float) -> dict:
    request = urllib.request.Request(spec["url"], headers=spec.get("headers") or {})
    try:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - a declared URL
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
    except (OSError, ValueError) as exc:
        return {"status": None, "error": f"{spec['url']}: {getattr(exc, 'reason', exc)}"}
    result = {"status": status}
    if spec.get("json", True):
        try:
            result["json"] = json.loads(body)
        except ValueError:
            result["json"] = None
    return result


def _redis_params(spec: dict, timeout: float) -> dict:
    return {"host": spec.get("host") or "127.0.0.1", "port": int(spec["port"]),
            "password": spec.get("password") or None, "username": spec.get("username") or None,
            "connect_timeout": timeout}


def _redis(module, spec: dict, timeout: float) -> dict:
    return health(_redis_params(spec, timeout))


def _redis_registry(module, spec: dict, timeout: float) -> dict:
    params = _redis_params(spec, timeout)
    try:
        with connect(params, db=int(spec.get("db", 1))) as client:
            return {"nodes": registry_nodes(client)}
    except RespError as exc:
        return {"error": f"{params['host']}:{params['port']}: {exc}"}


def _ray_dashboard(module, spec: dict, timeout: float) -> dict:
    token = None
    if spec.get("token_path"):
        try:
            with open(spec["token_path"], encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as exc:
            return {"error": f"{spec['token_path']}: {exc.strerror}"}
    try:
        return fetch_ray({"dashboard_url": spec["url"], "request_timeout": timeout}, token)
    except Exception as exc:  # refused, a dashboard still starting, a refused token: the answer is the error
        return {"error": f"{spec['url']}: {exc}"}


def _envoy_clusters(module, spec: dict, timeout: float) -> dict:
    try:
        rows = fetch_hosts(spec["admin_url"], spec["cluster"], timeout)
    except Exception as exc:  # Envoy down or not answering
        return {"error": f"{spec['admin_url']}: {exc}"}
    if rows is None:
        return {"error": f"Envoy has no cluster {spec['cluster']}"}
    return {"backends": rows}


def _units(module, spec: dict, timeout: float) -> dict:
    """Every unit of a component on the host: the engine's marked ones, or the ones a pattern names."""
    unit_dir = spec.get("unit_dir") or "/etc/systemd/system"
    runtime = SystemdRuntime(module, spec.get("component") or "-", unit_dir=unit_dir)
    if spec.get("component"):
        paths = runtime.owned_units()
    else:
        paths = {os.path.basename(p): p for p in sorted(glob.glob(os.path.join(unit_dir, spec["pattern"])))}
    names = sorted(paths)
    try:
        states = runtime.show(names)
        # With health, each active unit's own probe, as its declaration gave it (the engine keeps it in the unit).
        declared = {f"{unit['name']}.service": unit for unit in runtime.installed_specs()} if spec.get("health") \
            else {}
    except Exception as exc:  # systemctl missing or refusing, a unit file the engine cannot read back
        return {"error": str(exc)}
    units = []
    for name in names:
        state = states[name]
        installed = marks(read_unit(paths[name]) or "").get(DEFINITION_MARK)
        running = runtime.running_hash(name, state)
        units.append({"unit": name, "active_state": state["active_state"], "sub_state": state["sub_state"],
                      "restarts": state["restarts"], "enabled": state["enabled"],
                      # The process runs another definition than the installed unit's: a deploy restarts it.
                      "stale": bool(installed) and state["active_state"] == "active" and running != installed})
        if name in declared and state["active_state"] == "active":
            units[-1]["health"] = probe_health(declared[name], module.run_command if module else None)
    return {"units": units}


def _file(module, spec: dict, timeout: float) -> dict:
    try:
        with open(spec["path"], encoding="utf-8") as handle:
            return {"text": handle.read()}
    except OSError as exc:
        return {"error": f"{spec['path']}: {exc.strerror}"}


def _iptables_chain(module, spec: dict, timeout: float) -> dict:
    """An owned chain as the host has it: exists, rules, missing_jumps, drift (module_utils/iptables)."""
    params = {key: option.get("default") for key, option in CHAIN_OPTIONS.items()}
    params.update({key: value for key, value in spec.items() if key in params})
    jump_defaults = {key: option.get("default") for key, option in CHAIN_OPTIONS["jumps"]["options"].items()}
    params["jumps"] = [{**jump_defaults, **jump} for jump in params["jumps"] or []]
    family = "ip6tables" if params["ip_version"] == "ipv6" else "iptables"
    if not all(module.get_bin_path(tool) for tool in (family, f"{family}-save", f"{family}-restore")):
        return {"error": f"{family} is not installed"}
    try:
        return chain_state(module, params)
    except ChainError as exc:
        return {"error": str(exc)}


def _listeners(module, spec: dict, timeout: float) -> dict:
    """Every non-loopback socket gymfleet's units listen on, and the port plan the last deploy saved (JSON)."""
    try:
        with open(spec["plan"], encoding="utf-8") as handle:
            plan = json.load(handle)
    except (OSError, ValueError) as exc:
        return {"error": f"{spec['plan']}: {getattr(exc, 'strerror', None) or exc}",
                "fix": "gymfleet deploy --tags firewall"}
    try:
        return {"listeners": service_listeners(spec.get("unit_dir") or "/etc/systemd/system"), "plan": plan}
    except ListenersUnreadable as exc:
        return {"error": str(exc), "fix": "run status as root on a host that grants it CAP_SYS_PTRACE"}


PROBES = {"command": _command, "http": _http, "redis": _redis, "redis_registry": _redis_registry,
          "ray_dashboard": _ray_dashboard, "envoy_clusters": _envoy_clusters, "units": _units, "file": _file,
          "iptables_chain": _iptables_chain, "listeners": _listeners}


def kind_of(name: str, spec) -> str:
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in PROBES:
        raise ProbeError(f"probe {name}: give exactly one of {', '.join(PROBES)}, not {spec!r}")
    kind = next(iter(spec))
    if not isinstance(spec[kind], dict):
        raise ProbeError(f"probe {name}: the options of {kind} must be a mapping, not {spec[kind]!r}")
    return kind


def run_probe(module, name: str, spec: dict, timeout: float) -> dict:
    kind = kind_of(name, spec)
    return PROBES[kind](module, spec[kind], timeout)
