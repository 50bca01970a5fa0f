"""Live progress of a playbook run, drawn from runner events.

On a terminal a block of lines is redrawn in place: tasks done / total, hosts ok / changed / failed, the
task each host is on, elapsed time. Without one (CI logs, pipes) the same run prints plain lines, one per
task and per failure, and never a control character. Failures are printed as they happen in both modes.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections import Counter
from typing import TextIO

from gymfleet.events import RunState

# With more hosts than this, the per-host lines become "task: N hosts" lines.
HOSTS_SHOWN = 8
_REDRAW_EVERY = 0.1
_TICK = 0.5


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60:02d}:{seconds % 60:02d}" if seconds < 3600 else \
        f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def headline(state: RunState, title: str, now: float | None = None) -> str:
    by_status = state.hosts_by_status()
    return (
        f"{title}  tasks {state.tasks_done}/{state.tasks_total or '?'}  "
        f"hosts {len(state.hosts)}: ok {by_status['ok']}, changed {by_status['changed']}, "
        f"failed {by_status['failed']}, unreachable {by_status['unreachable']}  {clock(state.elapsed(now))}"
    )


def host_lines(state: RunState, width: int) -> list[str]:
    """What each host is doing: one line per host, or per task when there are many hosts."""
    busy = {name: host.current_task for name, host in state.hosts.items() if host.current_task}
    if len(state.hosts) <= HOSTS_SHOWN:
        lines = []
        for name, host in sorted(state.hosts.items()):
            doing = host.current_task or ("unreachable" if host.unreachable else "done" if state.finished
                                          else "waiting")
            counts = f"ok {host.ok} changed {host.changed} failed {host.failed}"
            lines.append(f"  {name:<24} {counts:<28} {doing}")
    else:
        lines = [f"  {task}: {count} host{'s' if count != 1 else ''}"
                 for task, count in Counter(busy.values()).most_common(HOSTS_SHOWN)]
    return [line[: max(width - 1, 20)] for line in lines]


class Display:
    """Receives runner events; `plain` or `live` decides how they are shown."""

    def __init__(self, title: str, stream: TextIO | None = None, live: bool | None = None, width: int | None = None,
                 state: RunState | None = None, verbose: bool = False):
        self.title = title
        self.stream = stream or sys.stderr
        # Verbose (-v): Ansible's own text, as ansible-playbook prints it at that verbosity, instead of progress.
        self.verbose = verbose
        self.live = False if verbose else self.stream.isatty() if live is None else live
        # Lines longer than the terminal would wrap and break the redraw.
        self.width = width or shutil.get_terminal_size((120, 24)).columns
        self.state = state or RunState()
        self._tasks_shown = 0
        self._drawn = 0
        self._last_draw = 0.0
        self._lock = threading.Lock()
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._failures_shown = 0

    # Runner callbacks ---------------------------------------------------------------------------------
    def event(self, event: dict) -> bool:
        """Show an event that the state has already been fed (run_playbook feeds it first)."""
        with self._lock:
            if self.verbose:
                if event.get("stdout"):
                    self._write(event["stdout"])
            elif self.live:
                self._print_new_failures(clear=True)
                self._draw(force=event.get("event") == "playbook_on_stats")
            else:
                self._plain(event)
        return True  # keep the event in the run's artifacts too

    def feed(self, event: dict) -> bool:
        """Feed the state, then show: for a Display that is given events directly."""
        self.state.feed(event)
        return self.event(event)

    def start(self) -> None:
        if self.live:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def finish(self) -> None:
        self._stop.set()
        if self._ticker:
            self._ticker.join()
        with self._lock:
            if self.live:
                self._print_new_failures(clear=True)
                self._draw(force=True)
                self._drawn = 0

    # Plain mode ---------------------------------------------------------------------------------------
    def _plain(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "playbook_on_play_start":
            self._write(f"PLAY {self.state.play}")
        elif self.state.tasks_started != self._tasks_shown:
            self._tasks_shown = self.state.tasks_started
            self._write(f"[{self.state.tasks_started}/{self.state.tasks_total or '?'}] {self.state.current_task}"
                        f"  ({clock(self.state.elapsed())})")
        self._print_new_failures(clear=False)
        if kind == "playbook_on_stats":
            self._write(headline(self.state, self.title))

    # Live mode ----------------------------------------------------------------------------------------
    def _tick(self) -> None:
        while not self._stop.wait(_TICK):
            with self._lock:
                self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < _REDRAW_EVERY:
            return
        self._last_draw = now
        lines = [headline(self.state, self.title, now)[: self.width - 1], *host_lines(self.state, self.width)]
        # Up to the first line of the previous block, then rewrite it and clear what is left below.
        text = (f"\x1b[{self._drawn}F" if self._drawn else "\r") + "".join(f"\x1b[2K{line}\n" for line in lines)
        self.stream.write(text + "\x1b[J")
        self.stream.flush()
        self._drawn = len(lines)

    def _print_new_failures(self, clear: bool) -> None:
        new = self.state.failures[self._failures_shown:]
        if not new:
            return
        if clear and self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0
        for failure in new:
            self._write(failure.line())
        self._failures_shown = len(self.state.failures)

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
