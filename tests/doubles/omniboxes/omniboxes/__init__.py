"""TEST DOUBLE of the OmniBoxes package (microsoft/webgym, folder omniboxes/), for gymfleet's tests.

It implements the contract gymfleet deploys against and nothing more: no browsers are started.
- `python -m omniboxes.node.instance_server --port P --redis_host H --redis_port R`: adds P to the set
  `available` in Redis DB 0 when it starts, removes it when it stops, and puts it back every 30 s if
  Redis lost both `available` and `in_use` (upstream's watchdog).
- `python -m omniboxes.node.server --port 8080 --workers W --redis_host H --redis_port R`:
  `GET /info` -> {"available", "capacity", "in_use"}; `POST /get` leases an instance; `POST /reset` returns it.
- `python -m omniboxes.master.server --port 7000 --workers W --redis-host H --redis-port R --redis-registry
  [--nodes URL ...]`: reads `omnibox:nodes:*` from DB 1 every 10 s, checks each node's /info every 10 s, and
  answers `GET /info` -> {"nodes": [{"url", "hash", "healthy", "capacity", "available", "instances"}]}.
  As upstream, an empty registry leaves its node list as it was.
Every endpoint needs the header `x-api-key: default_key`, as upstream. `--workers` is accepted; one
process serves, with a thread per request.
"""

API_KEY = "default_key"
