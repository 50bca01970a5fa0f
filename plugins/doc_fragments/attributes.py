"""Attribute blocks shared by gymfleet's modules."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
"""

    # For modules that only read: `extends_documentation_fragment: gymfleet.cluster.attributes.read_only`.
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
"""
