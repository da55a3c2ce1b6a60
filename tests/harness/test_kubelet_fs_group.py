"""fsGroup volume ownership on the runc path: the kubelet's SetVolumeOwnership, on real files."""

from __future__ import annotations

import os
import pathlib
import stat

import pytest

from e2e.harness.kubelet import volumes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's group to any gid needs root")


def _tree(root: pathlib.Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "data.npy").write_bytes(b"x")
    (root / "run.sh").write_bytes(b"#!/bin/sh\n")
    (root / "sub" / "index.bin").write_bytes(b"y")
    for path, mode in ((root, 0o755), (root / "sub", 0o750), (root / "data.npy", 0o644),
                       (root / "run.sh", 0o700), (root / "sub" / "index.bin", 0o600)):
        path.chmod(mode)


def _owners(root: pathlib.Path) -> dict[str, tuple[int, str]]:
    return {str(p.relative_to(root)): (p.stat().st_gid, stat.filemode(p.stat().st_mode))
            for p in sorted([root, *root.rglob("*")])}


def test_claims_and_empty_dirs_get_the_group_setgid_directories_and_group_write(tmp_path: pathlib.Path) -> None:
    claim, config, host = tmp_path / "claim", tmp_path / "config", tmp_path / "host"
    for root in (claim, config, host):
        _tree(root)
    pod = {"spec": {"securityContext": {"fsGroup": 2000}, "volumes": [
        {"name": "artifacts", "persistentVolumeClaim": {"claimName": "a"}},
        {"name": "settings", "configMap": {"name": "s"}},
        {"name": "node", "hostPath": {"path": str(host)}}]}}
    volumes.apply_fs_group(pod, {"artifacts": claim, "settings": config, "node": host})
    assert _owners(claim) == {
        ".": (2000, "drwxrwsr-x"), "data.npy": (2000, "-rw-rw-r--"), "run.sh": (2000, "-rwxrwx---"),
        "sub": (2000, "drwxrws---"), "sub/index.bin": (2000, "-rw-rw----")}
    assert _owners(config) == {  # read-only kinds: the group reads, never writes
        ".": (2000, "drwxrwsr-x"), "data.npy": (2000, "-rw-r--r--"), "run.sh": (2000, "-rwxr-x---"),
        "sub": (2000, "drwxrws---"), "sub/index.bin": (2000, "-rw-r-----")}
    assert _owners(host) == {  # hostPath: left as it is
        ".": (0, "drwxr-xr-x"), "data.npy": (0, "-rw-r--r--"), "run.sh": (0, "-rwx------"),
        "sub": (0, "drwxr-x---"), "sub/index.bin": (0, "-rw-------")}


def test_no_fs_group_changes_nothing(tmp_path: pathlib.Path) -> None:
    _tree(tmp_path / "claim")
    before = _owners(tmp_path / "claim")
    volumes.apply_fs_group({"spec": {"volumes": [{"name": "c", "persistentVolumeClaim": {"claimName": "c"}}]}},
                           {"c": tmp_path / "claim"})
    assert _owners(tmp_path / "claim") == before
