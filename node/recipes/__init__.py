"""What a node offers beyond get and set, on the parts of node/server/: change streams
(watch), a service registry (registry), run-once jobs (jobs), the tasks they run for as
long as the node's loops (background), and all of them wired to one node (wiring).
SharedState (node/state.py) offers each as a method."""
