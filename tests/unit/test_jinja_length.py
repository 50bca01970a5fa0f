"""tools/jinja_length.py: long Jinja expressions in roles/ may only go away."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("jinja_length", ROOT / "tools" / "jinja_length.py")
jinja_length = importlib.util.module_from_spec(spec)
spec.loader.exec_module(jinja_length)


def _roles(tmp_path, text):
    task = tmp_path / "roles" / "r" / "tasks" / "main.yml"
    task.parent.mkdir(parents=True)
    task.write_text(text)
    return tmp_path / "roles"


def test_expressions_are_measured_with_whitespace_collapsed(tmp_path):
    long_rule = "{{ " + " or\n      ".join(f"x{i} == 'value'" for i in range(20)) + " }}"
    roles = _roles(tmp_path, f"- name: t\n  when: >-\n    {long_rule}\n  debug: {{msg: '{{{{ short }}}}'}}\n")
    assert jinja_length.long_expressions(roles) == {"roles/r/tasks/main.yml:3": len(" ".join(long_rule.split()))}


def test_a_new_or_longer_expression_fails_and_a_removed_one_asks_for_the_list_to_shrink():
    found = {"roles/a.yml:3": 250, "roles/a.yml:9": 210}
    assert jinja_length.problems(found, {"roles/a.yml": [250, 210]}) == []
    # Lines moved by an edit above: the same expressions, no problem.
    assert jinja_length.problems({"roles/a.yml:5": 250, "roles/a.yml:11": 210}, {"roles/a.yml": [250, 210]}) == []
    [new] = jinja_length.problems(found, {"roles/a.yml": [250]})
    assert new.startswith("roles/a.yml: Jinja expressions over 200 characters at lines 3 (250), 9 (210), more or")
    [longer] = jinja_length.problems({"roles/a.yml:3": 260}, {"roles/a.yml": [250]})
    assert "more or longer" in longer
    [fewer] = jinja_length.problems({"roles/a.yml:3": 250}, {"roles/a.yml": [250, 210]})
    assert fewer.endswith("fix: python tools/jinja_length.py --write")
    [gone] = jinja_length.problems({}, {"roles/a.yml": [250]})
    assert gone.startswith("roles/a.yml: listed in jinja_length.allow but has no long expression")

