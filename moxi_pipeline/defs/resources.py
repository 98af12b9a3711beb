"""Resources name a role; classes name the implementation."""

from pathlib import Path

import dagster as dg


class LocalArtifactStore(dg.ConfigurableResource):
    """Directories for models, datasets and reports, under the project's data folder."""

    data_dir: str

    def path(self, *parts: str) -> Path:
        path = Path(self.data_dir).joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
