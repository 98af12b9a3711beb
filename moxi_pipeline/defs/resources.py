"""Resources name a role; classes name the implementation."""

from pathlib import Path

import dagster as dg

from moxi_pipeline.settings import load_settings
from moxi_pipeline.storage.artifacts import artifact_store

_SETTINGS = load_settings()


class LocalArtifactStore(dg.ConfigurableResource):
    """Working directories for models, datasets and reports under the project's data folder; finished
    folders are published to S3 when `s3_bucket` is set (MOXI_S3_BUCKET), else they stay where they are."""

    data_dir: str
    s3_bucket: str | None = _SETTINGS.s3_bucket  # MOXI_S3_BUCKET
    aws_endpoint_url: str | None = _SETTINGS.aws_endpoint_url  # AWS_ENDPOINT_URL, e.g. MinIO

    def path(self, *parts: str) -> Path:
        path = Path(self.data_dir).joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, local_dir: str | Path, key: str) -> str:
        """The finished folder's URI: s3://<bucket>/moxi/<key>, or its local path."""
        return artifact_store(self.data_dir, self.s3_bucket, self.aws_endpoint_url).publish(local_dir, key)
