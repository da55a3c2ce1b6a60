"""A pod's volume mounted over the directory that holds the repository must not hide it."""

from __future__ import annotations

import pathlib

from e2e.harness.kubelet import volumes


def test_a_volume_over_the_checkout_puts_the_checkout_back_read_only() -> None:
    mounts = [{"source": "/state/pods/p/volumes/tmp", "target": "/tmp/", "readOnly": False}]
    extra = volumes.keep_visible(mounts, [pathlib.Path("/tmp/ci/clone"), pathlib.Path("/tmp/ci/clone")])
    assert extra == [{"source": "/tmp/ci/clone", "target": "/tmp/ci/clone", "readOnly": True}]


def test_volumes_elsewhere_or_beside_the_checkout_add_nothing() -> None:
    mounts = [{"source": "/s/a", "target": "/mnt/pvc/data", "readOnly": True},
              {"source": "/s/b", "target": "/work/main-other", "readOnly": False}]
    assert volumes.keep_visible(mounts, [pathlib.Path("/work/main")]) == []
