"""The peer wire: one gossip message POSTed to a peer and its answer decoded (transport),
over HTTP/1.1 connections kept open (connections), with the counts it keeps for /metrics
(figures). Imports nothing of the node above it."""
