"""Run-failure alerts: one JSON line per failed run in `<data_dir>/alerts/run_failures.jsonl`, secrets removed.

A failure message can quote a connection string (`mongodb://moxi:PASSWORD@mongodb`) or a header with a
token; before the alert is written or logged, every secret setting's value and every URL's password are
replaced by `**********`, so the alert file is safe to mail or post to a chat channel.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from moxi_pipeline.settings import Settings

MASK = "**********"
# scheme://user:password@host -> scheme://user:**********@host
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<password>[^@\s/]+)(?=@)", re.IGNORECASE)


@dataclass(frozen=True)
class RunFailure:
    run_id: str
    job_name: str
    message: str
    failed_at: float  # Unix time


def redact(text: str, settings: Settings) -> str:
    """`text` with every secret setting's value and every URL password masked."""
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if "SecretStr" in str(field.annotation) and value is not None and value.get_secret_value():
            text = text.replace(value.get_secret_value(), MASK)
    return _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)


def record_run_failure(run_id: str, job_name: str, message: str, settings: Settings) -> RunFailure:
    """Append the failure, redacted, to `<data_dir>/alerts/run_failures.jsonl` and return it."""
    failure = RunFailure(run_id=run_id, job_name=job_name, message=redact(message, settings), failed_at=time.time())
    path = alerts_path(settings.data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(asdict(failure)) + "\n")
    return failure


def alerts_path(data_dir: Path) -> Path:
    return Path(data_dir) / "alerts" / "run_failures.jsonl"
