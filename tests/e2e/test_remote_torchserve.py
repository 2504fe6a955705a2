"""A .mar markit wrote to S3, registered in the real TorchServe by the object's presigned http URL.

TorchServe has no ``s3://``: it downloads ``POST /models?url=https://...``. Here markit streams the
archive to moto's S3 server on 127.0.0.1 (a multipart upload, reached through ``AWS_ENDPOINT_URL``),
TorchServe (allowed to fetch from that server only) downloads it by a presigned URL, loads it and
answers every body as the example handler computes it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_torchserve_harness import BODIES, EXAMPLE, expected_answer
from tests.e2e.torchserve import TorchServe
from tests.support.servers import S3Server, clean_env, s3_server

pytestmark = pytest.mark.e2e
pytest.importorskip("s3fs")
pytest.importorskip("moto.server")
pytest.importorskip("boto3")


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


def test_torchserve_loads_a_mar_markit_streamed_to_s3(s3: S3Server, torchserve_bin: Path, tmp_path: Path) -> None:
    client = s3.client()
    client.create_bucket(Bucket="models")
    done = subprocess.run([sys.executable, "-m", "markit", "create", "-q", "--model-name", "markit-s3", "--version",
                           "3.1", "--model-path", str(EXAMPLE), "--handler", "handler:handle",
                           "-o", "s3://models/markit-s3.mar"], env={**clean_env(), **s3.env()}, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    url = client.generate_presigned_url("get_object", Params={"Bucket": "models", "Key": "markit-s3.mar"},
                                        ExpiresIn=600)
    allowed = re.escape(s3.endpoint) + "/.*"
    with TorchServe(torchserve_bin, tmp_path / "ts", allowed_urls=allowed) as server:
        assert server.register(url) == "markit-s3"
        [description] = server.describe("markit-s3")
        assert description["modelVersion"] == "3.1"
        for body in BODIES:
            assert server.predict("markit-s3", body) == expected_answer(body), body[:20]
        server.unregister("markit-s3")
