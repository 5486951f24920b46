"""Development tools: run beside the app (make run, the tests), never imported by it."""
