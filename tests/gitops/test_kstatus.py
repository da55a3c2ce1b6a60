"""FaissIndex judged by kstatus (sigs.k8s.io/cli-utils), the library Flux and kpt read health with.

hack/kstatus is a small Go program on the pinned cli-utils; this module builds it (cached by Go
after the first build, like hack/crdcheck) and feeds it the same samples as the Argo CD check:
the committed ones and the statuses the operator's decision writes now. Marked slow for the Go
build (about 1 CPU-minute from an empty Go cache, 2 s after).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gitops import captured_samples, health_samples, kstatus_tool

TESTDATA = health_samples.TESTDATA

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def kstatus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kstatus_tool.build(tmp_path_factory.mktemp("kstatus"))


_judge = kstatus_tool.run
_verdicts = kstatus_tool.verdicts


def _expected(name: str, body: dict[str, Any],
              samples: dict[str, health_samples.Sample] | None = None) -> dict[str, str]:
    """kstatus's status, and the message it must carry: the deciding condition's (InProgress from
    Reconciling, Failed from Stalled) or, for a generation not observed yet, its own text."""
    want = (health_samples.SAMPLES if samples is None else samples)[name].kstatus
    if want == "Current":
        return {"status": "Current"}
    if "status" in body and body["status"]["observedGeneration"] < body["metadata"]["generation"]:
        generation, observed = body["metadata"]["generation"], body["status"]["observedGeneration"]
        message = f"FaissIndex generation is {generation}, but latest observed generation is {observed}"
        return {"status": want, "message": message}
    deciding = "Reconciling" if want == "InProgress" else "Stalled"
    condition = next(c for c in body["status"]["conditions"] if c["type"] == deciding)
    return {"status": want, "message": condition["message"]}


def _got(verdict: dict[str, str], want: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in verdict.items() if k in want}


def _cases() -> list[Any]:
    # Reconciling is never True beside Stalled (conditions are decided that way), so kstatus reads a
    # paused-on-failure canary and a stalled rollback as Failed, not InProgress.
    return [name for name in sorted(health_samples.SAMPLES) if name != "progressing_created"]


@pytest.mark.parametrize("name", _cases())
def test_committed_sample(kstatus: Path, name: str) -> None:
    body = yaml.safe_load((TESTDATA / f"{name}.yaml").read_text())
    (verdict,) = _verdicts(kstatus, [body])
    want = _expected(name, body)
    assert _got(verdict, want) == want


@pytest.mark.parametrize("name", sorted(captured_samples.CAPTURED))
def test_sample_captured_from_the_real_operator(kstatus: Path, name: str) -> None:
    body = captured_samples.CAPTURED[name].build()
    (verdict,) = _verdicts(kstatus, [body])
    want = _expected(name, body, captured_samples.CAPTURED)
    assert _got(verdict, want) == want


@pytest.mark.parametrize("name", _cases())
def test_status_the_decision_writes_now(kstatus: Path, name: str) -> None:
    body = health_samples.SAMPLES[name].build()
    (verdict,) = _verdicts(kstatus, [body])
    want = _expected(name, body)
    assert _got(verdict, want) == want


def test_an_object_without_a_status_is_current_to_kstatus(kstatus: Path) -> None:
    """Recorded: kstatus compares observedGeneration only when the status has one, and a custom
    resource without conditions is Current. So the CRD defaults status to {observedGeneration: 0}
    (`crd.STATUS_DEFAULT`): a new FaissIndex as the API server returns it is InProgress (the sample
    progressing_createdAsStored; tests/integration/test_gitops_health_stored.py reads one back)."""
    created = yaml.safe_load((TESTDATA / "progressing_created.yaml").read_text())
    empty = {**created, "status": {}}
    verdicts = _verdicts(kstatus, [created, empty])
    assert [v["status"] for v in verdicts] == ["Current", "Current"]


def test_many_documents_from_files_and_stdin(kstatus: Path, tmp_path: Path) -> None:
    serving = yaml.safe_load((TESTDATA / "healthy_serving.yaml").read_text())
    building = yaml.safe_load((TESTDATA / "progressing_firstBuild.yaml").read_text())
    both = tmp_path / "both.yaml"
    both.write_text(yaml.safe_dump(serving) + "---\n# an empty document\n---\n" + yaml.safe_dump(building))
    as_json = tmp_path / "serving.json"
    as_json.write_text(json.dumps(serving))
    run = _judge(kstatus, str(both), str(as_json))
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["status"] for line in run.stdout.splitlines()] == ["Current", "InProgress", "Current"]


def test_unreadable_input_names_the_file_and_document_and_the_rest_is_still_judged(
    kstatus: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: FaissIndex\n---\nspec: [unclosed\n")
    run = _judge(kstatus, str(broken), str(TESTDATA / "healthy_serving.yaml"), str(tmp_path / "missing.yaml"))
    assert run.returncode == 1
    assert f"{broken}: document 2:" in run.stderr
    assert "missing.yaml" in run.stderr
    assert [json.loads(line)["status"] for line in run.stdout.splitlines()] == ["Current", "Current"]
