"""The argument spec behind the gymfleet.cluster.polling doc fragment."""

POLLING_ARGUMENT_SPEC = {
    "timeout": {"type": "int", "default": 120},
    "interval": {"type": "float", "default": 2},
    "request_timeout": {"type": "float", "default": 10},
}
