"""The peer libraries' own test suites, translated onto buttress's API.

One module per peer (pybreaker, tenacity, stamina, circuitbreaker,
resilience4j, Polly). Each test names the test it translates; where
buttress's documented meaning differs from the peer's, the test asserts
buttress's meaning and says so in a comment. Nothing here copies peer code:
the behaviours are rewritten as buttress tests on a virtual clock.
"""
