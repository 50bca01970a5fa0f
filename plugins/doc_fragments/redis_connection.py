"""Connection options shared by gymfleet's modules that talk to Redis."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  host:
    description: Redis server address.
    type: str
    default: 127.0.0.1
  port:
    description: Redis server port.
    type: int
    default: 6379
  password:
    description: Password (C(requirepass)) or the ACL user's password.
    type: str
  username:
    description: ACL user name; needs O(password).
    type: str
  connect_timeout:
    description: Seconds to wait for the connection and each reply.
    type: float
    default: 3.0
"""
