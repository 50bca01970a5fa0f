"""ReaL's cluster spec (CLUSTER_SPEC_PATH) from the inventory, and the checks that keep it usable."""

from __future__ import annotations

import re

CLUSTER_TYPES = ("ray", "slurm")
# The node types realhf.base.cluster accepts.
NODE_TYPES = ("g1", "g2", "g8", "a100")
PATTERN_KEYS = ("node_type_from_node_name", "gpu_type_from_node_name")
OPTIONAL_KEYS = ("default_mount", "cpu_image", "gpu_image", "node_name_prefix") + PATTERN_KEYS


def real_cluster_spec(settings: dict) -> dict:
    """The JSON document ReaL reads: the required keys, then every optional key that is set."""
    spec = {key: settings[key] for key in ("cluster_type", "cluster_name", "fileroot")}
    spec.update({key: settings[key] for key in OPTIONAL_KEYS if settings.get(key) not in (None, "", {})})
    return spec


def real_cluster_spec_problems(settings: dict, node_names: list[str], fileroots: dict | None = None) -> list[str]:
    """One sentence per problem, each with its fix.

    settings: the spec's keys. node_names: the cluster's host names, as ReaL's patterns see them.
    fileroots: host to the fileroot that host would use, which must be one path everywhere.
    """
    problems = []
    if settings.get("cluster_type") not in CLUSTER_TYPES:
        problems.append(f"real_cluster_type is {settings.get('cluster_type')!r}; fix: use ray or slurm")
    if not settings.get("cluster_name"):
        problems.append("real_cluster_name is empty; fix: name the cluster (any string)")
    if not str(settings.get("fileroot") or "").startswith("/"):
        problems.append(f"real_fileroot {settings.get('fileroot')!r} is not an absolute path; "
                        "fix: give the shared (NFS) directory every node mounts at the same path")
    compiled: dict[str, list[tuple[str, re.Pattern]]] = {}
    for key in PATTERN_KEYS:
        compiled[key] = []
        for pattern in settings.get(key) or {}:
            try:
                compiled[key].append((pattern, re.compile(pattern)))
            except re.error as exc:
                problems.append(f"real_{key} pattern {pattern!r} does not compile ({exc}); fix: correct the regex")
    for pattern, node_type in (settings.get("node_type_from_node_name") or {}).items():
        if node_type not in NODE_TYPES:
            problems.append(f"real_node_type_from_node_name maps {pattern!r} to {node_type!r}, which ReaL does not "
                            f"know; fix: use one of {', '.join(NODE_TYPES)}")
    # ReaL takes the first pattern that re.match-es a host; a second match would be silently ignored.
    if settings.get("cluster_type") == "slurm":
        patterns = compiled["node_type_from_node_name"]
        if not settings.get("node_type_from_node_name"):
            problems.append("real_node_type_from_node_name is empty, which SLURM mode needs; "
                            "fix: map a regex per node type, such as {'node0[1-4]': 'g8'}")
        elif len(patterns) == len(settings["node_type_from_node_name"]):
            for name in node_names:
                matching = [pattern for pattern, regex in patterns if regex.match(name)]
                if len(matching) != 1:
                    which = "no pattern" if not matching else "patterns " + ", ".join(repr(p) for p in matching)
                    problems.append(f"host {name}: matches {which} of real_node_type_from_node_name; "
                                    "fix: make exactly one pattern match each host")
    paths = {}
    for host, path in (fileroots or {}).items():
        paths.setdefault(path, []).append(host)
    if len(paths) > 1:
        listing = "; ".join(f"{path} on {', '.join(sorted(hosts))}" for path, hosts in sorted(paths.items()))
        problems.append(f"real_fileroot differs between hosts ({listing}); fix: set one path for the whole cluster")
    return problems


class FilterModule:
    def filters(self):
        return {"real_cluster_spec": real_cluster_spec, "real_cluster_spec_problems": real_cluster_spec_problems}
