"""owned_routes against the real kernel and iproute2, in a network namespace of its own (unshare -n), so the
machine's routes are never touched: a veth pair gives the gateways a link, and routes of other owners
(proto static, boot) are set up before the module runs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "plugins" / "modules" / "owned_routes.py"
SETUP = [
    "ip link add v0 type veth peer name v1", "ip link set v0 up", "ip link set v1 up",
    "ip addr add 10.9.0.1/24 dev v0",
    # Someone else's routes: an administrator's static one and one with the default protocol (boot).
    "ip route add 172.17.50.0/24 via 10.9.0.50 proto static", "ip route add 172.17.51.0/24 via 10.9.0.51",
]
SCRIPT = """
import json, subprocess, sys
for line in {setup!r}:
    subprocess.run(line.split(), check=True)
results = []
for args in {runs!r}:
    done = subprocess.run([sys.executable, {module!r}], input=json.dumps({{"ANSIBLE_MODULE_ARGS": args}}),
                          capture_output=True, text=True)
    results.append(json.loads(done.stdout))
routes = subprocess.run(["ip", "-j", "route", "show"], capture_output=True, text=True, check=True).stdout
print(json.dumps({{"results": results, "routes": json.loads(routes)}}))
"""

pytestmark = pytest.mark.skipif(not shutil.which("unshare") or not shutil.which("ip"), reason="needs unshare and ip")


def in_netns(*runs: dict) -> tuple[list[dict], dict]:
    """Run the module once per args, in order, in a fresh network namespace; its results and the final table."""
    script = SCRIPT.format(setup=SETUP, runs=list(runs), module=str(MODULE))
    env = {"PYTHONPATH": ":".join(sys.path), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          check=True)
    out = json.loads(done.stdout)
    table = {r["dst"]: (r.get("gateway"), r.get("protocol", "boot")) for r in out["routes"]}
    return out["results"], table


B = {"dest": "172.17.29.0/24", "via": "10.9.0.29"}
C = {"dest": "172.17.33.0/24", "via": "10.9.0.33"}


def test_adds_then_changes_nothing():
    first, second = in_netns({"routes": [B, C]}, {"routes": [B, C]})[0]
    assert first["changed"] and first["added"] == [B, C] and first["removed"] == []
    assert not second["changed"] and second["routes"] == [B, C]


def test_removes_only_the_owned_routes_that_left():
    results, table = in_netns({"routes": [B, C]}, {"routes": [{"dest": "172.17.29.5/24", "via": "10.9.0.29"}]})
    assert results[1]["removed"] == [C] and results[1]["added"] == []  # host bits are ignored
    assert table["172.17.29.0/24"][0] == "10.9.0.29"
    assert table["172.17.29.0/24"][1] in ("148", "gymfleet")  # named where the static_routes role ran
    assert "172.17.33.0/24" not in table
    assert table["172.17.50.0/24"] == ("10.9.0.50", "static") and table["172.17.51.0/24"] == ("10.9.0.51", "boot")


def test_a_changed_gateway_is_replaced():
    results, table = in_netns({"routes": [B]}, {"routes": [{**B, "via": "10.9.0.30"}]})
    assert results[1]["added"] == [{**B, "via": "10.9.0.30"}] and table["172.17.29.0/24"][0] == "10.9.0.30"


def test_absent_removes_every_owned_route_and_nothing_else():
    results, table = in_netns({"routes": [B, C]}, {"state": "absent"})
    assert results[1]["removed"] == [B, C]
    assert set(table) == {"10.9.0.0/24", "172.17.50.0/24", "172.17.51.0/24"}


def test_check_mode_and_diff_change_nothing():
    results, table = in_netns({"routes": [B], "_ansible_check_mode": True, "_ansible_diff": True})
    assert results[0]["changed"] and results[0]["diff"] == {"before": "", "after": "172.17.29.0/24 via 10.9.0.29\n"}
    assert "172.17.29.0/24" not in table


@pytest.mark.parametrize("dest", ["172.17.50.0/24", "172.17.51.0/24"])
def test_someone_elses_route_is_refused_before_any_change(dest):
    results, table = in_netns({"routes": [B, {"dest": dest, "via": "10.9.0.9"}]})
    assert results[0]["failed"]
    assert f"{dest} is already routed by another owner" in results[0]["msg"] and "fix:" in results[0]["msg"]
    assert "172.17.29.0/24" not in table  # nothing was added either


def test_bad_input_is_named():
    results, _ = in_netns({"routes": [{"dest": "172.17.29.0/24", "via": "host-b"}]},
                          {"routes": [B, {**B, "via": "10.9.0.30"}]})
    assert "route 172.17.29.0/24 via host-b" in results[0]["msg"]
    assert "two gateways for 172.17.29.0/24" in results[1]["msg"]
