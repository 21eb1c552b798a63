"""Model zoos for demos and tests: tasks and model populations built in code, nothing downloaded."""
