"""The image's root filesystem as the runc path mounts it: podman's overlay layers used in place,
top first, and the fallback (unpacking) whenever they cannot be."""

from __future__ import annotations

import pathlib

import pytest

from e2e.harness.kubelet import images, ocispec


def layer(root: pathlib.Path, name: str, files: dict[str, str]) -> pathlib.Path:
    diff = root / name / "diff"
    for path, text in files.items():
        (diff / path).parent.mkdir(parents=True, exist_ok=True)
        (diff / path).write_text(text)
    diff.mkdir(parents=True, exist_ok=True)
    return diff


def test_overlay_layers_are_the_upper_then_the_lower_directories(tmp_path: pathlib.Path) -> None:
    top, middle, base = (layer(tmp_path, n, {}) for n in ("top", "middle", "base"))
    inspect = {"GraphDriver": {"Name": "overlay", "Data": {"UpperDir": str(top), "LowerDir": f"{middle}:{base}"}}}
    assert images.overlay_layers(inspect) == (top, middle, base)


def test_a_single_layer_image_has_no_lower_directory(tmp_path: pathlib.Path) -> None:
    top = layer(tmp_path, "top", {})
    assert images.overlay_layers({"GraphDriver": {"Name": "overlay", "Data": {"UpperDir": str(top)}}}) == (top,)


@pytest.mark.parametrize("graph_driver", [
    {"Name": "vfs", "Data": {}},  # another storage driver: unpack
    {"Name": "overlay", "Data": {"UpperDir": "/no/such/layer/diff"}},  # a layer gone from the storage
    {"Name": "overlay", "Data": {}},
    None,
])
def test_anything_but_present_overlay_layers_falls_back_to_unpacking(graph_driver: object) -> None:
    assert images.overlay_layers({"GraphDriver": graph_driver}) is None


def test_more_layers_than_one_mount_holds_fall_back_to_unpacking(tmp_path: pathlib.Path) -> None:
    layers = [layer(tmp_path, f"layer-{i:03d}-{'x' * 40}", {}) for i in range(60)]
    inspect = {"GraphDriver": {"Name": "overlay",
                               "Data": {"UpperDir": str(layers[0]), "LowerDir": ":".join(map(str, layers[1:]))}}}
    assert images.overlay_layers(inspect) is None


def test_the_image_users_ids_come_from_the_topmost_passwd(tmp_path: pathlib.Path) -> None:
    top = layer(tmp_path, "top", {"etc/passwd": "root:x:0:0::/root:/bin/sh\nfaiss:x:65532:65532::/tmp:/bin/sh\n"})
    base = layer(tmp_path, "base", {"etc/passwd": "root:x:0:0::/root:/bin/sh\n", "usr/bin/python3": ""})
    image = images.Image(id="abc", layers=(top, base), config=ocispec.ImageConfig(user="faiss"))
    assert image.path("etc/passwd") == top / "etc" / "passwd"
    assert image.path("usr/bin/python3") == base / "usr" / "bin" / "python3"
    assert image.path("no/such/file") is None
    assert images.Store(rootfs_dir=tmp_path / "rootfs").user_ids(image) == (65532, 65532)
