"""gymfleet: deploy and operate multi-node RL/ML training infrastructure with Ansible."""

from gymfleet.api import Cluster
from gymfleet.errors import GymfleetError
from gymfleet.events import Failure, HostOutcome, RunResult
from gymfleet.status import StatusReport

__all__ = ["Cluster", "Failure", "GymfleetError", "HostOutcome", "RunResult", "StatusReport"]
__version__ = "0.1.0"
