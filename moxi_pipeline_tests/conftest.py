from __future__ import annotations

import pytest

from moxi_pipeline_tests.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random-initialised 2-layer Llama with a trained byte-level BPE tokenizer and a ChatML template."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


# --- hypothesis: how many generated cases each property tried, in pytest's terminal summary ---------

_HYPOTHESIS_CASES: dict[str, tuple[int, int]] = {}


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_call(item):
    """Chains onto hypothesis's own statistics callback (set by its plugin's outer wrapper) to count cases."""
    try:
        from hypothesis import is_hypothesis_test
        from hypothesis.statistics import collector
    except ImportError:  # the dev extra is not installed: no property tests to count
        yield
        return
    if not is_hypothesis_test(getattr(item, "obj", None)):
        yield
        return
    outer = collector.value

    def note(stats: dict) -> None:
        if outer is not None:
            outer(stats)
        cases = [case for key, phase in stats.items() if key.endswith("-phase") for case in phase.get("test-cases", [])]
        _HYPOTHESIS_CASES[item.nodeid] = (len(cases), sum(case["status"] == "valid" for case in cases))

    with collector.with_value(note):
        yield


FAULT_FIGURES: list[str] = []  # fault-injection tests append one line each, e.g. "mongo writer killed ...: lost 0"


def pytest_terminal_summary(terminalreporter):
    for line in FAULT_FIGURES:
        terminalreporter.write_line(f"faults: {line}")
    for nodeid, (tried, valid) in _HYPOTHESIS_CASES.items():
        terminalreporter.write_line(f"hypothesis: {nodeid.rsplit('::', 1)[-1]} tried {tried} cases ({valid} passed, the rest rejected as invalid)")
