"""The `limits` package's and slowapi's own test suites, run against the `gossip://` storage
with a real node in the test process: `make test-limits-peers` (python -m scripts.limits_peers).
The tests that do not pass by design are listed with their reasons in differences.toml
beside this file: the run fails if any other test fails, or if one listed to fail passes."""
