"""Documents the seeds show verbatim, shared by the tests that port them."""

# S0 (utils.resilience), "Example Configuration File".
EXAMPLE_CONFIGURATION_FILE = """
{
  "retry_configs": {
    "http_requests": {
      "max_attempts": 3,
      "base_delay": 1.0,
      "max_delay": 30.0,
      "exponential_base": 2.0,
      "strategy": "jittered_exponential"
    },
    "database": {
      "max_attempts": 3,
      "base_delay": 0.5,
      "max_delay": 10.0,
      "exponential_base": 2.0,
      "strategy": "exponential_backoff"
    }
  },
  "circuit_breaker_configs": {
    "external_apis": {
      "failure_threshold": 5,
      "recovery_timeout": 60.0,
      "name": "external_apis"
    },
    "database": {
      "failure_threshold": 3,
      "recovery_timeout": 30.0,
      "name": "database"
    }
  }
}
"""
