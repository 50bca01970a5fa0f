"""gymfleet: deploy and operate multi-node RL/ML training infrastructure with Ansible."""

__version__ = "0.1.0"
