// Controller tests: the runtime and reconcilers against the in-process API server.
