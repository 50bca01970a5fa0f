"""The lab: Debian containers running systemd on one machine, reachable by Ansible like real hosts."""
