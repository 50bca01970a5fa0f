"""The lifecycle playbooks (deploy, start, stop, restart, status), rendered from the manifest of systems.

deploy, start, stop and restart run one play per component on the hosts of its groups (stop in reverse order),
deploy stage by stage; status asks each host once about all of its components (every role's status checks in one
host_status call). A play's hosts and keywords must be plain YAML that Ansible reads before any variable exists,
which a list read at run time cannot give: so the playbooks are text rendered from the manifest. The checkout
keeps them rendered (tools/systems.py, `make systems`, checked by `make lint`) for ansible-playbook; the gymfleet
command renders them from the manifest it runs with, so a system added there needs nothing regenerated.

Standard library only: the gymfleet package loads this file by its path.
"""

from __future__ import annotations

import textwrap

ENTRIES = ("deploy", "start", "stop", "restart", "status")

GENERATED = "# Generated from meta/systems.yml by tools/systems.py (`make systems`): edit those, not this file."
PREFLIGHT = """# Preflight validates every host's role variables strictly against each role's main spec, so no role
# validates them again here (rolespec_validate: false): every entry point reads main's variables.
- name: Validate the inventory
  ansible.builtin.import_playbook: {preflight}
"""
HEADERS = {
    "deploy": "# Installs, configures and starts every system on the hosts of its groups, in order, stage by stage.\n"
              "# The roles queue the engine calls they defer (gymfleet_engine_batch); each stage ends with one engine\n"
              "# call per host that runs its queue.",
    "start": "# Starts what stop.yml stopped, as deployed: nothing is installed or reconfigured (deploy does that).",
    "stop": "# Stops every system in the reverse of the deploy order; data stays.",
    "restart": "# Restarts every system as deployed, in the deploy order, waiting for each to be healthy.",
}
VERBS = {"start": "Start", "stop": "Stop", "restart": "Restart"}
STATES = {"start": "started", "stop": "stopped", "restart": "restarted"}
# A role that declares services and has no file for an entry point: its units as installed, in their order and
# with their health (the engine reads both from the units), so its variables are not needed.
GENERIC = """  tasks:
    - name: {verb} {title}, as installed
      gymfleet.cluster.services:
        component: {role}
        installed: true
        state: {state}{timeout}"""
TIMEOUT = '\n        timeout: "{{{{ {role}_wait_timeout | default(300) }}}}"'
# Under every tag, as the firewall is: what a tagged run queued runs too.
FLUSH = """{note}
- name: End of stage {stage}
  hosts: all
  gather_facts: false
  tags: [always]
  tasks:
    - name: Run the calls this host queued in the stage, in one engine call
      gymfleet.cluster.services:
        flush: true
"""
STATUS = '''---
{generated}
# Status reads and changes nothing, so it skips the full preflight. Each host is asked once (module host_status)
# about all of its components, from the roles' own declarations; the controller judges the answers. A host out
# of reach becomes a row; the others are still asked. (The CLI refuses an inventory it cannot parse, or without
# hosts, before any run.)
- name: Ask every host how its components are
  hosts: all
  gather_facts: false
  tasks:
    # Only where the fact cache does not know the cluster address the last run decided (a new controller, an
    # expired cache): the probes use it.
    - name: Read the tailnet address
      ansible.builtin.include_role:
        name: gymfleet.cluster.tailscale
        tasks_from: current_address
      when: "'tailscale' in group_names and cluster_address is not defined"

    - name: Decide the cluster address
      ansible.builtin.include_role:
        name: gymfleet.cluster.cluster_address
      when: "'cluster' in group_names and cluster_address is not defined"

    # These files hold no task: importing them makes each role's __<role>_status_checks known to the probe.
    # Not validated (rolespec_validate: false): status reads whatever the inventory says, and deploy's
    # preflight is where a bad value is refused.
{imports}    - name: Ask the host about all of its components at once
      gymfleet.cluster.host_status:
        checks: >-
{checks}
      register: gymfleet_status_probe

    # Every row with its system and metrics, as data: `gymfleet status` and the Python API read this fact
    # from the run's events.
    - name: Judge every host's answers
      ansible.builtin.set_fact:
        gymfleet_status_report: >-
          {{{{ ansible_play_hosts_all | gymfleet.cluster.status_report(hostvars, ansible_play_hosts) }}}}
      run_once: true

    - name: Print the status table
      ansible.builtin.debug:
        msg: >-
          {{{{ gymfleet_status_report.rows | gymfleet.cluster.text_table(['host', 'component', 'state', 'detail']) }}}}
      run_once: true

    - name: Fail when a component is down
      ansible.builtin.assert:
        that: __down | length == 0
        quiet: true
        fail_msg: "host {{{{ inventory_hostname }}}}: down: {{{{ __down | join(', ') }}}}"
      vars:
        __down: >-
          {{{{ gymfleet_status_report.rows | selectattr('host', 'equalto', inventory_hostname)
             | selectattr('state', 'equalto', 'DOWN') | map(attribute='component') | list }}}}
      # `gymfleet status` and Cluster.status() judge health from the report and skip this tag, so that a
      # failure in their run is always something else (a host out of reach, a module that broke); a skipped tag
      # costs nothing, where a false condition still costs a task on every host.
      tags: [fail_when_down]
'''


def _hosts(component: dict) -> str:
    return ":".join(component["groups"])


def _play(component: dict, name: str, body: str, note: str = "", stopping: bool = False, batch: bool = False) -> str:
    lines = [f"# {line}" for line in textwrap.wrap(note, 106)] if note else []
    lines += [f"- name: {name}", f"  hosts: {_hosts(component)}", "  gather_facts: false"]
    if batch:
        lines += ["  vars:", "    gymfleet_engine_batch: true"]
    # A stop goes on everywhere, whatever one host says: stopping half a job helps nobody.
    if component["any_errors_fatal"] and not stopping:
        lines += ["  # One job across hosts: a process that fails on one host stops the run on all.",
                  "  any_errors_fatal: true"]
    lines += [f"  tags: [{', '.join(component['tags'])}]", body.rstrip()]
    return "\n".join(lines) + "\n"


def render(entry: str, parts: list[dict], notes: dict[str, str], preflight: str = "preflight.yml") -> str:
    """The text of one lifecycle playbook (deploy, start, stop, restart, status) for the manifest's components
    (module_utils/systems.py's components()) and its stages' notes; `preflight` is where preflight.yml is, from
    the playbook's own folder."""
    if entry == "status":
        with_status = [c for c in parts if "status" in c["entry_points"]]
        imports = "".join(f"    - name: {c['title']}\n      ansible.builtin.import_role:\n"
                          f"        name: gymfleet.cluster.{c['role']}\n        tasks_from: status\n"
                          "        rolespec_validate: false\n"
                          for c in with_status)
        terms = [f"(__{c['role']}_status_checks if {c['groups']} | intersect(group_names) else [])"
                 for c in with_status]
        # A role that declares services and has no checks of its own: its units, judged from their declarations.
        terms += [f"(('{c['role']}' | gymfleet.cluster.service_status_checks('{c['system']}', '{c['title']}'))"
                  f" if {c['groups']} | intersect(group_names) else [])"
                  for c in parts if c["declares_services"] and "status" not in c["entry_points"]]
        checks = "\n".join(f"          {'{{' if i == 0 else '  +'} {term}" for i, term in enumerate(terms)) + " }}"
        return STATUS.format(generated=GENERATED, imports=imports, checks=checks)
    plays = []
    if entry == "deploy":
        deployed = [c for c in parts if c["deploy"]]
        for index, c in enumerate(deployed):
            body = (f"  tasks:\n    - name: {c['title']}\n      ansible.builtin.import_role:\n"
                    f"        name: gymfleet.cluster.{c['role']}\n        rolespec_validate: false")
            plays.append(_play(c, c["title"], body, c["note"], batch=True))
            if index + 1 == len(deployed) or deployed[index + 1]["stage"] != c["stage"]:
                plays.append(FLUSH.format(stage=c["stage"], note="\n".join(
                    f"# {line}" for line in textwrap.wrap(f"Stage {c['stage']}: {notes[c['stage']]}", 106))))
    else:
        chosen = [c for c in parts if c["deploy"] and (entry in c["entry_points"] or c["declares_services"])]
        for c in reversed(chosen) if entry == "stop" else chosen:
            verb = VERBS[entry]
            if entry in c["entry_points"]:
                body = (f"  tasks:\n    - name: {verb} {c['title']}\n      ansible.builtin.include_role:\n"
                        f"        name: gymfleet.cluster.{c['role']}\n        tasks_from: {entry}\n"
                        "        rolespec_validate: false")
            else:
                body = GENERIC.format(verb=verb, title=c["title"], role=c["role"], state=STATES[entry],
                                      timeout="" if entry == "stop" else TIMEOUT.format(role=c["role"]))
            plays.append(_play(c, f"{verb} {c['title']}", body, stopping=entry == "stop"))
    head = "---\n" + GENERATED + "\n" + HEADERS[entry] + "\n" + PREFLIGHT.format(preflight=preflight)
    return head + "\n" + "\n".join(plays)
