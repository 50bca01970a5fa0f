"""Status rows from the raw answers of every host's probe (module host_status), judged on the controller.

A row is {host, component, state, detail, system, metrics}, and `summary` where the judge gives the row's share
of its system's numbers (module_utils/systems.py adds them up; the manifest's summary line shows them):
`gymfleet status` groups and sums the rows, the JSON report carries them. Each check names its judge in
`row.judge`; a judge sees its own check's answers and, for answers that only exist on another host (Ray's node
list on the head), the whole run's Answers.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from ansible_collections.gymfleet.cluster.plugins.module_utils.envoy_admin import judge_backends
from ansible_collections.gymfleet.cluster.plugins.module_utils.listeners import undeclared
from ansible_collections.gymfleet.cluster.plugins.module_utils.omniboxes import summarize_info
from ansible_collections.gymfleet.cluster.plugins.module_utils.slurm_steps import marked_steps, parse_steps

UP, DOWN = "up", "DOWN"


class Answers(NamedTuple):
    """Every answering host's host_status result, and which hosts the run asked (answered or not)."""

    by_host: dict
    asked: frozenset


def _row(host: str, row: dict, state: str, detail: str, metrics: dict, summary: dict | None = None) -> dict:
    judged = {"host": host, "component": row["component"], "state": state, "detail": detail,
              "system": row["system"], "metrics": metrics}
    return {**judged, "summary": summary} if summary else judged


def _active(units: dict) -> list[str]:
    return [u["unit"] for u in units.get("units", []) if u["active_state"] == "active"]


def _stale_note(units: dict) -> str:
    stale = [u["unit"] for u in units.get("units", []) if u.get("stale")]
    return f"; {', '.join(stale)} runs an older definition than installed (a deploy restarts it)" if stale else ""


def tailscale(host, row, results, answers) -> dict:
    answer = results["status"]
    if answer.get("rc") is None:
        backend, ipv4 = "NotInstalled", ""
    else:
        try:
            status = json.loads(answer.get("stdout") or "") if answer["rc"] == 0 else None
        except ValueError:
            status = None
        backend = (status or {}).get("BackendState") or "DaemonDown"
        ips = ((status or {}).get("Self") or {}).get("TailscaleIPs") or []
        ipv4 = next((ip for ip in ips if "." in ip), "") if backend == "Running" else ""
    return _row(host, row, UP if backend == "Running" else DOWN, backend + (f" {ipv4}" if ipv4 else ""),
                {"backend_state": backend, "ipv4": ipv4})


def python_env(host, row, results, answers) -> dict:
    answer = results["python"]
    words = (answer.get("stdout") or "").split() if answer.get("rc") == 0 else []
    if len(words) == 2:
        return _row(host, row, UP, f"{row['path']}: Python {words[0]}, {words[1]} distributions",
                    {"path": row["path"], "python": words[0]})
    return _row(host, row, DOWN, f"{row['path']} is missing or broken", {"path": row["path"], "python": None})


def redis(host, row, results, answers) -> dict:
    info = results["info"]
    metrics = {"port": row["port"], "reachable": info.get("up", False), "keys": info.get("keys", {}),
               "version": info.get("version")}
    summary = {"reachable": int(bool(info.get("up"))), "instances": 1, "keys": sum(info.get("keys", {}).values())}
    if not info.get("up"):
        return _row(host, row, DOWN, info.get("error", "no answer"), metrics, summary)
    return _row(host, row, UP, f"redis {info['version']}, {info['connected_clients']} clients, keys "
                f"{sum(info['keys'].values())}", metrics, summary)


def _info(answer: dict) -> tuple[dict | None, str]:
    if answer.get("status") == 200 and isinstance(answer.get("json"), dict):
        return summarize_info(answer["json"]), ""
    return None, answer.get("error") or f"/info answered HTTP {answer.get('status')}"


def omniboxes_node(host, row, results, answers) -> dict:
    node, problem = _info(results["info"])
    active = _active(results["units"])
    instances = sum(unit.startswith("omniboxes-instance@") for unit in active)
    up = node is not None and node["capacity"] == row["instances"] and "omniboxes-node.service" in active
    browser = _browser(results.get("check"))
    detail = (f"capacity {node['capacity']}/{row['instances']}, available {node['available']}, instance units "
              f"running {instances}" if node else problem) + _stale_note(results["units"]) \
        + (f", browser {browser['description']}" if browser else "")
    return _row(host, row, UP if up else DOWN, detail, {
        "role": "node", "url": row["url"], "capacity": node["capacity"] if node else None,
        "available": node["available"] if node else None, "instances_expected": row["instances"],
        "instance_units_running": instances, "browser": browser}, {"node_servers_up": int(up)})


def _browser(result: dict | None) -> dict | None:
    """What the last omniboxes-check launched (its state file); None when it has not run or launched none."""
    try:
        check = json.loads(result["text"])
    except (TypeError, KeyError, ValueError):
        return None
    if check.get("mode", "none") == "none":
        return None
    return {"mode": check["mode"], "version": check.get("version"), "target": check.get("target"),
            "description": f"Chromium {check.get('version')} ({check['mode']})"}


def omniboxes_master(host, row, results, answers) -> dict:
    master, problem = _info(results["info"])
    keys = [node["hostname"] for node in results["registry"].get("nodes", [])]
    up = master is not None and master["healthy"] == row["nodes_expected"]
    detail = (f"nodes healthy {master['healthy']}/{master['total']}, capacity {master['capacity']}, available "
              f"{master['available']}, registry keys {' '.join(keys) or 'none'}" if master else problem)
    metrics = {"role": "master", "url": row["url"], "nodes_healthy": master["healthy"] if master else None,
               "nodes_total": master["total"] if master else None, "nodes_expected": row["nodes_expected"],
               "capacity": master["capacity"] if master else None,
               "available": master["available"] if master else None, "registry_keys": keys}
    summary = {key: metrics[key] for key in ("nodes_healthy", "nodes_expected", "capacity", "available")}
    return _row(host, row, UP if up else DOWN, detail + _stale_note(results["units"]), metrics,
                {**summary, "registry_keys": len(keys), "master_url": row["url"]})


def _ray_cluster(answers: Answers, head: str) -> dict | None:
    """The head's view of the cluster; None when the head was not asked at all (a --limit without it)."""
    if head not in answers.asked:
        return None
    for check in answers.by_host.get(head, {}).get("checks", []):
        if check["row"].get("judge") == "ray_node" and "cluster" in check["results"]:
            return check["results"]["cluster"]
    return {"error": f"the head {head} did not answer"}


def ray_node(host, row, results, answers: Answers) -> dict:
    cluster = _ray_cluster(answers, row["head"])
    is_head = row["role"] == "head"
    active = row["unit"] in _active(results["units"])
    if cluster is None:  # nothing to judge the worker against but its own unit
        return _row(host, row, UP if active else DOWN, row["unit"] + (" active" if active else " not running")
                    + f"; the head {row['head']} was not asked" + _stale_note(results["units"]),
                    {"role": row["role"], "alive": None})
    alive = [node["address"] for node in cluster.get("nodes", []) if node["alive"]]
    up = active and row["address"] in alive
    detail = row["unit"] + (" active" if active else " not running")
    metrics: dict = {"role": row["role"], "alive": up}
    if is_head:
        totals = cluster.get("totals") or {}
        if "error" in cluster:
            detail += f"; {cluster['error']}"
        else:
            detail += (f"; {cluster['alive']}/{row['nodes_expected']} nodes alive, CPU {totals.get('CPU', 0)}, "
                       f"GPU {totals.get('GPU', 0)}, Ray {cluster['ray_version']}, {row['dashboard_url']}")
        metrics.update({"nodes_alive": cluster.get("alive"), "nodes_expected": row["nodes_expected"],
                        "cpus": totals.get("CPU") if "error" not in cluster else None,
                        "gpus": totals.get("GPU", 0) if "error" not in cluster else None,
                        "dashboard_url": row["dashboard_url"], "version": cluster.get("ray_version")})
    elif active and not up:
        detail += f"; the head does not list {row['address']} alive" + (
            f" ({cluster['error']})" if "error" in cluster else "")
    summary = {key: value for key, value in metrics.items() if key not in ("role", "alive")}
    return _row(host, row, UP if up else DOWN, detail + _stale_note(results["units"]), metrics, summary)


def slurm_step(host: str, row: dict, results: dict) -> tuple[bool, str]:
    """(runs, what to say) for a row whose service is a SLURM job step (row `step`: {component, service}, results
    `steps`: squeue_steps_argv's answer); (True, "") for any other row."""
    if not row.get("step"):
        return True, ""
    answer = results.get("steps") or {}
    if answer.get("rc") != 0:
        return False, f"; squeue: {(answer.get('stderr') or answer.get('error') or 'no answer').strip()}"
    step = marked_steps(parse_steps(answer.get("stdout") or ""), row["step"]["component"], host).get(
        row["step"]["service"])
    return (True, f"; job step {step['id']}") if step else (False, "; no job step runs it")


def openenv_server(host, row, results, answers) -> dict:
    status = results["health"].get("status")
    step_runs, step_note = slurm_step(host, row, results)
    return _row(host, row, UP if status == 200 and step_runs else DOWN,
                f"{row['url']}/health " + (str(status) if status is not None else "no answer") + step_note,
                {"role": "server", "url": row["url"], "healthy": status == 200},
                {"servers_up": int(status == 200 and step_runs), "servers": 1})


def envoy(host, row, results, answers) -> dict:
    answer = results["clusters"]
    summary = judge_backends(answer["backends"], row["backends"]) if "backends" in answer else None
    problems = [answer["error"]] if summary is None else (
        [f"not in the cluster: {', '.join(summary['missing'])}"] if summary["missing"] else []) + (
        [f"unhealthy: {'; '.join(summary['unhealthy'])}"] if summary["unhealthy"] else [])
    healthy = summary["healthy"] if summary else 0
    step_runs, step_note = slurm_step(host, row, results)
    detail = f"backends healthy {healthy}/{len(row['backends'])}" + "".join(f"; {p}" for p in problems) + step_note
    return _row(host, row, DOWN if problems or not step_runs else UP, detail, {
        "role": "envoy", "url": row["url"], "backends_healthy": healthy, "backends_total": len(row["backends"])},
        {"backends_healthy": healthy, "backends_total": len(row["backends"]), "urls": [row["url"]]})


def parameter_server(host, row, results, answers) -> dict:
    """A process that exited 0 did its part of the job; one stopped by a stop is stopped; a failed one is DOWN.
    The exit file is written by each unit's ExecStopPost: SERVICE_RESULT, EXIT_CODE and EXIT_STATUS."""
    units = results["units"].get("units", [])
    active = units[0]["active_state"] if units else "inactive"
    ended = (results["exit"].get("text") or "").split()
    if active in ("active", "activating", "deactivating"):
        state = UP
    elif "error" in results["exit"]:
        state = "not started"
    elif ended == ["success", "exited", "0"]:
        state = "done"
    elif ended[:2] == ["success", "killed"] or ended == ["success", "exited", "143"]:
        # 143: the docker command of a container stopped by SIGTERM (128 + 15), counted a success by its unit.
        state = "stopped"
    else:
        state = DOWN
    where = " in a container" if row.get("runtime") == "docker" else ""
    detail = f"{row['kind']}{where}, scheduler {row['scheduler']}" + (
        "" if "error" in results["exit"] or active == "active" else f", last run: {' '.join(ended)}")
    return _row(host, row, state, detail, {"name": row["name"], "kind": row["kind"], "unit": row["unit"]},
                {"processes_up": int(state in (UP, "done")), "processes_expected": 1,
                 "processes_done": int(state == "done")})


def firewall(host, row, results, answers) -> dict:
    """Each owned chain must exist, with every declared jump into it and the rules the last deploy saved: a lost
    jump leaves every protected port open, and nothing else in status would show it."""
    problems, counts = [], {}
    for chain in row["chains"]:
        answer = results[chain]
        if "error" in answer:
            problems.append(f"{chain} cannot be read: {answer['error']}")
        elif not answer["exists"]:
            problems.append(f"{chain} is missing, so its ports are unprotected")
        else:
            counts[chain] = answer["rules"]
            problems += [f"{chain}: no jump {jump}, so its ports are unprotected" for jump in answer["missing_jumps"]]
            if answer["drift"]:
                problems.append(f"{chain}: its {answer['rules']} rules differ from the ones the last deploy saved")
    fix = (f"systemctl restart {row['boot_unit']} (it restores the saved rules and jumps), or "
           if row.get("boot_unit") else "") + "gymfleet deploy --tags firewall"
    detail = (f"{'; '.join(problems)}; fix: {fix}" if problems
              else ", ".join(f"{chain} {count} rules" for chain, count in counts.items()))
    return _row(host, row, DOWN if problems else UP, detail, {"rules": counts, "problems": problems})


def services(host, row, results, answers) -> dict:
    """A component judged from its declaration alone: every unit a deploy installed is active, and every declared
    health probe answers. For systems without a judge of their own."""
    answer = results["units"]
    if "error" in answer:
        return _row(host, row, DOWN, f"units unreadable: {answer['error']}", {"units": 0, "active": 0})
    units = answer.get("units", [])
    down = [u for u in units if u["active_state"] != "active"]
    sick = [u for u in units if u.get("health") and not u["health"].get("ok")]
    problems = [f"{u['unit']} is {u['active_state']} ({u['sub_state']})" for u in down]
    problems += [f"{u['unit']} is unhealthy: {u['health']['detail']}" for u in sick]
    metrics = {"units": len(units), "active": sum(u["active_state"] == "active" for u in units)}
    if not units:
        return _row(host, row, DOWN, f"no unit of {row['unit_component']} is installed; fix: gymfleet deploy",
                    metrics)
    if problems:
        first = (down + sick)[0]["unit"]
        return _row(host, row, DOWN, f"{'; '.join(problems)}; fix: journalctl -u {first}, then gymfleet start",
                    metrics)
    return _row(host, row, UP, f"{len(units)}/{len(units)} units active and healthy{_stale_note(answer)}", metrics)


def listeners(host, row, results, answers) -> dict:
    """Every socket a gymfleet service listens on beyond loopback must be in the host's port plan: a port that
    upstream software opens on its own is refused to non-members by the firewall, but nobody decided it."""
    answer = results["sockets"]
    if "error" in answer:
        return _row(host, row, DOWN, f"{answer['error']}; fix: {answer['fix']}", {"listeners": None, "undeclared": []})
    strays = undeclared(answer["listeners"], answer["plan"])
    metrics = {"listeners": len(answer["listeners"]), "undeclared": strays}
    if strays:
        found = ", ".join(f"{e['unit']} ({e['process']}, pid {e['pid']}) on {e['address']}:{e['port']}/{e['proto']}"
                          for e in strays)
        return _row(host, row, DOWN, f"listening on ports no declaration names: {found}; fix: declare the port in "
                    "the component's settings or bind it to loopback", metrics)
    return _row(host, row, UP, f"{len(answer['listeners'])} listening sockets, all in the port plan", metrics)


def stalled_job(rows: list[dict]) -> list[dict]:
    """The rows, with each running parameter-server process made DOWN when another process of the job failed
    or was stopped: ps-lite has no failover, so a worker waits forever for a lost server (and every process of
    a dist_sync round for a lost worker). One inventory holds one job."""
    lost = [row for row in rows if row["system"] == "parameter_server" and row["state"] in (DOWN, "stopped")]
    if not lost:
        return rows
    names = ", ".join(f"{row['component']} on {row['host']} ({row['state']})" for row in lost)
    lost_names = [row["metrics"]["name"] for row in lost]
    stalled = []
    for row in rows:
        if row["system"] == "parameter_server" and row["state"] == UP:
            row = {**row, "state": DOWN, "metrics": {**row["metrics"], "stalled_by": lost_names},
                   "summary": {**row.get("summary", {}), "processes_up": 0},
                   "detail": f"{row['detail']}; stalled: runs, but the job cannot go on without {names}; fix: "
                             "restart the job (gymfleet restart --tags parameter_server), or stop it"}
        stalled.append(row)
    return stalled


JUDGES = {judge.__name__: judge for judge in (tailscale, python_env, redis, omniboxes_node, omniboxes_master,
                                              ray_node, openenv_server, envoy, parameter_server, firewall,
                                              listeners, services)}


def address_row(host: str, address: str, addresses: list[str]) -> dict | None:
    """A DOWN row when the cluster address the probes used (cached by the last run) is on no interface."""
    if not address or not addresses or address in addresses:
        return None
    return {"host": host, "component": "cluster address", "state": DOWN, "system": "cluster",
            "detail": f"{address} (remembered from the last run) is on no interface here ({', '.join(addresses)}); "
                      "fix: deploy again, which decides the address anew",
            "metrics": {"address": address, "interfaces": addresses}}


def report(hosts: list[str], answered: dict, addresses: dict) -> dict:
    """{rows, unanswered} from the host_status results of the hosts that answered (host -> result)."""
    rows = []
    answers = Answers(answered, frozenset(hosts))
    for host in hosts:
        result = answered.get(host)
        if not result:
            continue
        moved = address_row(host, addresses.get(host) or "", result.get("addresses") or [])
        rows += [moved] if moved else []
        for check in result.get("checks", []):
            judge = JUDGES.get(check["row"].get("judge"))
            if judge is None:
                raise ValueError(f"check {check['id']} of {host}: no judge {check['row'].get('judge')!r}; "
                                 f"known: {', '.join(JUDGES)}")
            rows.append(judge(host, check["row"], check["results"], answers))
    rows = stalled_job(rows)
    unanswered = [h for h in hosts if h not in answered]
    rows += [{"host": host, "component": "host", "state": DOWN, "system": "cluster", "metrics": {},
              "detail": "out of reach, or failed before it answered (the run's errors say why)"} for host in unanswered]
    return {"rows": rows, "unanswered": unanswered}
