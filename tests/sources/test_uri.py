from __future__ import annotations

from pathlib import Path

import pytest

from faiss_operator.sources import errors, uri


def test_plain_path_and_file_uri_are_local() -> None:
    assert uri.parse_uri("/data/x.npy") == uri.LocalSource("/data/x.npy", Path("/data/x.npy"))
    assert uri.parse_uri("rel/x.npy").path == Path("rel/x.npy")  # type: ignore[union-attr]
    assert uri.parse_uri("file:///data/a%20b.npy").path == Path("/data/a b.npy")  # type: ignore[union-attr]


def test_pvc_maps_under_the_mount_root() -> None:
    env = {"FAISS_PVC_ROOT": "/claims"}
    assert uri.parse_uri("pvc://embeddings/alerts/v12.npy", env=env).path == Path(  # type: ignore[union-attr]
        "/claims/embeddings/alerts/v12.npy"
    )
    assert uri.pvc_path("pvc://embeddings/v.npy", env={}) == Path("/mnt/pvc/embeddings/v.npy")


@pytest.mark.parametrize(
    "bad",
    ["pvc://embeddings/../../etc/passwd", "pvc://embeddings/", "pvc://Bad_Claim/x.npy", "pvc:///x.npy"],
)
def test_pvc_uri_must_name_a_file_inside_a_valid_claim(bad: str) -> None:
    with pytest.raises(errors.UnsupportedSourceError, match="pvc"):
        uri.parse_uri(bad, env={})


def test_http_uris_are_downloads() -> None:
    source = uri.parse_uri("https://host.example/data/v.npy?sig=1")
    assert isinstance(source, uri.HttpSource)
    assert source.filename == "v.npy"


@pytest.mark.parametrize("bad", ["", "gs://bucket/x.npy", "s3://bucket", "file://otherhost/x.npy", "http:///x.npy"])
def test_unsupported_uris_are_refused(bad: str) -> None:
    with pytest.raises(errors.UnsupportedSourceError):
        uri.parse_uri(bad)
