"""How the parameter_server role turns a host's processes into units and the files host_files lays out."""

from ansible_collections.gymfleet.cluster.plugins.filter.parameter_server import (
    host_address_map,
    parameter_server_layout,
    parameter_server_port_claims,
    parameter_server_services,
    parameter_server_units,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.services import normalize_all
from ansible_collections.gymfleet.cluster.plugins.module_utils.systemd_services import unit_sections
from ansible_collections.gymfleet.cluster.plugins.module_utils.unit_file import render_unit

SCHEDULER = {"name": "scheduler", "host": "a", "kind": "scheduler", "program": "python -c 'import mxnet'",
             "env": {"DMLC_ROLE": "scheduler", "DMLC_PS_ROOT_URI": "10.0.0.1", "DMLC_PS_ROOT_PORT": 9092}}
WORKER = {"name": "worker 0", "host": "a", "kind": "worker", "program": "python train.py",
          "env": {"DMLC_ROLE": "worker", "DMLC_PS_ROOT_URI": "10.0.0.1", "DMLC_PS_ROOT_PORT": 9092}}


def test_units_name_each_process_and_give_this_hosts_interface():
    scheduler, worker = parameter_server_units([SCHEDULER, WORKER], "ps-", "eth1")
    assert (scheduler["unit"], scheduler["env_file_name"], scheduler["listen"]) == (
        "ps-scheduler.service", "ps-scheduler.env", "10.0.0.1 9092")
    assert worker["unit"] == "ps-worker-0.service" and worker["listen"] == ""
    assert worker["env_text"] == ("DMLC_INTERFACE=eth1\nDMLC_PS_ROOT_PORT=9092\nDMLC_PS_ROOT_URI=10.0.0.1\n"
                                  "DMLC_ROLE=worker\n")
    assert "DMLC_INTERFACE" not in parameter_server_units([WORKER], "ps-", "")[0]["env"]


def test_layout_puts_programs_in_the_job_dir_and_one_environment_file_per_process():
    units = parameter_server_units([SCHEDULER, WORKER], "ps-", "")
    layout = parameter_server_layout(units, "/opt/job", "/etc/ps", ["/home/me/train.py"])
    assert [d["path"] for d in layout["directories"]] == ["/opt/job", "/etc/ps"]
    copied = {f["dest"]: f["src"] for f in layout["files"] if "src" in f}
    assert copied == {"/opt/job/dist_sync_check.py": "dist_sync_check.py", "/opt/job/wait_port.py": "wait_port.py",
                      "/opt/job/train.py": "/home/me/train.py"}
    written = {f["dest"]: f["content"] for f in layout["files"] if "content" in f}
    assert written == {"/etc/ps/ps-scheduler.env": units[0]["env_text"],
                       "/etc/ps/ps-worker-0.env": units[1]["env_text"]}


SETTINGS = {"user": "mxnet", "job_dir": "/opt/job", "env_dir": "/etc/ps", "state_dir": "/var/lib/ps",
            "python": "/opt/venv/bin/python", "wait_timeout": 60, "files": ["/home/me/train.py"],
            "watch": ["/opt/venv/reqs.txt"]}


def test_services_declare_each_process_for_the_engine():
    units = parameter_server_units([{**SCHEDULER, "program": "/opt/venv/bin/python -c 'import mxnet'"},
                                    {**WORKER, "program": "python train.py --result /var/lib/ps/%N.json"}], "ps-", "")
    scheduler, worker = normalize_all(parameter_server_services(units, SETTINGS))
    assert scheduler["argv"] == ["/opt/venv/bin/python", "-c", "import mxnet"]
    # Found on the PATH, as systemd would find a bare name.
    assert worker["argv"] == ["/usr/bin/env", "python", "train.py", "--result", "/var/lib/ps/ps-worker-0.json"]
    for spec in (scheduler, worker):
        assert (spec["user"], spec["working_directory"], spec["restart"], spec["enabled"]) == (
            "mxnet", "/opt/job", "no", False)
        assert spec["environment_files"] == spec["files"] == [f"/etc/ps/{spec['name']}.env"]
        assert spec["watch"] == ["/opt/job/dist_sync_check.py", "/opt/job/wait_port.py", "/opt/job/train.py",
                                 "/opt/venv/reqs.txt"]
    assert scheduler["service_options"]["ExecStartPost"] == (
        "/opt/venv/bin/python /opt/job/wait_port.py 10.0.0.1 9092 --timeout 60")
    assert scheduler["service_options"]["TimeoutStartSec"] == 70
    assert "ExecStartPost" not in worker["service_options"]
    text = render_unit(unit_sections(worker, "parameter_server", "d1"))
    assert "ExecStopPost=/bin/sh -c 'echo \"$$SERVICE_RESULT $$EXIT_CODE $$EXIT_STATUS\" > /var/lib/ps/%N.exit'" in text
    assert "ExecStartPre=/bin/rm -f /var/lib/ps/%N.exit" in text
    assert "Restart=no" in text


def test_only_schedulers_claim_ports():
    global_scheduler = {"name": "global scheduler", "kind": "global_scheduler",
                        "env": {"DMLC_PS_GLOBAL_ROOT_PORT": "9093"}}
    assert parameter_server_port_claims([SCHEDULER, WORKER, global_scheduler]) == [
        {"component": "parameter server scheduler", "variable": "parameter_server_topology", "ports": 9092},
        {"component": "parameter server global scheduler", "variable": "parameter_server_topology", "ports": 9093}]


DOCKER = {**SETTINGS, "runtime": "docker", "image": "gymfleet/parameter-server:abc", "docker": "/usr/bin/docker",
          "host_python": "/usr/bin/python3"}


def test_in_containers_the_scheduler_binds_every_address_and_the_interface_is_the_containers():
    scheduler, worker = parameter_server_units([SCHEDULER, WORKER], "ps-", "eth0", "docker")
    assert scheduler["env"]["DMLC_USE_KUBERNETES"] == "1" and "DMLC_USE_KUBERNETES" not in worker["env"]
    assert scheduler["env"]["DMLC_INTERFACE"] == worker["env"]["DMLC_INTERFACE"] == "eth0"
    assert "DMLC_USE_KUBERNETES" not in parameter_server_units([SCHEDULER], "ps-", "eth0")[0]["env"]


def test_in_containers_each_process_runs_docker_with_its_environment_and_the_schedulers_port_published():
    units = parameter_server_units([{**SCHEDULER, "program": "/opt/venv/bin/python -c 'import mxnet'"},
                                    {**WORKER, "program": "python train.py --result /var/lib/ps/%N.json"}],
                                   "ps-", "eth0", "docker")
    scheduler, worker = normalize_all(parameter_server_services(units, DOCKER))
    common = ["/usr/bin/docker", "run", "--rm", "--init", "--name"]
    assert scheduler["argv"][:6] == [*common, "ps-scheduler"]
    assert scheduler["argv"][-4:] == ["gymfleet/parameter-server:abc", "/opt/venv/bin/python", "-c", "import mxnet"]
    assert scheduler["argv"][scheduler["argv"].index("-p"):][:2] == ["-p", "10.0.0.1:9092:9092"]
    # A bare program name is the image's to find (no /usr/bin/env in front); %N is still the unit's name.
    assert worker["argv"][-5:] == ["gymfleet/parameter-server:abc", "python", "train.py", "--result",
                                   "/var/lib/ps/ps-worker-0.json"]
    assert "-p" not in worker["argv"]
    for spec in (scheduler, worker):
        argv = spec["argv"]
        assert argv[argv.index("--env-file") + 1] == f"/etc/ps/{spec['name']}.env"
        mounts = argv[argv.index("-v"):argv.index("-v") + 6]
        assert mounts == ["-v", "/opt/job:/opt/job:ro", "-v", "/var/lib/ps:/var/lib/ps", "-w", "/opt/job"]
        # docker runs as root; the container has the environment, not systemd.
        assert spec["user"] is None and spec["environment_files"] == [] and spec["files"] == [
            f"/etc/ps/{spec['name']}.env"]
        assert spec["requires"] == spec["after"] == ["docker.service"]
        options = spec["service_options"]
        assert options["SuccessExitStatus"] == "143"
        assert options["ExecStartPre"][1] == (
            f"/bin/sh -c '/usr/bin/docker rm --force {spec['name']} >/dev/null 2>&1 || true'")
        assert f"/usr/bin/docker stop --time 10 {spec['name']}" in options["ExecStop"]
    # The published port answers before the scheduler listens: the wait asks the container's own address.
    assert scheduler["service_options"]["ExecStartPost"] == (
        "/usr/bin/python3 /opt/job/wait_port.py --container ps-scheduler 9092 --timeout 60")
    assert "ExecStartPost" not in worker["service_options"]


def test_topology_problems_name_an_empty_topology_and_hosts_outside_the_group():
    from ansible_collections.gymfleet.cluster.plugins.filter.parameter_server import (
        parameter_server_topology_problems,
    )
    [empty] = parameter_server_topology_problems({}, {}, [], "parameter_server")
    assert empty.startswith("parameter_server_topology is empty; fix: describe the central party")
    topology = {"mode": "single", "single": {"host": "a", "servers": ["b"], "workers": ["c"]}}
    problems = parameter_server_topology_problems(topology, topology, ["a", "b"], "parameter_server")
    assert problems[-1] == ("host c: parameter_server_topology places processes on it but it is not in group "
                            "parameter_server; fix: add it to the group (or correct the host name)")


def test_container_problems_name_the_missing_bridge_and_interpreter():
    from ansible_collections.gymfleet.cluster.plugins.filter.parameter_server import (
        parameter_server_container_problems,
    )
    assert parameter_server_container_problems("h", True, "", "") == []
    both = parameter_server_container_problems("h", False, "geomx:1", "")
    assert [problem.split(";")[0] for problem in both] == [
        "host h: parameter_server_runtime is docker but the host is not in group docker_bridge, which gives docker0 "
        "its subnet, routes and SNAT", "host h: parameter_server_image is geomx:1 but parameter_server_python is empty"]


def test_host_address_map_gives_each_host_its_known_address_then_its_subnet():
    hostvars = {"n1": {"cluster_address": "10.0.0.1", "docker_bridge_subnet": "172.31.1.0/24"},
                "n2": {"docker_bridge_subnet": "172.31.2.0/24"}, "n3": {}}
    assert host_address_map(["n1", "n2", "n3"], hostvars) == {
        "n1": ["10.0.0.1", "172.31.1.0/24"], "n2": ["172.31.2.0/24"], "n3": []}
