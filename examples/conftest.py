"""The example suite's own recorder, as a user's conftest would define it."""

import pytest
from fake_llm import IntermediateRepresentation


@pytest.fixture
def ir_recorder(recorder_factory):
    return recorder_factory("examples/ir_responses", type=IntermediateRepresentation)
