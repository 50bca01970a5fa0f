#!/usr/bin/env python3
"""Record the runner events of one playbook run as JSON lines, for the display and status tests.

    tools/record_run.py INVENTORY PLAYBOOK OUT.jsonl [--limit PATTERN]

The events are written as ansible-runner hands them to an event_handler, without their `stdout` text
(what ansible-playbook printed, which nothing in gymfleet reads) and without gathered facts but
gymfleet's own.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gymfleet.runner import RunRequest, run_playbook  # noqa: E402


def scrub(event: dict) -> dict:
    """Without stdout, and without the gathered facts of the machine it ran on (only gymfleet's own)."""
    event = {key: value for key, value in event.items() if key != "stdout"}
    res = (event.get("event_data") or {}).get("res")
    if isinstance(res, dict) and isinstance(res.get("ansible_facts"), dict):
        res["ansible_facts"] = {k: v for k, v in res["ansible_facts"].items() if k.startswith("gymfleet_")}
    return event


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
