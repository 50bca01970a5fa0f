from pathlib import Path
from unittest import mock

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils import unit_file
from ansible_collections.gymfleet.cluster.plugins.module_utils.unit_file import UnitError, render_unit
from ansible_collections.gymfleet.cluster.plugins.modules import systemd_unit

from .modhelper import run_module

SECTIONS = {
    "Unit": {"Description": "node server", "After": ["network-online.target", "redis.service"]},
    "Service": {"ExecStart": "/usr/bin/true", "Restart": "on-failure", "NoNewPrivileges": True, "User": None},
    "Install": {"WantedBy": "multi-user.target"},
}


def test_render_unit():
    text = render_unit(SECTIONS, header="Managed")
    assert text == (
        "# Managed\n\n[Unit]\nDescription=node server\nAfter=network-online.target\nAfter=redis.service\n\n"
        "[Service]\nExecStart=/usr/bin/true\nRestart=on-failure\nNoNewPrivileges=yes\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


@pytest.mark.parametrize("bad", [{}, {"Service": "x"}, {"Service": {"Exec Start": "x"}}, {"Service": {"A": "x\ny"}}])
def test_render_unit_rejects(bad):
    with pytest.raises(UnitError):
        render_unit(bad)


class FakeSystemd:
    """Test double of `systemd-analyze verify` (warns on unknown keys, as systemd does, with exit 0)
    and `systemctl daemon-reload` / `disable`, which it records."""

    def __init__(self):
        self.calls = []

    def __call__(self, args, **_):
        self.calls.append(args)
        if args[0].endswith("systemd-analyze"):
            unit = Path(args[-1])
            texts = [unit.read_text()] + [p.read_text() for p in unit.parent.glob(unit.name + ".d/*.conf")]
            for text in texts:
                for line in text.splitlines():
                    if line.startswith("Bogus="):
                        return 0, "", f"{unit}:3: Unknown key 'Bogus' in section [Service], ignoring.\n"
            return 0, "", ""
        return 0, "", ""


def run(tmp_path, fake, check_mode=False, **args):
    args.update(unit_dir=str(tmp_path), _ansible_check_mode=check_mode, _ansible_diff=True)
    with mock.patch.object(AnsibleModule, "run_command", side_effect=fake), \
            mock.patch.object(unit_file.shutil, "which", return_value="/usr/bin/systemd-analyze"):
        return run_module(systemd_unit.main, args)


def test_install_then_idempotent(tmp_path):
    fake = FakeSystemd()
    first = run(tmp_path, fake, name="node.service", sections=SECTIONS)
    assert first["changed"] is True and first["reloaded"] is True
    assert (tmp_path / "node.service").read_text() == first["content"]
    assert ["systemctl", "daemon-reload"] in fake.calls
    calls = len(fake.calls)
    second = run(tmp_path, fake, name="node.service", sections=SECTIONS)
    assert second["changed"] is False and len(fake.calls) == calls  # no verify, no reload


def test_check_mode_writes_nothing(tmp_path):
    fake = FakeSystemd()
    result = run(tmp_path, fake, check_mode=True, name="node.service", sections=SECTIONS)
    assert result["changed"] is True
    assert "ExecStart=/usr/bin/true" in result["diff"]["after"] and result["diff"]["before"] == ""
    assert not (tmp_path / "node.service").exists()
    assert ["systemctl", "daemon-reload"] not in fake.calls


def test_unknown_key_is_an_error_and_nothing_is_written(tmp_path):
    result = run(tmp_path, FakeSystemd(), name="node.service", sections={"Service": {"Bogus": "1", "ExecStart": "/x"}})
    assert result["failed"] is True and "Unknown key 'Bogus'" in result["msg"]
    assert not (tmp_path / "node.service").exists()


def test_dropin_is_verified_over_the_existing_unit(tmp_path):
    base = tmp_path / "redis-server@.service"
    base.write_text("[Service]\nExecStart=/usr/bin/redis-server\nPrivateUsers=true\n")
    with mock.patch.object(unit_file, "UNIT_DIRS", (str(tmp_path),)):
        result = run(tmp_path, FakeSystemd(), name="redis-server@.service", dropin="container.conf",
                     sections={"Service": {"PrivateUsers": False}})
        assert result["changed"] is True
        assert (tmp_path / "redis-server@.service.d" / "container.conf").read_text().endswith("PrivateUsers=no\n")
        bad = run(tmp_path, FakeSystemd(), name="redis-server@.service", dropin="bad.conf",
                  sections={"Service": {"Bogus": 1}})
        assert bad["failed"] is True


def test_absent_removes_the_file(tmp_path):
    fake = FakeSystemd()
    run(tmp_path, fake, name="node.service", sections=SECTIONS)
    result = run(tmp_path, fake, name="node.service", state="absent")
    assert result["changed"] is True and not (tmp_path / "node.service").exists()
    # Disabled before removal, so no [Install] symlink is left dangling.
    assert fake.calls[-2:] == [["systemctl", "disable", "--quiet", "node.service"], ["systemctl", "daemon-reload"]]
    again = run(tmp_path, fake, name="node.service", state="absent")
    assert again["changed"] is False and len(fake.calls) == 4


@pytest.mark.parametrize("args", [{"name": "no suffix"}, {"name": "x.service", "dropin": "../x.conf"}])
def test_bad_names(tmp_path, args):
    result = run(tmp_path, FakeSystemd(), sections=SECTIONS, **args)
    assert result["failed"] is True


@pytest.mark.skipif(not unit_file.shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_units_written_together_may_require_each_other():
    """Real systemd-analyze: a unit that requires another of the same call verifies only with it beside it."""
    def run_command(argv):
        import subprocess
        done = subprocess.run(argv, capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr

    needing = ("[Unit]\nRequires=gymfleet-test-b.service\nAfter=gymfleet-test-b.service\n"
               "[Service]\nExecStart=/bin/true\n")
    needed = "[Service]\nType=oneshot\nExecStart=/bin/true\n"
    alone = unit_file.verify(run_command, "gymfleet-test-a.service", needing)
    assert alone and "gymfleet-test-b.service not found" in alone[0]
    assert unit_file.verify(run_command, "gymfleet-test-a.service", needing,
                            siblings={"gymfleet-test-a.service": needing, "gymfleet-test-b.service": needed}) == []
