"""How the parameter_server role turns a host's processes into units and the files host_files lays out."""

from ansible_collections.gymfleet.cluster.plugins.filter.parameter_server import (
    parameter_server_layout,
    parameter_server_units,
)

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
