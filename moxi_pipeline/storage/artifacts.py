"""Where finished artifact folders live: local folders (the default) or an S3 bucket.

Training and the other phases write into a local working folder, then `publish` it under a key such
as `models/lora_adapter/<run_id>`; readers `fetch` a URI into a local folder they can open.

    LocalArtifacts   <root>/<key>/...                   URI: the folder's path
    S3Artifacts      s3://<bucket>/<prefix>/<key>/...   URI: s3://..., fetched into <cache_dir>/<bucket>/<key>

Objects are plain files (safetensors, JSON, Markdown, PNG, tokenizer files), never pickles: a folder
holding a `.bin`/`.pt`/`.pth`/`.pkl` file is refused before anything is uploaded, because loading a
pickle runs code. S3 writes each file, then `_manifest.json` (names, sizes, SHA-256) last: a folder
without a manifest is an upload that never finished, and `fetch` says so instead of returning half of it.
`list_folders` and `delete` serve training checkpoints, which are published, pruned and removed as a run goes.
Credentials come from boto3's own chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, an instance role ...);
`AWS_ENDPOINT_URL` points it at MinIO or another S3-compatible server.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Protocol

MANIFEST = "_manifest.json"
# torch.save, pickle and joblib formats: loading one executes code, so they never leave the machine.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")


class ArtifactStore(Protocol):
    def uri(self, key: str) -> str: ...

    def publish(self, local_dir: str | Path, key: str) -> str: ...

    def fetch(self, uri: str) -> Path: ...

    def list_folders(self, key: str) -> list[str]: ...

    def delete(self, key: str) -> None: ...


def plain_files(local_dir: str | Path) -> list[Path]:
    """Every file under `local_dir`, sorted; a ValueError names any pickle among them."""
    local_dir = Path(local_dir)
    if not local_dir.is_dir():
        raise ValueError(f"cannot publish {local_dir}: it is not a folder")
    files = sorted(path for path in local_dir.rglob("*") if path.is_file())
    pickles = [str(path.relative_to(local_dir)) for path in files if path.suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        raise ValueError(f"cannot publish {local_dir}: pickle files {pickles} (artifacts are plain files only)")
    return files


def _check_key(key: str) -> str:
    key = key.strip("/")
    if not key or any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"artifact key {key!r} must be a relative path like 'models/lora_adapter/<run>'")
    return key


class LocalArtifacts:
    """Folders under `root`; publishing a folder that is already in place copies nothing."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def uri(self, key: str) -> str:
        return str(self.root / _check_key(key))

    def publish(self, local_dir: str | Path, key: str) -> str:
        target = Path(self.uri(key))
        plain_files(local_dir)
        if Path(local_dir).resolve() != target.resolve():
            staging = target.with_name(f".{target.name}.publishing")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(local_dir, staging)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
        return str(target)

    def fetch(self, uri: str) -> Path:
        path = Path(uri)
        if not path.is_dir():
            raise ValueError(f"artifact {uri!r}: no such folder")
        return path

    def list_folders(self, key: str) -> list[str]:
        """Names of the folders directly under `key`, sorted; none when `key` does not exist."""
        path = Path(self.uri(key))
        return sorted(child.name for child in path.iterdir() if child.is_dir()) if path.is_dir() else []

    def delete(self, key: str) -> None:
        shutil.rmtree(self.uri(key), ignore_errors=True)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """'s3://bucket/a/b' -> ('bucket', 'a/b')."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key.strip("/"):
        raise ValueError(f"{uri!r} is not an S3 URI of the form s3://<bucket>/<key>")
    return bucket, key.strip("/")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class S3Artifacts:
    """Folders as objects under s3://<bucket>/<prefix>/<key>/; fetched copies land in `cache_dir`."""

    def __init__(self, bucket: str, cache_dir: str | Path, prefix: str = "moxi", endpoint_url: str | None = None,
                 client=None):
        import boto3

        self.bucket, self.prefix, self.cache_dir = bucket, prefix.strip("/"), Path(cache_dir)
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url)

    def _object_key(self, key: str) -> str:
        key = _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._object_key(key)}"

    def publish(self, local_dir: str | Path, key: str) -> str:
        local_dir, base = Path(local_dir), self._object_key(key)
        files = plain_files(local_dir)
        manifest = {}
        for path in files:
            name = path.relative_to(local_dir).as_posix()
            self.client.upload_file(str(path), self.bucket, f"{base}/{name}")
            manifest[name] = {"size": path.stat().st_size, "sha256": _sha256(path)}
        body = json.dumps({"files": manifest}, indent=2).encode()
        self.client.put_object(Bucket=self.bucket, Key=f"{base}/{MANIFEST}", Body=body, ContentType="application/json")
        return self.uri(key)

    def fetch(self, uri: str) -> Path:
        """Download the folder at `uri` (any bucket) into the cache; files already there and intact are kept."""
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, base = parse_s3_uri(uri)
        if any(part in ("", ".", "..") for part in [bucket, *base.split("/")]):  # the cache folder is bucket/key
            raise ValueError(f"artifact {uri!r}: a key with '.', '..' or an empty part would be fetched outside the cache")
        try:
            return self._download(uri, bucket, base)
        except self.client.exceptions.NoSuchKey:
            raise ValueError(f"artifact {uri!r}: no {MANIFEST} there (never published, or an upload that did not finish)") from None
        except (BotoCoreError, ClientError) as error:  # no bucket, no credentials, endpoint down: one line, no traceback
            raise ValueError(f"artifact {uri!r}: {error}") from None

    def list_folders(self, key: str) -> list[str]:
        """Names of the folders directly under `key`, sorted: published ones and unfinished uploads alike."""
        base = self._object_key(key)
        listing = self.client.get_paginator("list_objects_v2")
        pages = listing.paginate(Bucket=self.bucket, Prefix=f"{base}/", Delimiter="/")
        folders = [common["Prefix"] for page in pages for common in page.get("CommonPrefixes", [])]
        return sorted(folder[len(base) + 1 :].rstrip("/") for folder in folders)

    def delete(self, key: str) -> None:
        """Remove the folder at `key`, its subfolders and the fetched copy in the cache.

        Manifests go first: a delete cut short leaves folders that read as unfinished uploads, never ones
        that look complete with files missing.
        """
        base = self._object_key(key)
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{base}/")
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        manifests = [name for name in keys if name.rsplit("/", 1)[-1] == MANIFEST]
        for batch in (manifests, [name for name in keys if name not in manifests]):
            for start in range(0, len(batch), 1000):  # DeleteObjects takes at most 1000 keys a call
                objects = [{"Key": name} for name in batch[start : start + 1000]]
                reply = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
                if reply.get("Errors"):
                    raise ValueError(f"artifact {self.uri(key)!r}: could not delete {reply['Errors'][0]}")
        shutil.rmtree(self.cache_dir / self.bucket / base, ignore_errors=True)

    def _download(self, uri: str, bucket: str, base: str) -> Path:
        manifest = json.loads(self.client.get_object(Bucket=bucket, Key=f"{base}/{MANIFEST}")["Body"].read())
        local_dir = self.cache_dir / bucket / base
        if not local_dir.resolve().is_relative_to(self.cache_dir.resolve()):
            raise ValueError(f"artifact {uri!r}: it would be fetched outside the cache {self.cache_dir}")
        files = manifest.get("files") if isinstance(manifest, dict) else None
        if not isinstance(files, dict) or not all(isinstance(e, dict) and {"size", "sha256"} <= e.keys() for e in files.values()):
            raise ValueError(f"artifact {uri!r}: {MANIFEST} is not {{'files': {{name: {{'size', 'sha256'}}}}}}")
        for name, expected in files.items():
            target = (local_dir / name).resolve()
            if not target.is_relative_to(local_dir.resolve()):
                raise ValueError(f"artifact {uri!r}: manifest entry {name!r} points outside the folder")
            if target.is_file() and target.stat().st_size == expected["size"] and _sha256(target) == expected["sha256"]:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.download")
            self.client.download_file(bucket, f"{base}/{name}", str(partial))
            if _sha256(partial) != expected["sha256"]:
                partial.unlink()
                raise ValueError(f"artifact {uri!r}: {name} does not match its manifest checksum")
            os.replace(partial, target)
        return local_dir


def artifact_store(data_dir: str | Path, s3_bucket: str | None = None, endpoint_url: str | None = None) -> ArtifactStore:
    """S3 when a bucket is set (MOXI_S3_BUCKET), else folders under the data folder."""
    if s3_bucket:
        return S3Artifacts(s3_bucket, Path(data_dir) / "cache" / "s3", endpoint_url=endpoint_url)
    return LocalArtifacts(data_dir)
