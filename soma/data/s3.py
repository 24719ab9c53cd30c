"""``S3Store``: objects under a bucket prefix on AWS S3 or any S3-compatible server
(MinIO, Backblaze B2, moto), through ``s3fs``.

Credentials come from the arguments or the usual environment variables
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``; the endpoint from
``AWS_ENDPOINT_URL``). They are never part of a repr, a URL or an error message.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from typing import Any

from soma.data._blob import BlobStore
from soma.data._errors import (
    StoreAuthError,
    StoreError,
    StoreUnreachableError,
    require,
)
from soma.errors import ValidationError

__all__ = ["S3Store", "public_s3_options", "s3_options"]

# s3fs.pipe_file's default: bodies of 2 x 50 MiB or more go up as a multipart upload.
_MULTIPART_BYTES = 100 * 2**20
_AUTH_CODES = ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden", "403")


def s3_options(
    *,
    key: str | None = None,
    secret: str | None = None,
    token: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """``s3fs.S3FileSystem`` keyword arguments from explicit values or the environment."""
    key = key if key is not None else os.environ.get("AWS_ACCESS_KEY_ID")
    secret = secret if secret is not None else os.environ.get("AWS_SECRET_ACCESS_KEY")
    token = token if token is not None else os.environ.get("AWS_SESSION_TOKEN")
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    options: dict[str, Any] = {
        "key": key,
        "secret": secret,
        "token": token,
        "endpoint_url": endpoint_url,
        # One attempt and short timeouts: an unreachable endpoint is an error in seconds,
        # not after botocore's minutes of retries.
        "config_kwargs": {
            "retries": {"max_attempts": 1, "mode": "standard"},
            "connect_timeout": timeout_s,
            "read_timeout": timeout_s,
            # No SHA-256 of every body for the signature, over http too (https does this
            # already): payloads carry the store's own SHA-256 as x-amz-checksum-sha256,
            # which the server verifies, and other bodies botocore's CRC32 checksum.
            "s3": {"payload_signing_enabled": False},
            # Reads are verified against the store's own block CRCs (a ranged read too);
            # botocore's check of the whole object would hash every byte a second time.
            "response_checksum_validation": "when_required",
        },
        "skip_instance_cache": True,
        "use_listings_cache": False,
    }
    if region:
        options["client_kwargs"] = {"region_name": region}
    return options


def public_s3_options(options: dict[str, Any]) -> dict[str, str]:
    """The parts of ``s3_options`` another process needs that are not secrets."""
    public = {}
    if options.get("endpoint_url"):
        public["endpoint_url"] = str(options["endpoint_url"])
    region = options.get("client_kwargs", {}).get("region_name")
    if region:
        public["region"] = str(region)
    return public


def translate_s3_error(
    store: str, exc: Exception, key: str | None, secrets: tuple[str, ...]
) -> StoreError:
    """One StoreError subclass for a botocore/s3fs/aiohttp failure, with secrets masked."""

    def scrub(text: str) -> str:
        return scrub_secrets(text, secrets)

    text = scrub(f"{type(exc).__name__}: {exc}")
    chain = f"{text} {scrub(repr(exc.__cause__ or exc.__context__ or ''))}"
    if isinstance(exc, PermissionError) or any(code in chain for code in _AUTH_CODES):
        return StoreAuthError(store, key, f"credentials refused ({text})")
    if any(word in chain for word in _UNREACHABLE):
        return StoreUnreachableError(store, key, f"endpoint unreachable ({text})")
    return StoreError(store, key, text)


def scrub_secrets(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret masked. Long secrets go wherever they appear; a short one
    (a test key, say) only as a whole token, so masking it does not garble the message."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 8:
            text = text.replace(secret, "***")
        else:
            pattern = rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])"
            text = re.sub(pattern, "***", text)
    return text


_UNREACHABLE = (
    "EndpointConnectionError",
    "Could not connect",
    "ConnectTimeout",
    "Connection refused",
    "ClientConnectorError",
    "ConnectionError",
    "Cannot connect",
)


class S3Store(BlobStore):
    """Objects under ``s3://bucket/prefix``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        key: str | None = None,
        secret: str | None = None,
        token: str | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        timeout_s: float = 10.0,
        create_bucket: bool = False,
    ) -> None:
        s3fs = require("s3fs", "S3Store", "s3")
        if not isinstance(bucket, str) or len(bucket) < 3 or "/" in bucket:
            raise ValidationError(
                "bucket", f"expected an S3 bucket name (>= 3 chars), got {bucket!r}"
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.options = s3_options(
            key=key,
            secret=secret,
            token=token,
            endpoint_url=endpoint_url,
            region=region,
            timeout_s=timeout_s,
        )
        self._secrets = tuple(
            s for s in (self.options["key"], self.options["secret"], self.options["token"]) if s
        )
        self.endpoint_url = self.options["endpoint_url"]
        self.fs = s3fs.S3FileSystem(**self.options)
        self.fs.retries = 1  # s3fs retries some errors itself, five times by default
        self.url = f"s3://{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self._lock = threading.Lock()
        self.reads = 0  # GET requests made (whole objects and ranges): a test's remote counter
        if create_bucket and not self._call(self.fs.exists, None, bucket):
            self._call(self.fs.mkdir, None, bucket)

    def __repr__(self) -> str:
        where = f", endpoint={self.endpoint_url}" if self.endpoint_url else ""
        return f"S3Store({self.url}{where})"

    def public_options(self) -> dict[str, str]:
        return public_s3_options(self.options)

    def _full(self, path: str) -> str:
        return f"{self.bucket}/{self.prefix}/{path}" if self.prefix else f"{self.bucket}/{path}"

    def _call(self, func: Any, key: str | None, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FileNotFoundError:
            if key is None:
                raise StoreError(repr(self), None, f"bucket {self.bucket!r} not found") from None
            raise self._missing(key) from None
        except Exception as exc:
            raise self._translate(exc, key) from None

    def _translate(self, exc: Exception, key: str | None) -> StoreError:
        return translate_s3_error(repr(self), exc, key, self._secrets)

    def _read(self, path: str, key: str, start: int | None = None, end: int | None = None) -> bytes:
        with self._lock:
            self.reads += 1
        return self._call(self.fs.cat_file, key, self._full(path), start=start, end=end)

    def _read_pair(self, first: str, second: str, key: str) -> tuple[bytes, bytes]:
        with self._lock:
            self.reads += 2
        paths = [self._full(first), self._full(second)]
        found = self._call(self.fs.cat, key, paths, on_error="return")  # concurrent GETs
        for path in paths:
            if isinstance(found.get(path), Exception):
                error = found[path]
                if isinstance(error, FileNotFoundError):
                    raise self._missing(key)
                raise self._translate(error, key)
        return found[paths[0]], found[paths[1]]

    def _write(self, path: str, key: str, data: bytes) -> None:
        self._call(self.fs.pipe_file, key, self._full(path), data)  # one PUT: atomic on S3

    def _write_payload(self, path: str, key: str, data: bytes, sha256_hex: str) -> None:
        if len(data) >= _MULTIPART_BYTES:  # s3fs uploads in parts: a whole-object checksum
            self._write(path, key, data)  # does not apply, botocore checksums each part
            return
        checksum = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
        # The content hash taken at put doubles as the upload's checksum: botocore hashes
        # nothing again, and the server refuses a body that does not match it.
        self._call(self.fs.pipe_file, key, self._full(path), data, ChecksumSHA256=checksum)

    def _exists(self, path: str, key: str) -> bool:
        return bool(self._call(self.fs.exists, key, self._full(path)))

    def _delete(self, path: str, key: str) -> None:
        self._call(self.fs.rm_file, key, self._full(path))

    def _list(self, prefix: str) -> list[str]:
        root = self._full("")
        try:
            found = self._call(self.fs.find, None, root)
        except StoreError:
            if not self._call(self.fs.exists, None, self.bucket):
                raise
            return []
        return [p[len(root) :] for p in found if p[len(root) :].startswith(prefix)]
