"""Resources name a role; classes name the implementation."""

from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster_openai import OpenAIResource
from openai import OpenAI

from moxi_pipeline.dataset.instructions_openai import InstructionEndpointError, OpenAIInstructionsConfig
from moxi_pipeline.settings import load_settings, may_send_secret
from moxi_pipeline.storage.artifacts import ArtifactStore, artifact_store

_SETTINGS = load_settings()
OPENAI_API_URL = "https://api.openai.com/v1"  # the openai client's own default base URL


class ArtifactsResource(dg.ConfigurableResource):
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

    def checkpoint_store(self) -> ArtifactStore | None:
        """Where training also publishes its checkpoints: the S3 bucket, so a run re-executed on another machine
        resumes; None without a bucket, where checkpoints stay on the training machine's disk and are not copied."""
        return artifact_store(self.data_dir, self.s3_bucket, self.aws_endpoint_url) if self.s3_bucket else None


class OpenAIClient(OpenAIResource):
    """dagster-openai's `OpenAIResource`: `get_client(context)` hands out an `openai.OpenAI` whose
    chat.completions.create adds `openai.<model>.calls/prompt_tokens/completion_tokens/total_tokens` to the
    asset's metadata. This subclass sets the client's timeout and retries (the client retries 429s, 5xx and
    timeouts with exponential backoff) and builds no client without a key, since the template backend needs none."""

    timeout_s: float = 60.0
    max_retries: int = 4

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.api_key:
            trusted = load_settings().openai_base_url or OPENAI_API_URL  # the operator's, from the environment
            if not may_send_secret(self.base_url or OPENAI_API_URL, trusted):
                raise dg.Failure(description=f"openai resource: base_url={self.base_url!r} is not OPENAI_BASE_URL from the "
                                             "environment (or is plain HTTP to a host that is not loopback); "
                                             "OPENAI_API_KEY is sent only there")
            self._client = OpenAI(api_key=self.api_key, organization=self.organization, project=self.project,
                                  base_url=self.base_url, timeout=self.timeout_s, max_retries=self.max_retries)

    @contextmanager
    def get_client(self, context):
        if not self.api_key:
            raise dg.Failure(description="the openai backends (MOXI_INSTRUCTIONS=openai, MOXI_PREFERENCES=openai) need "
                                         "OPENAI_API_KEY (any non-empty value for a local server such as vLLM or "
                                         "Ollama) and OPENAI_BASE_URL for a non-OpenAI endpoint")
        with super().get_client(context) as client:
            yield client

    @contextmanager
    def resumable_client(self, context, asset: str, store: Path):
        """`get_client` for a backend that keeps its answers in `store`: an endpoint that keeps failing fails the
        asset with one message saying where what arrived is kept (a re-run pays for none of it again)."""
        with self.get_client(context) as client:
            try:
                yield client
            except InstructionEndpointError as error:
                raise dg.Failure(description=f"{asset}: {error}; what was received is kept in {store} and a re-run "
                                             "resumes from there") from None

    @staticmethod
    def backend_config(**overrides) -> OpenAIInstructionsConfig:
        """The openai backends' settings from the environment (OPENAI_MODEL, MOXI_OPENAI_*), then `overrides`."""
        settings = load_settings()
        return OpenAIInstructionsConfig(**{
            "model": settings.openai_model, "concurrency": settings.openai_concurrency,
            "max_requests": settings.openai_max_requests, "max_tokens": settings.openai_max_tokens, **overrides})

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self.api_key:
            super().teardown_after_execution(context)


def openai_client(settings) -> OpenAIClient:
    """The key stays an EnvVar, so Dagster shows its name, never its value (`dagster dev` loads .env)."""
    return OpenAIClient(api_key=dg.EnvVar("OPENAI_API_KEY") if settings.openai_api_key else "",
                        base_url=settings.openai_base_url, timeout_s=settings.openai_timeout_s,
                        max_retries=settings.openai_max_retries)


def pipeline_resources(settings) -> dict:
    """Every resource the assets need, chosen by settings: one place for each code location to build them."""
    from moxi_pipeline.defs.io_managers import record_io_manager

    data_dir = str(settings.data_dir)
    artifacts = ArtifactsResource(data_dir=data_dir, s3_bucket=settings.s3_bucket,
                                   aws_endpoint_url=settings.aws_endpoint_url)
    return {"io_manager": record_io_manager(settings), "artifacts": artifacts, "openai": openai_client(settings)}
