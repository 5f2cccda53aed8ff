"""What the tests share: the command-line runner (``cli``), the fixtures' data makers, task builders, the
loopback hub servers, and the machinery that marks and guards the test tiers (``tiers``).

Test modules import from here (``from helpers.cli import one_error_line``: ``tests/`` is on ``sys.path``)
and never from one another: tests/test_layering.py checks that no module under tests/ imports a ``test_*``
module.
"""
