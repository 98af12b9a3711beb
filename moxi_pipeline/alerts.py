"""Run-failure alerts: one JSON line per failed run in `<data_dir>/alerts/run_failures.jsonl`, secrets removed.

A failure message can quote a connection string (`mongodb://moxi:PASSWORD@mongodb`) or a header with a
token; before the alert is written or logged, every secret setting's value (as a whole token, and only values of
at least MIN_SECRET_CHARS characters) and every URL's password are replaced by `**********`, so the alert file is safe to mail or post to a chat channel.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from moxi_pipeline.settings import Settings

MASK = "**********"
MIN_SECRET_CHARS = 8  # shorter values (`OPENAI_API_KEY=x` for a local server) are no secrets, and masking them mangles text
# scheme://netloc: the part of a URL that can hold user:password@
_URL_NETLOC = re.compile(r"\b(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<netloc>[^\s/?#]+)", re.IGNORECASE)
_TOKEN_CHAR = r"[A-Za-z0-9_]"


@dataclass(frozen=True)
class RunFailure:
    run_id: str
    job_name: str
    message: str
    failed_at: float  # Unix time


def redact(text: str, settings: Settings) -> str:
    """`text` with every secret setting's value masked where it stands as a whole token (not inside a longer word),
    and every URL's password masked; values under MIN_SECRET_CHARS are left alone."""
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if "SecretStr" in str(field.annotation) and value is not None:
            secret = value.get_secret_value()
            if len(secret) >= MIN_SECRET_CHARS:
                text = re.sub(rf"(?<!{_TOKEN_CHAR}){re.escape(secret)}(?!{_TOKEN_CHAR})", MASK, text)
    return _URL_NETLOC.sub(_mask_url_password, text)


def _mask_url_password(match: re.Match) -> str:
    """user:password@host -> user:**********@host, split as urlsplit does: the host follows the last '@'."""
    userinfo, at, host = match.group("netloc").rpartition("@")
    if not at or ":" not in userinfo:
        return match.group(0)
    user = userinfo.partition(":")[0]
    return f"{match.group('scheme')}{user}:{MASK}@{host}"


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
