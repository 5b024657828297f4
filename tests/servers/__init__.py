"""Real servers for the integration tests, started on 127.0.0.1 random ports."""
