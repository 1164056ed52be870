"""One node's state and its loops: the core protocol behind its lock (local_state), the
loops that move the state to peers and to disk (pump, persistence), what peers send us
(inbox), what the node says of itself (views), whether its clock is fit for writes
(clockcheck), where its peers are (dns_seeds, discovery), what its exchanges met with
(peerlog) and its settings. SharedState (node/state.py) assembles these parts."""
