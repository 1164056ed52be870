"""What a node tells its operators: whether it is in the cluster, and if not why and what
to change (health: GET /health, its problems logged as they begin and end), its figures
for Prometheus (metrics: GET /metrics), and the membership changes in its log
(memberlog). Each reads the node through a small Protocol of its own."""
