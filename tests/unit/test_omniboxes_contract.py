"""The OmniBoxes test double and gymfleet's registrar keep upstream's contract, read from upstream's own source.

Upstream is microsoft/webgym's omniboxes/ at ../shared/upstream/webgym (see that folder's README), unchanged. The
double (tests/doubles/omniboxes) serves a subset of upstream's endpoints; everything it serves, every flag it
takes, every Redis key it touches and every period it keeps must be upstream's, or the fast tests that deploy it
would prove something upstream does not do.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = ROOT.parent / "shared" / "upstream" / "webgym" / "omniboxes"
DOUBLE = ROOT / "tests" / "doubles" / "omniboxes" / "omniboxes"
HELPER = ROOT / "roles" / "omniboxes" / "files" / "omniboxes_helper.py"
SERVERS = ["master/server.py", "node/server.py", "node/instance_server.py"]
REDIS_SET_CALLS = {"sadd", "srem", "smembers", "sismember", "scard", "spop"}

if not UPSTREAM.is_dir():
    # CI always has the copy; only a checkout without ../shared may go without.
    pytestmark = pytest.mark.skipif(not os.environ.get("CI"), reason=f"no upstream copy at {UPSTREAM}")


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def strings(node) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def flags(module: ast.Module) -> set[str]:
    return {call.args[0].value for call in ast.walk(module)
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "add_argument"
            and call.args and isinstance(call.args[0], ast.Constant)}


def upstream_endpoints(module: ast.Module) -> set[tuple[str, str]]:
    """FastAPI's decorators: @app.get("/info") -> ("GET", "/info")."""
    found = set()
    for function in ast.walk(module):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in function.decorator_list:
                if isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute) \
                        and decorator.func.attr in ("get", "post") and decorator.args:
                    found.add((decorator.func.attr.upper(), decorator.args[0].value))
    return found


def double_endpoints(module: ast.Module) -> set[tuple[str, str]]:
    """The double's route tables: {("GET", "/info"): handler, ...}."""
    return {(node.elts[0].value, node.elts[1].value) for node in ast.walk(module)
            if isinstance(node, ast.Tuple) and len(node.elts) == 2
            and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts)
            and node.elts[0].value in ("GET", "POST") and node.elts[1].value.startswith("/")}


def pool_keys(module: ast.Module) -> set[str]:
    """The keys of a node's pool that the code reads or writes (redis-py's set commands)."""
    return {call.args[0].value for call in ast.walk(module)
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr in REDIS_SET_CALLS and call.args and isinstance(call.args[0], ast.Constant)}


def numbers(text: str, pattern: str) -> list[int]:
    return [int(value) for value in re.findall(pattern, text)]


def dict_keys(module: ast.Module) -> set[str]:
    """Every string key of a dict literal in the module: the fields its handlers answer with."""
    return {key.value for node in ast.walk(module) if isinstance(node, ast.Dict)
            for key in node.keys if isinstance(key, ast.Constant) and isinstance(key.value, str)}


@pytest.mark.parametrize("server", SERVERS)
def test_the_double_serves_only_upstreams_endpoints_and_takes_upstreams_flags(server):
    upstream, double = tree(UPSTREAM / server), tree(DOUBLE / server)
    served = double_endpoints(double)
    assert ("GET", "/info") in served, "gymfleet's status, waits and registrar read /info"
    assert served <= upstream_endpoints(upstream), served - upstream_endpoints(upstream)
    assert flags(double) == flags(upstream)


@pytest.mark.parametrize("server, fields", [
    ("master/server.py", {"nodes", "url", "hash", "healthy", "capacity", "available", "instances"}),
    ("node/server.py", {"available", "capacity", "in_use", "instance_id"}),
    ("node/instance_server.py", {"in_lease", "ready", "instance_id", "status"}),
])
def test_the_answers_have_upstreams_fields(server, fields):
    # What gymfleet's modules (omniboxes_info, the status judges) and the double's own callers read.
    assert fields <= dict_keys(tree(UPSTREAM / server)), fields - dict_keys(tree(UPSTREAM / server))
    assert fields <= dict_keys(tree(DOUBLE / server)), fields - dict_keys(tree(DOUBLE / server))


@pytest.mark.parametrize("server", ["node/server.py", "node/instance_server.py"])
def test_the_pool_keys_are_upstreams(server):
    assert pool_keys(tree(UPSTREAM / server)) == {"available", "in_use"}
    assert pool_keys(tree(DOUBLE / server)) == pool_keys(tree(UPSTREAM / server))


def test_the_registry_is_upstreams_db_prefix_and_ttl():
    registry = (UPSTREAM / "common" / "redis_registry.py").read_text()
    assert numbers(registry, r"registry_db: int = (\d+)") == [1]
    assert "omnibox:nodes:" in strings(tree(UPSTREAM / "common" / "redis_registry.py"))
    ttl = numbers(registry, r"ttl: int = (\d+)")
    helper = HELPER.read_text()
    # gymfleet's registrar writes what upstream's master reads, and the double's master reads the same.
    assert numbers(helper, r"REGISTRY_DB = (\d+)") == [1]
    assert 'REGISTRY_PREFIX = "omnibox:nodes:"' in helper
    assert "omnibox:nodes:" in strings(tree(DOUBLE / "master" / "server.py"))
    defaults = (ROOT / "roles" / "omniboxes" / "defaults" / "main.yml").read_text()
    assert numbers(defaults, r"omniboxes_registry_ttl: (\d+)") == ttl


def test_the_periods_and_the_api_key_are_upstreams():
    manager = (UPSTREAM / "master" / "node_manager.py").read_text()
    # NodeManager(update_timeout=10, node_update_timeout=10): the registry read and the health check.
    periods = numbers(manager, r"update_timeout: int = (\d+)")
    assert len(periods) == 2
    double_master = (DOUBLE / "master" / "server.py").read_text()
    assert numbers(double_master, r"REGISTRY_SECONDS = (\d+)") + numbers(double_master, r"HEALTH_SECONDS = (\d+)") \
        == periods
    # The instance server's watchdog puts its port back in the pool every 30 s.
    watchdog = numbers((UPSTREAM / "node" / "instance_server.py").read_text(), r"asyncio\.sleep\((\d+)\)")
    assert watchdog and numbers((DOUBLE / "node" / "instance_server.py").read_text(),
                                r"WATCHDOG_SECONDS = (\d+)") == watchdog
    for server in SERVERS:
        assert "default_key" in strings(tree(UPSTREAM / server)), server
    assert 'API_KEY = "default_key"' in (DOUBLE / "__init__.py").read_text()
    assert "omniboxes_api_key: default_key" in (ROOT / "roles" / "omniboxes" / "defaults" / "main.yml").read_text()


def test_upstream_declares_the_extra_gymfleet_installs():
    setup = (UPSTREAM.parent / "setup.py").read_text()
    assert re.search(r"extras_require=\{\s*\"omnibox\"", setup)
    double = (DOUBLE.parent / "pyproject.toml").read_text()
    assert re.search(r"^omnibox = \[", double, re.M), "the double declares the same extra"
