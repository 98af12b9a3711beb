"""The network assets re-run on a network failure (RetryPolicy with backoff); bad input fails at once."""

from __future__ import annotations

import dagster as dg


def test_the_network_assets_retry_with_exponential_backoff_and_jitter():
    from moxi_pipeline.defs.collect import raw_readmes
    from moxi_pipeline.defs.dataset import readme_chunks, sft_dataset

    for asset in (raw_readmes, sft_dataset):
        assert asset.op.retry_policy == dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL,
                                                      jitter=dg.Jitter.PLUS_MINUS)
    assert readme_chunks.op.retry_policy is None  # no network: nothing a re-run would change


def test_a_bad_source_fails_at_once_without_a_retry(tmp_path):
    from moxi_pipeline.defs import collect as collect_defs
    from moxi_pipeline.defs.io_managers import LocalRecordIOManager

    result = dg.materialize([collect_defs.raw_readmes], resources={"io_manager": LocalRecordIOManager(data_dir=str(tmp_path))},
                            run_config={"ops": {"raw_readmes": {"config": {"source": "ftp"}}}}, raise_on_error=False)
    assert not result.success
    assert [e.event_type_value for e in result.all_events if e.is_step_failure or e.event_type_value == "STEP_UP_FOR_RETRY"] == [
        "STEP_FAILURE"]


def test_only_bad_input_bypasses_the_retry_policy():
    import pytest

    from moxi_pipeline.defs.collect import not_retried

    with pytest.raises(ConnectionError), not_retried():  # the network: left for NETWORK_RETRY to re-run
        raise ConnectionError("api.github.com: connection reset")
    for error in (ValueError("unknown source 'ftp'"), dg.Failure(description="skipped 3 of 4", metadata={"skipped": 3})):
        with pytest.raises(dg.Failure) as caught, not_retried():
            raise error
        assert caught.value.allow_retries is False and caught.value.__cause__ is error
