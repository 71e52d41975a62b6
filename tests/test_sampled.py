"""The shared sampling of the live scenarios (mqlib.scenarios._sampled)."""

import doctest

from mqlib.scenarios import _sampled


def test_docstring_examples():
    result = doctest.testmod(_sampled)
    assert result.failed == 0 and result.attempted > 0
