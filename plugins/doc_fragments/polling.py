"""Options of modules that ask a service over HTTP and may wait for a condition."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  timeout:
    description: Seconds to keep waiting.
    type: int
    default: 120
  interval:
    description: Seconds between requests while waiting.
    type: float
    default: 2
  request_timeout:
    description: Seconds to wait for one answer.
    type: float
    default: 10
"""
