"""The HTTP face of a node: the routes (api: keys and what the node says of itself;
peer_api: POST /gossip and /probe; admin_api: signing keys; recipes_api, metrics_api,
dashboard), on what they share (http_basics), gathered by routes, with the two hot routes
past the router (hotpaths) and each node's OpenAPI schema (openapi); the apps and
lifespans that run a node (app, with uvicorn's WebSocket protocol loaded on demand by
lazy_websockets), the gossip listener of each worker (listener); and
fleet-wide rate limits for an app's routes (ratelimit, and limits_storage for slowapi)."""
