#!/usr/bin/env python3
"""Record the runner events of one playbook run as JSON lines, for the display and status tests.

    tools/record_run.py INVENTORY PLAYBOOK OUT.jsonl [--limit PATTERN]

The events are written as ansible-runner hands them to an event_handler, cut down to what gymfleet
reads: no stdout text, no ids, and results without the gathered facts of the machine they ran on.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gymfleet.runner import RunRequest, run_playbook  # noqa: E402

KEPT_RESULT_KEYS = ("changed", "failed", "skipped", "msg", "rc", "stderr", "item", "_ansible_item_label")


def scrub_result(res: dict) -> dict:
    """What gymfleet reads of a result: status, message, the end of stderr, loop items, gymfleet's own facts."""
    kept = {key: res[key] for key in KEPT_RESULT_KEYS if key in res}
    if isinstance(kept.get("stderr"), str):
        kept["stderr"] = "\n".join(kept["stderr"].splitlines()[-3:])
    if isinstance(kept.get("item"), (dict, list)):
        kept["item"] = str(kept.get("_ansible_item_label", ""))[:80]
    if isinstance(res.get("ansible_facts"), dict):
        facts = {k: v for k, v in res["ansible_facts"].items() if k.startswith("gymfleet_")}
        if facts:
            kept["ansible_facts"] = facts
    if isinstance(res.get("results"), list):
        kept["results"] = [scrub_result(item) for item in res["results"] if isinstance(item, dict)]
    return kept


KEPT_EVENT_DATA = ("playbook", "play", "task", "name", "role", "host", "res", "ignore_errors",
                   "ok", "changed", "failures", "dark", "skipped", "processed", "rescued", "ignored")


def scrub(event: dict) -> dict:
    """The event's kind, order and time, and of its data what gymfleet reads (no gathered facts, no stdout)."""
    data = {key: value for key, value in (event.get("event_data") or {}).items() if key in KEPT_EVENT_DATA}
    if isinstance(data.get("res"), dict):
        data["res"] = scrub_result(data["res"])
    return {"event": event.get("event"), "counter": event.get("counter"), "created": event.get("created"),
            "event_data": data}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inventory")
    parser.add_argument("playbook")
    parser.add_argument("out", type=Path)
    parser.add_argument("--limit")
    args = parser.parse_args()
    events = []
    result, _ = run_playbook(RunRequest(playbook=args.playbook, inventory=[args.inventory], limit=args.limit),
                             on_event=lambda event: events.append(scrub(event)))
    args.out.write_text("".join(json.dumps(event, sort_keys=True) + "\n" for event in events))
    print(f"{len(events)} events, run {result.status}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
