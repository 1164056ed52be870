"""Tools around nodes, none of them part of one: the local launcher (`gossip-cluster`:
LocalCluster), the command-line client (`gossip-ctl`: ctl), clusters for tests (testing,
and the pytest fixtures of pytest_plugin), and the time a write takes to reach every node
(propagation). This package's own import loads nothing: gossip-ctl needs httpx alone."""
