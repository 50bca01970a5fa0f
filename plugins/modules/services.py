#!/usr/bin/python
"""Converge, probe, stop or remove one component's services on a host, from their declarations."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: services
short_description: Run a component's services from declarations, restarting exactly what is stale
version_added: 0.2.0
author: gymfleet developers
description:
  - The engine every gymfleet role hands its services to. A service is declared as data (program and
    arguments, environment, user, files it reads, ports, health probe, order); the module turns each into a
    systemd unit marked with the O(component) it belongs to.
  - With O(state=started) it writes the units that differ (each verified with C(systemd-analyze verify)
    before it replaces anything), stops, disables and removes the component's units that are no longer
    declared, reloads systemd once, restarts exactly the services whose running process was started from
    another definition, starts the rest in order (O(services[].after)), O(parallel) at a time, and waits for
    every health probe under one O(timeout).
  - Staleness is judged from the host, not from this run. Every start of a unit (by this module, by systemd's
    own restart, at boot) first records, under C(/run/gymfleet/services), the hash of the declaration and of
    the content of O(services[].files) and O(services[].watch) it starts from, with the start's invocation ID.
    A service whose current run has no such record, or another hash, is restarted. So a deploy that was
    interrupted after a unit or a file changed and before the restart is put right by the next run.
  - A service that dies while starting fails the call at once, with its state and the last lines of its
    journal since the start, instead of waiting out the timeout.
  - Only units carrying this component's mark are ever removed; a unit file of the same name that is not
    this component's is refused before any change.
options:
  component:
    description:
      - The component the services belong to, such as C(redis) or C(openenv). Removal of services that are no
        longer declared is limited to this component's units.
      - Required unless O(calls) is given.
    type: str
  calls:
    description:
      - Several components' calls run in turn in this one module run, each a dictionary of this module's other
        options (O(component) required in each), so a host is reached once for all of them. The first call that
        fails ends the run, its message naming its component.
      - The lifecycle playbooks hand the calls of a stage over this way (see O(defer)); a role's own call gives
        O(component) instead.
    type: list
    elements: dict
    default: []
  defer:
    description:
      - Handled on the controller. When the variable C(gymfleet_engine_batch) is true (the lifecycle playbooks set
        it), the call is not run now; it is queued for this host, and runs in the same module run as the host's
        next call without O(defer), or at the end of the stage (O(flush)). The task then reports C(deferred).
      - Give it only to a call whose result no later task reads. The queue lives in a file readable by the
        controller's user alone, inside Ansible's local temporary directory of the run, and goes with it.
    type: bool
    default: false
  flush:
    description:
      - Handled on the controller. Run the calls queued for this host (O(defer)) now, in one module run; skipped,
        without reaching the host, when none is queued. Takes no other option.
    type: bool
    default: false
  services:
    description: The component's services on this host. An empty list with O(prune) removes them all.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Unit name without C(.service), such as C(redis-server@6379) or C(openenv@8000).
        type: str
        required: true
      description:
        description: The unit's Description.
        type: str
        default: ""
      argv:
        description: Program (absolute path) and arguments; quoted for systemd so the program gets exactly these.
        type: list
        elements: str
        required: true
      environment:
        description: Environment variables of the process.
        type: dict
        default: {}
      environment_files:
        description: Files of C(NAME=value) lines read by systemd at start (EnvironmentFile).
        type: list
        elements: str
        default: []
      user:
        description: User the process runs as; root when unset.
        type: str
      group:
        description: Group of the process; the user's name when unset.
        type: str
      working_directory:
        description: Directory the process starts in.
        type: str
      ports:
        description: TCP ports the service listens on, reported back for status and firewall claims.
        type: list
        elements: int
        default: []
      health:
        description:
          - How to tell the service is ready, one of C(http) (a URL; C(expect) the status, default 200, and
            C(headers)), C(tcp) (C(host:port) accepting connections) or C(command) (an argv exiting 0).
            C(timeout) bounds one probe (default 3 s).
          - Without a probe a service counts as up once systemd says it is active.
        type: dict
      after:
        description:
          - Services (or other units) this one starts after. Services of the same call are started in that order
            and waited for; other names only order through systemd.
        type: list
        elements: str
        default: []
      wants:
        description: Units started along with this one (Wants).
        type: list
        elements: str
        default: []
      requires:
        description: Units this one cannot run without (Requires).
        type: list
        elements: str
        default: []
      part_of:
        description: Units whose stop or restart does the same to this one (PartOf).
        type: list
        elements: str
        default: []
      type:
        description: systemd's service type; a C(oneshot) counts as up once it has run (with C(RemainAfterExit)).
        type: str
        choices: [exec, simple, notify, forking, oneshot]
        default: exec
      restart:
        description: systemd's Restart policy.
        type: str
        choices: ["no", on-failure, always, on-abnormal]
        default: on-failure
      restart_sec:
        description: Seconds systemd waits before a restart; fractions such as 0.2 are allowed.
        type: float
        default: 3
      files:
        description:
          - Files on the host that belong to this service alone (its configuration, its secrets). Their content is
            part of the definition, so a changed file restarts the service; they are removed with the service.
        type: list
        elements: str
        default: []
      watch:
        description:
          - Files or directories the process reads that it shares with others (code, a Python environment's
            requirements). Their content is part of the definition; they are never removed. Bytecode caches in a
            directory are left out.
        type: list
        elements: str
        default: []
      unit_options:
        description: More [Unit] directives; a list value repeats the directive.
        type: dict
        default: {}
      service_options:
        description: More [Service] directives (KillMode, TimeoutStopSec, ExecStartPost, ...).
        type: dict
        default: {}
      enabled:
        description: Whether the service starts at boot.
        type: bool
        default: true
      tolerated_restarts:
        description:
          - Automatic restarts by systemd that a start may take before it counts as failed, for a program whose
            first attempt can fail for a while (a Ray worker whose head is still busy). Zero fails at the first death.
        type: int
        default: 0
      cpus:
        description: CPUs the service asks its runtime for (a SLURM step's C(--cpus-per-task)); 0 leaves it to the
          runtime. systemd ignores it.
        type: int
        default: 0
  runtime:
    description:
      - C(systemd) runs each service as a unit on the host (root). C(slurm) runs each as a job step of the user's
        allocation on O(slurm.node), launched from the node the module runs on (C(srun --overlap), detached), as
        the user the module runs as, with no unit, package or firewall change.
      - A step's name carries the component's mark and the definition's hash (C(gymfleet.<component>.<name>.<hash>)),
        so a step started from another definition is restarted, and only this component's steps on this node are
        cancelled.
      - With C(slurm), O(chains), O(displace) and O(adopt) do not apply; O(layout) and O(environments) are laid out
        by the user on the shared filesystem.
    type: str
    choices: [systemd, slurm]
    default: systemd
  installed:
    description:
      - Act on the component's units as a deploy installed them, without O(services) - each unit carries its
        declaration's order among them, health probe and ports - so a component can be started, restarted, stopped
        or probed without its role's variables (the generic entry points of the lifecycle playbooks).
      - Only with O(state=started), O(state=restarted), O(state=stopped) or O(state=probed) and the C(systemd)
        runtime; nothing is written, removed, enabled or disabled, and O(services), O(layout), O(environments),
        O(chains) and O(displace) must be empty.
    type: bool
    default: false
  slurm:
    description: Where the steps run, with O(runtime=slurm).
    type: dict
    suboptions:
      job: {description: The allocation's job id (C(SLURM_JOB_ID))., type: str, required: true}
      node: {description: The node the services run on; it must be one of the job's., type: str, required: true}
      log_dir:
        description:
          - A directory on the filesystem every node shares; each service's output goes to
            C(<node>.<service>.log) there. It is checked to be shared (a marker written here, read on the node)
            before a step starts.
        type: path
        required: true
  state:
    description:
      - C(started) converges and waits for health; C(restarted) does the same and restarts every service;
        C(stopped) stops the services in reverse order (and any of the component's units no longer declared), and
        forgets the exit status of those that end with a failure code on SIGTERM;
        C(probed) only reports; C(installed) writes the units that differ and removes those no longer declared
        but starts, stops and restarts nothing (for a job whose start order spans hosts; each service's C(stale)
        tells whether its process runs an older definition), and with O(runtime=slurm), which has no unit to
        write, runs only the checks a start makes first (the node is the job's, O(slurm.log_dir) is shared with
        it, no other process holds the ports of the services not running); C(absent) stops and removes every unit
        of the component.
    type: str
    choices: [started, restarted, stopped, probed, installed, absent]
    default: started
  prune:
    description: With O(state=started), stop and remove the component's units that are not in O(services).
    type: bool
    default: true
  apply_changes:
    description:
      - With O(state=started) or O(state=restarted), write the units that differ and restart the services that are
        stale. False starts what does not run as it is installed and changes nothing else (the start playbook).
    type: bool
    default: true
  timeout:
    description: Seconds for all the starts and health probes of one call together.
    type: int
    default: 120
  parallel:
    description:
      - At most this many services starting at once, whatever the runtime; each starts as soon as the services it
        comes after (O(services[].after)) are up.
    type: int
    default: 4
  adopt:
    description:
      - Unit names (shell patterns, such as C(omniboxes-*)) whose files gymfleet wrote before units carried a
        component mark. Those files count as this component's, so an upgrade removes the ones no longer declared.
    type: list
    elements: str
    default: []
  displace:
    description:
      - Units that are not gymfleet's and must not run beside these services, such as Debian's
        C(redis-server.service) beside gymfleet's Redis instances. With O(state=started) or O(state=restarted)
        they are stopped and disabled first, and a failure of theirs is forgotten so the host is not left
        degraded; their unit files and data stay.
    type: list
    elements: str
    default: []
  chains:
    description:
      - iptables chains the component owns (a firewall, a SNAT), each with the options of
        M(gymfleet.cluster.iptables_chain), brought to their O(chains[].state) first, before the layout and the
        services, so a boot unit that restores them from O(chains[].save_path) is judged against the saved rules
        of this call.
      - With every O(state) but O(state=probed); O(state=absent) removes them whatever their own state.
    type: list
    elements: dict
    default: []
    suboptions:
      chain: {description: The chain's name., type: str, required: true}
      table: {description: Its table., type: str, choices: [filter, nat, mangle, raw], default: filter}
      rules: {description: Its rules without C(-A <chain>), in order., type: list, elements: str, default: []}
      jumps:
        description: Where traffic enters it; in the parent chains named here, only these jumps into it remain.
        type: list
        elements: dict
        default: []
        suboptions:
          chain: {description: The parent chain., type: str, required: true}
          position: {description: Where a missing jump is inserted., type: int, default: 1}
          match: {description: Matches before C(-j)., type: str, default: ""}
      state: {description: C(absent) removes the jumps and the chain., type: str, choices: [present, absent],
              default: present}
      ip_version: {description: Which family., type: str, choices: [ipv4, ipv6], default: ipv4}
      save_path: {description: A copy of the rules for C(iptables-restore --noflush) (removed when absent)., type: path}
  layout:
    description:
      - What the services need on the host before anything starts, laid out in the same call (packages, users,
        directories, files, and files to remove), with the options of M(gymfleet.cluster.host_files) (its
        O(ignore:files[].src) and O(ignore:files[].template) resolved on the controller by this module's action
        plugin).
      - Laid out with every O(state) but O(state=probed) and O(state=absent).
      - A file written here that a service lists in O(services[].files) or O(services[].watch) makes that
        service stale, so it restarts in this call.
      - Files with a validate command are written after O(environments), whose programs (such as Envoy from
        its wheel) often are the validators; a refusal fails the call with RV(rejected) before any service
        changes.
    type: dict
  environments:
    description:
      - Python environments laid out after O(layout) and before the services, each with the options of
        M(gymfleet.cluster.python_env), plus O(environments[].wheelhouse_src) and O(environments[].versions_of).
      - Like O(layout), with every O(state) but O(state=probed) and O(state=absent).
    type: list
    elements: dict
    default: []
    suboptions:
      path: {description: Where the environment lives., type: path, required: true}
      kind: {description: C(venv) or C(conda)., type: str, choices: [venv, conda], default: venv}
      python: {description: Interpreter that creates a venv., type: path, default: /usr/bin/python3}
      packages: {description: Pinned requirement lines., type: list, elements: str, default: []}
      installer: {description: C(auto) (uv when on PATH), C(uv) or C(pip)., type: str, choices: [auto, uv, pip],
                  default: auto}
      conda_executable: {description: Path to conda, mamba or micromamba., type: str, default: ""}
      conda_python: {description: Python version of a new conda environment., type: str, default: "3.11"}
      wheelhouse:
        description: A directory of wheels on the host; when set, the install uses only it.
        type: path
      wheelhouse_src:
        description:
          - A directory of wheels on the controller, copied to O(environments[].wheelhouse) by the action plugin
            with M(ansible.builtin.copy) (checksums first, only the wheels that differ are sent), before the
            module runs; a wheel that changed reinstalls the environment. Empty for none.
        type: str
        default: ""
      wheels:
        description: The wheelhouse's file names, recorded with the pins (filled in from
          O(environments[].wheelhouse_src) by the action plugin).
        type: list
        elements: str
        default: []
      force_install: {description: Install even when the record matches., type: bool, default: false}
      install_args: {description: More arguments for pip or uv pip., type: str, default: ""}
      owner: {description: Owner of the environment's files., type: str, default: root}
      system_packages: {description: Debian packages a venv needs., type: list, elements: str,
                        default: [python3-venv]}
      versions_of:
        description: Distributions whose installed versions RV(environments[].versions) reports, with Python's.
        type: list
        elements: str
        default: []
  unit_dir:
    description: Directory of the units.
    type: path
    default: /etc/systemd/system
attributes:
  check_mode:
    support: full
    description:
      - Reports the files it would write or remove, and the services it would start, restart or stop.
      - While O(layout) would install packages or an environment would be created, it reports those and plans no
        service (their programs are not there yet to verify units against).
  diff_mode:
    support: full
    description: The unit files before and after.
notes:
  - A service started by hand from a unit file edited by hand, or whose record under C(/run) was deleted, counts
    as stale and is restarted by the next call.
requirements:
  - systemd (C(systemctl), C(systemd-analyze), C(journalctl)) with O(runtime=systemd)
  - SLURM's C(srun), C(squeue) and C(scancel) with O(runtime=slurm)
"""

EXAMPLES = r"""
- name: Start what a deploy installed for the component, in its order, waiting for each unit's health
  gymfleet.cluster.services:
    component: redis
    installed: true
    state: started

- name: Run two Redis instances, removing any other of the component
  gymfleet.cluster.services:
    component: redis
    services:
      - name: redis-server@6379
        argv: [/usr/bin/redis-server, /etc/redis/redis-6379.conf]
        type: notify
        user: redis
        files: [/etc/redis/redis-6379.conf]
        ports: [6379]
        health: {tcp: "127.0.0.1:6379"}
      - name: redis-server@6380
        argv: [/usr/bin/redis-server, /etc/redis/redis-6380.conf]
        type: notify
        user: redis
        files: [/etc/redis/redis-6380.conf]
        ports: [6380]
        health: {tcp: "127.0.0.1:6380"}

- name: Ask how the environment servers are, changing nothing
  gymfleet.cluster.services:
    component: openenv
    services: "{{ openenv_services }}"
    state: probed
  register: openenv_report

- name: Stop a component's services in reverse order
  gymfleet.cluster.services:
    component: omniboxes
    services: "{{ omniboxes_services }}"
    state: stopped
"""

RETURN = r"""
chains:
  description: Each of O(chains), as M(gymfleet.cluster.iptables_chain) returns it, with its C(chain) and C(table).
  returned: always
  type: list
  elements: dict
  sample:
    - {chain: GYMFLEET-INPUT, table: filter, changed: false, rules: ["-p tcp -m tcp --dport 6379 -j DROP"]}
layout:
  description: What O(layout) changed, as M(gymfleet.cluster.host_files) returns it (installed, users, created,
    written, removed); absent without O(layout).
  returned: when O(layout) is given
  type: dict
environments:
  description: Each of O(environments), as M(gymfleet.cluster.python_env) returns it, with its C(path) and, when
    O(environments[].versions_of) asks, C(versions) (C(python) and each distribution's version, null when missing).
  returned: always
  type: list
  elements: dict
  sample:
    - {path: /opt/gymfleet/ray/venv, created: false, installed: false, exists: true,
       python: /opt/gymfleet/ray/venv/bin/python, requirements: /opt/gymfleet/ray/venv/gymfleet-requirements.txt,
       versions: {python: 3.11.2, ray: 2.60.0}}
services:
  description: Every declared service after the call, in start order.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: The service's name., type: str}
    unit: {description: The systemd unit., type: str}
    active_state: {description: systemd's ActiveState (active, inactive, failed, activating, ...)., type: str}
    sub_state: {description: systemd's SubState (running, dead, auto-restart, ...)., type: str}
    main_pid: {description: The main process, 0 when none., type: int}
    restarts: {description: How often systemd restarted it since it was started (NRestarts)., type: int}
    enabled: {description: Whether it starts at boot., type: bool}
    stale: {description: Whether the running process was started from another definition., type: bool}
    ports: {description: The ports it declares., type: list, elements: int}
    health:
      description: The probe's answer (C(ok), C(detail)); null when the process does not run.
      type: dict
  sample:
    - {name: openenv@8000, unit: openenv@8000.service, active_state: active, sub_state: running, main_pid: 812,
       restarts: 0, enabled: true, stale: false, ports: [8000],
       health: {ok: true, detail: "http://10.0.0.2:8000/health answered 200"}}
written:
  description: Unit files written (or that would be, in check mode).
  returned: always
  type: list
  elements: str
removed:
  description: Units of the component that were not declared and were stopped and removed.
  returned: always
  type: list
  elements: str
started:
  description: Services that were not running and were started.
  returned: always
  type: list
  elements: str
restarted:
  description: Services that were restarted (stale, or O(state=restarted)).
  returned: always
  type: list
  elements: str
stopped:
  description: Services that were stopped.
  returned: always
  type: list
  elements: str
displaced:
  description: Units of O(displace) that were stopped, disabled or reset (or would be, in check mode).
  returned: always
  type: list
  elements: str
strays:
  description: With O(state=probed), units of the component that run although they are not declared.
  returned: always
  type: list
  elements: str
results:
  description: With O(calls), or when queued calls ran with this one, each call's own result (the keys above) with
    its C(component), in the order they ran.
  returned: when O(calls) is given or calls were queued
  type: list
  elements: dict
deferred:
  description: The call was queued (O(defer)) and runs with the host's next call or at the end of the stage.
  returned: when deferred
  type: bool
rejected:
  description: The file of O(layout) whose validate command refused its new content, as
    M(gymfleet.cluster.host_files) returns it.
  returned: failure, when a validate command refused
  type: dict
journal:
  description: On failure, the failing unit's last journal lines since the start.
  returned: failure
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.debian_packages import PackageError
from ansible_collections.gymfleet.cluster.plugins.module_utils.host_layout import (
    LAYOUT_OPTIONS,
    LayoutError,
    Rejected,
    converge_layout,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.iptables import CHAIN_OPTIONS, ChainError, converge_chain
from ansible_collections.gymfleet.cluster.plugins.module_utils.python_envs import (
    ENVIRONMENT_OPTIONS,
    EnvError,
    converge_environment,
    installed_versions,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.services import (
    COMPONENT_RE,
    Deadline,
    DeclarationError,
    normalize_all,
    probe,
    start_levels,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.slurm_steps import (
    SlurmError,
    SlurmRuntime,
    converge_steps,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.systemd_services import (
    ServiceFailure,
    SystemdRuntime,
    unit_name,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.unit_file import UnitError

SERVICE_OPTIONS = {
    "name": {"type": "str", "required": True},
    "description": {"type": "str", "default": ""},
    "argv": {"type": "list", "elements": "str", "required": True},
    "environment": {"type": "dict", "default": {}},
    "environment_files": {"type": "list", "elements": "str", "default": []},
    "user": {"type": "str"},
    "group": {"type": "str"},
    "working_directory": {"type": "str"},
    "ports": {"type": "list", "elements": "int", "default": []},
    "health": {"type": "dict"},
    "after": {"type": "list", "elements": "str", "default": []},
    "wants": {"type": "list", "elements": "str", "default": []},
    "requires": {"type": "list", "elements": "str", "default": []},
    "part_of": {"type": "list", "elements": "str", "default": []},
    "type": {"type": "str", "choices": ["exec", "simple", "notify", "forking", "oneshot"], "default": "exec"},
    "restart": {"type": "str", "choices": ["no", "on-failure", "always", "on-abnormal"], "default": "on-failure"},
    "restart_sec": {"type": "float", "default": 3},
    "files": {"type": "list", "elements": "str", "default": []},
    "watch": {"type": "list", "elements": "str", "default": []},
    "unit_options": {"type": "dict", "default": {}},
    "service_options": {"type": "dict", "default": {}},
    "enabled": {"type": "bool", "default": True},
    "tolerated_restarts": {"type": "int", "default": 0},
    "cpus": {"type": "int", "default": 0},
}
SLURM_OPTIONS = {"job": {"type": "str", "required": True}, "node": {"type": "str", "required": True},
                 "log_dir": {"type": "path", "required": True}}
ENVIRONMENT_ENTRY_OPTIONS = {**ENVIRONMENT_OPTIONS, "wheelhouse_src": {"type": "str", "default": ""},
                             "versions_of": {"type": "list", "elements": "str", "default": []}}
RUNNING = ("active", "activating", "reloading")
# The states that lay out the layout and the environments before the services (a deploy with its services
# stopped still lays them out).
LAYING_OUT = ("started", "restarted", "installed", "stopped")


def converge_chains(module: AnsibleModule) -> tuple[list[dict], list[dict]]:
    """The component's chains, each to its own state (every one absent with the component), before anything else."""
    if module.params["state"] == "probed":
        return [], []
    reports, diffs = [], []
    for entry in module.params["chains"]:
        entry = {**entry, "state": "absent"} if module.params["state"] == "absent" else entry
        report = converge_chain(module, entry)
        diff = report.pop("diff", None)
        if diff and module._diff:
            diffs.append({**diff, "before_header": f"{entry['table']} {entry['chain']}",
                          "after_header": f"{entry['table']} {entry['chain']}"})
        reports.append({"chain": entry["chain"], "table": entry["table"], **report})
    return reports, diffs


def _merge(total: dict, part: dict) -> dict:
    return {key: total.get(key, []) + values for key, values in part.items()}


def lay_out(module: AnsibleModule) -> tuple[dict, list[dict]]:
    """The layout, then each environment, then the layout's files that have a validate command, which is often a
    program of the environment (Envoy from its wheel)."""
    params, check = module.params, module.check_mode
    result, diffs = {"environments": []}, []
    if params["state"] not in LAYING_OUT:
        return result, diffs
    layout = params["layout"]
    validated = {}
    if layout is not None:
        validated = {kind: [f for f in layout[kind] if f.get("validate")] for kind in ("files", "secret_files")}
        first = {**layout, **{kind: [f for f in layout[kind] if not f.get("validate")] for kind in validated}}
        result["layout"], diffs = converge_layout(first, check, module.run_command)
    for entry in params["environments"]:
        report, diff = converge_environment(entry, check, module.run_command)
        if diff and module._diff:
            diffs.append(diff)
        if entry["versions_of"] and report["exists"]:
            report["versions"] = installed_versions(report["python"], entry["versions_of"], module.run_command)
        result["environments"].append(report)
    if any(validated.values()):
        last, last_diffs = converge_layout({"packages": [], "users": [], "directories": [], **validated}, check,
                                           module.run_command)
        result["layout"], diffs = _merge(result["layout"], last), diffs + last_diffs
    return result, diffs


def _report(runtime: SystemdRuntime, specs: list[dict], hashes: dict, check_health: bool) -> list[dict]:
    states = runtime.show([unit_name(s) for s in specs])
    report = []
    for level in start_levels(specs):
        for spec in level:
            unit = unit_name(spec)
            state = states[unit]
            running = state["active_state"] in RUNNING
            health = probe(spec, runtime.module.run_command) if check_health and state["active_state"] == "active" \
                else None
            report.append({
                "name": spec["name"], "unit": unit, "active_state": state["active_state"],
                "sub_state": state["sub_state"], "main_pid": state["main_pid"], "restarts": state["restarts"],
                "enabled": state["enabled"], "ports": spec["ports"],
                "stale": running and runtime.is_stale(unit, state, hashes[unit]),
                "health": health,
            })
    return report


def converge(module: AnsibleModule, runtime: SystemdRuntime, specs: list[dict], touch_enablement: bool = True) -> dict:
    params = module.params
    state = params["state"]
    deadline = Deadline(params["timeout"])
    plan = runtime.plan(specs, prune=params["prune"] or state == "absent")
    if not params["apply_changes"] and state in ("started", "restarted"):
        plan.update(write=[], remove=[], diff=[])
    result = {"changed": False, "written": [w["unit"] for w in plan["write"]],
              "removed": [r["unit"] for r in plan["remove"]], "started": [], "restarted": [], "stopped": [],
              "strays": [], "displaced": []}
    if module._diff and plan["diff"]:
        result["diff"] = plan["diff"]

    if state == "probed":
        result["strays"] = [r["unit"] for r in plan["remove"] if plan["units"][r["unit"]]["active_state"] in RUNNING]
        result["services"] = _report(runtime, specs, plan["hashes"], check_health=True)
        result["written"], result["removed"] = [], []
        result.pop("diff", None)
        return result

    if state == "stopped":
        strays = [r["unit"] for r in plan["remove"]]
        result["stopped"] = runtime.stop(strays + [unit_name(s) for s in specs])
        result["written"], result["removed"] = [], []
        result.pop("diff", None)
        result["changed"] = bool(result["stopped"])
        result["services"] = _report(runtime, specs, plan["hashes"], check_health=False)
        return result

    need_reload = bool(plan["write"] or plan["remove"]) or any(s["need_reload"] for s in plan["units"].values())
    actions = []
    if state not in ("absent", "installed"):
        for spec in specs:
            unit = unit_name(spec)
            current = plan["units"][unit]
            running = current["active_state"] in RUNNING
            stale = params["apply_changes"] and running and runtime.is_stale(unit, current, plan["hashes"][unit])
            if state == "restarted" or stale:
                actions.append((spec, "restart"))
            elif not running:
                actions.append((spec, "start"))
    result["started"] = [unit_name(s) for s, a in actions if a == "start"]
    result["restarted"] = [unit_name(s) for s, a in actions if a == "restart"]

    if not module.check_mode:
        runtime.write(plan)
        runtime.remove(plan["remove"])
        if need_reload:
            runtime.daemon_reload()
    if state != "absent":
        result["displaced"] = runtime.displace(params["displace"])
        enabled_changed = runtime.set_enabled(specs, plan["units"]) if touch_enablement else []
        if not module.check_mode and actions:
            runtime.start(actions, deadline, params["parallel"])
    else:
        enabled_changed = []
    result["changed"] = bool(result["written"] or result["removed"] or actions or enabled_changed
                             or result["displaced"])
    result["services"] = [] if state == "absent" or module.check_mode else _report(
        runtime, specs, plan["hashes"], check_health=False)
    return result


INSTALLED_STATES = ("started", "restarted", "stopped", "probed")


def run_installed(module: AnsibleModule, component: str) -> dict:
    """installed=true: the component's units as a deploy left them, started, restarted, stopped or probed in the
    order and with the health their files carry; nothing is written, removed, enabled or disabled."""
    params = module.params
    given = [key for key in ("services", "layout", "environments", "chains", "displace") if params[key]]
    if params["state"] not in INSTALLED_STATES or given or params["runtime"] != "systemd":
        module.fail_json(msg=f"component {component}: installed=true takes state {', '.join(INSTALLED_STATES)} with "
                             f"the systemd runtime and no {', '.join(given) or 'declarations'}; fix: drop "
                             "installed to converge declarations")
    params.update(apply_changes=False, prune=False)
    runtime = SystemdRuntime(module, component, params["unit_dir"], params["adopt"])
    try:
        specs = runtime.installed_specs()
        return converge(module, runtime, specs, touch_enablement=False)
    except (ServiceFailure, DeclarationError, UnitError, ValueError) as exc:
        module.fail_json(msg=f"component {component}: {exc}", **getattr(exc, "details", {}))


def run_call(module: AnsibleModule) -> dict:
    """One component's call, from module.params: chains, layout, environments, then its services."""
    component = module.params["component"]
    if not COMPONENT_RE.match(component):
        module.fail_json(msg=f"component {component!r}: use lower-case letters, digits, - and _")
    if module.params["installed"]:
        return run_installed(module, component)
    try:
        specs = normalize_all(module.params["services"] if module.params["state"] != "absent" else [])
    except DeclarationError as exc:
        module.fail_json(msg=f"component {component}: {exc}")
    try:
        chains, chain_diffs = converge_chains(module)
        prepared, diffs = lay_out(module)
    except (ChainError, LayoutError, PackageError, EnvError, OSError) as exc:
        extra = {"rejected": exc.details} if isinstance(exc, Rejected) else {}
        module.fail_json(msg=f"component {component}: {exc}", **extra)
    prepared["chains"], diffs = chains, chain_diffs + diffs
    laid_out = (any(c["changed"] for c in chains) or any(prepared.get("layout", {}).values())
                or any(e["installed"] for e in prepared["environments"]))
    # In check mode, packages that are not installed yet or an environment that does not exist yet leave no unit
    # to plan against (systemd-analyze would refuse a missing program): say what would change up to here.
    if module.check_mode and (prepared.get("layout", {}).get("installed")
                              or not all(e["exists"] for e in prepared["environments"])):
        return dict(changed=True, services=[], written=[], removed=[], started=[], restarted=[], stopped=[],
                    strays=[], displaced=[], **prepared, **({"diff": diffs} if module._diff else {}))
    try:
        if module.params["runtime"] == "slurm":
            slurm = module.params["slurm"]
            result = converge_steps(module, SlurmRuntime(module, component, slurm["job"], slurm["node"],
                                                         slurm["log_dir"]), specs)
        else:
            runtime = SystemdRuntime(module, component, module.params["unit_dir"], module.params["adopt"])
            result = converge(module, runtime, specs)
    except SlurmError as exc:
        module.fail_json(msg=f"component {component}: node {module.params['slurm']['node']}: {exc}", **prepared)
    except ServiceFailure as exc:
        module.fail_json(msg=f"component {component}: {exc}", **exc.details, **prepared)
    except UnitError as exc:
        module.fail_json(msg=f"component {component}: {exc}", **prepared)
    result.update(prepared, changed=result["changed"] or laid_out)
    if module._diff and diffs:
        result["diff"] = diffs + result.get("diff", [])
    return result


def run_calls(module: AnsibleModule) -> dict:
    """calls: each component's call in turn in this one process, the first failure ending the rest (its message
    names the component). The diffs of all calls come together; each call's own result is under results."""
    results, diffs = [], []
    for call in module.params["calls"]:
        module.params = call
        result = run_call(module)
        diff = result.pop("diff", None)
        diffs.extend(diff if isinstance(diff, list) else [diff] if diff else [])
        results.append({"component": call["component"], **result})
    outcome = {"changed": any(r["changed"] for r in results), "results": results}
    if module._diff and diffs:
        outcome["diff"] = diffs
    return outcome


CALL_OPTIONS = {
    "component": {"type": "str", "required": True},
    "services": {"type": "list", "elements": "dict", "default": [], "options": SERVICE_OPTIONS},
    "state": {"type": "str", "default": "started",
              "choices": ["started", "restarted", "stopped", "probed", "installed", "absent"]},
    "prune": {"type": "bool", "default": True},
    "apply_changes": {"type": "bool", "default": True},
    "timeout": {"type": "int", "default": 120},
    "parallel": {"type": "int", "default": 4},
    "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
    "adopt": {"type": "list", "elements": "str", "default": []},
    "displace": {"type": "list", "elements": "str", "default": []},
    "chains": {"type": "list", "elements": "dict", "default": [], "options": CHAIN_OPTIONS},
    "layout": {"type": "dict", "options": LAYOUT_OPTIONS},
    "environments": {"type": "list", "elements": "dict", "default": [], "options": ENVIRONMENT_ENTRY_OPTIONS},
    "runtime": {"type": "str", "default": "systemd", "choices": ["systemd", "slurm"]},
    "slurm": {"type": "dict", "options": SLURM_OPTIONS},
    "installed": {"type": "bool", "default": False},
}
CALL_REQUIRED_IF = [("runtime", "slurm", ["slurm"])]


def main():
    module = AnsibleModule(
        argument_spec={
            **CALL_OPTIONS,
            "component": {"type": "str"},
            "calls": {"type": "list", "elements": "dict", "default": [], "options": CALL_OPTIONS,
                      "required_if": CALL_REQUIRED_IF},
        },
        required_if=CALL_REQUIRED_IF,
        required_one_of=[("component", "calls")],
        mutually_exclusive=[("component", "calls")],
        supports_check_mode=True,
    )
    module.exit_json(**(run_calls(module) if module.params["calls"] else run_call(module)))


if __name__ == "__main__":
    main()
