"""A long seeded random walk over the whole state machine, checking the invariants after every step.

The world moves at random (Jobs finish or fail, replicas become ready or unready, time passes, the
spec changes or becomes invalid, every admin annotation with good and bad values, analyses pass
or fail, the status is wiped) and the Kopf layer's writes are sometimes lost (the annotation
removal, or the status write). After every decision:

* the decision is deterministic: the same inputs give the same plan;
* a second decision at the same instant, after the plan was applied, changes nothing, except
  what needs the plan's writes to have landed, which the plan asks for (requeue_after): records
  of removed annotations dropped, revisions whose build Job is gone leaving history;
* a wiped status deletes no Deployment with ready pods;
* no traffic gap: a revision that served keeps a Deployment with every replica until another
  one serves all replicas, and the plan never deletes the Deployment of the revision it leaves
  current nor asks it for fewer replicas than spec.serving.replicas;
* the last ready pods stay: the plan deletes no Deployment with ready pods when no other keeps
  one, unless an admin asked or analysis failed (keep_serving.py);
* a finished rollback leaves no revision in a scale-down delay;
* a rollback only targets a revision that served (was Active before);
* every revision state change is one of `state.TRANSITIONS` (`Draft.move` raises on any other, and
  `Draft.enter` on a change of the rollout's mode outside `modes.MODE_TRANSITIONS`).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from faiss_operator.api import status as api_status
from faiss_operator.controller.decision import actions, decide, keep_serving, manifests, state

from tests.controller.builders import SETTINGS, Cluster, at, passing, report, spec, with_config

STEPS = 200
SEEDS = range(16)

CONFIGS = ({"m": 16}, {"m": 32}, {"m": 48}, {"efSearch": 64}, {"m": 32, "efSearch": 64})
ANNOTATIONS = (
    ("faiss.dev/promote", "true"),
    ("faiss.dev/promote", "yes"),
    ("faiss.dev/abort", "true"),
    ("faiss.dev/rollback", "previous"),
    ("faiss.dev/rollback", "nonsense"),
    ("faiss.dev/retry", "true"),
)


def _checked_move(original: Any) -> Any:
    """`Draft.move` that first checks the move against `state.TRANSITIONS`."""

    def move(self: state.Draft, name: str, to: Any, **kwargs: Any) -> None:
        entry = self.entry(name)
        if entry is not None and entry.state != to:
            assert to in state.TRANSITIONS[entry.state], f"{name}: {entry.state} -> {to} is not in TRANSITIONS"
        original(self, name, to, **kwargs)

    return move


@dataclasses.dataclass
class Walk:
    rng: random.Random
    cluster: Cluster
    now: float = 0.0
    measurements: tuple[Any, ...] = ()
    log: list[str] = dataclasses.field(default_factory=list)
    wiped: bool = False

    def wire(self) -> dict[str, Any]:
        wire = with_config(spec(), **self.rng.choice(CONFIGS))
        wire["serving"] = {"replicas": self.rng.choice((2, 3, 4))}
        rollout = dict(wire["rollout"])
        rollout["steps"] = self.rng.choice(
            ([], [{"weight": 25, "pauseSeconds": 60}, {"weight": 50, "pauseSeconds": 60}], [{"weight": 50}])
        )
        rollout["autoRollback"] = self.rng.random() < 0.7
        rollout["onFailure"] = self.rng.choice(("Pause", "Abort"))
        rollout["scaleDownDelaySeconds"] = self.rng.choice((0, 30))
        rollout["revisionHistoryLimit"] = self.rng.choice((0, 1, 2))
        wire["rollout"] = rollout
        wire["evaluation"] = {**wire["evaluation"], "minRecall": self.rng.choice((0.9, 0.9, 0.9, 0.98))}
        wire["paused"] = self.rng.random() < 0.1
        if self.rng.random() < 0.05:
            wire["dimension"] = 0  # invalid
        return wire

    # What the world does between two decisions.

    def move_world(self) -> None:
        rng, cluster = self.rng, self.cluster
        self.measurements = ()
        self.wiped = False
        self.now += rng.choice((0, 1, 5, 20, 31, 61, 61, 120, 301))
        roll = rng.random()
        if roll < 0.2:
            running = [
                o["metadata"]["labels"][manifests.LABEL_REVISION]
                for (kind, _), o in cluster.objects.items()
                if kind == "Job"
                and o["metadata"]["labels"].get(manifests.LABEL_COMPONENT) == manifests.COMPONENT_BUILD
                and not o.get("status")
            ]
            if running:
                revision = rng.choice(running)
                if rng.random() < 0.9:
                    cluster.finish_job(revision, message=report(recall=rng.choice((0.95, 0.97, 0.99, 0.99))))
                else:
                    cluster.finish_job(revision, failed="ValueError: boom")
                self.log.append(f"job {revision} finished")
        elif roll < 0.45:
            for (kind, _), obj in cluster.objects.items():
                if kind == "Deployment":
                    wanted = obj["spec"]["replicas"]
                    ready = wanted if rng.random() < 0.75 else rng.randint(0, wanted)
                    obj["status"] = {"replicas": wanted, "readyReplicas": ready}
            self.log.append("replicas moved")
        elif roll < 0.52:
            cluster.wire = self.wire()
            cluster.generation += 1
            self.log.append(f"spec -> {cluster.wire['config']}")
        elif roll < 0.68:
            key, value = rng.choice(ANNOTATIONS)
            if key == "faiss.dev/rollback" and rng.random() < 0.5 and cluster.status.revisions:
                value = rng.choice(cluster.status.revisions).name
            cluster.annotations[key] = value
            self.log.append(f"annotate {key}={value}")
        elif roll < 0.9:
            rollout, candidate = cluster.status.rollout, cluster.status.candidate_revision
            if rollout is not None and candidate is not None:
                recall = rng.choice((0.5, 0.96, 0.96, 0.96, 0.96, 0.96))
                self.measurements = (passing(candidate, rollout.step, at(self.now), recall=recall),)
                self.log.append(f"measured {candidate} step {rollout.step} recall {recall}")
        elif roll < 0.92:
            cluster.status = api_status.FaissIndexStatus()
            self.wiped = True
            self.log.append("status wiped")
        elif roll < 0.97:
            # One revision's pods are the only ready ones (the stable's all unready, say), or
            # one revision loses every ready pod.
            deployments = sorted((name, obj) for (kind, name), obj in cluster.objects.items() if kind == "Deployment")
            if deployments:
                chosen, _ = rng.choice(deployments)
                only = rng.random() < 0.5
                for name, obj in deployments:
                    wanted = obj["spec"]["replicas"]
                    ready = (wanted if name == chosen else 0) if only else (0 if name == chosen else wanted)
                    obj["status"] = {"replicas": wanted, "readyReplicas": ready}
                self.log.append(f"{'only' if only else 'no'} ready pods in {chosen}")

    # One decision, applied as the Kopf layer would (sometimes losing a write), with the checks.

    def decide_and_check(self) -> None:
        cluster = self.cluster
        now = at(self.now)
        resource, children = cluster.resource(), cluster.children()
        before = cluster.status
        plan = decide.decide(resource, children, self.measurements, now, settings=SETTINGS)
        assert plan == decide.decide(resource, children, self.measurements, now, settings=SETTINGS), "determinism"
        self.check_plan(before, plan)
        loss = self.rng.random()
        if loss < 0.15:
            # A write lost, in the Kopf layer's order (actions.py): the annotation removal alone;
            # the status write (and so everything after it); or everything after the status write.
            mode = ("annotation removal lost", "status write lost", "writes after the status lost")[int(loss / 0.05)]
            if mode == "annotation removal lost":
                kept = tuple(a for a in plan.actions if not isinstance(a, actions.RemoveAnnotation))
                cluster.apply(dataclasses.replace(plan, actions=kept))
            else:
                first = tuple(a for a in plan.actions if isinstance(a, actions.AddFinalizer))
                lands = mode == "writes after the status lost"
                cluster.apply(dataclasses.replace(plan, actions=first, status_changed=plan.status_changed and lands))
            self.log.append(mode)
            return
        cluster.apply(plan)
        again = decide.decide(cluster.resource(), cluster.children(), self.measurements, now, settings=SETTINGS)
        changed = [a for a in again.actions if not isinstance(a, actions.Analyze)]
        if again.status_changed or changed:
            # Only the changes that need the first plan's writes to have landed are allowed, and
            # the first plan must have asked for them (requeue_after): records of annotations
            # whose removal landed are dropped; revisions whose build Job is now gone leave
            # history, with the cleanup of their files; finished build pods whose outcome the
            # stored status now records are deleted.
            assert plan.requeue_after is not None and plan.requeue_after <= 5, "another pass not asked for"
            kept = {e.name for e in again.status.revisions}
            assert kept <= {e.name for e in plan.status.revisions}
            assert again.status == plan.status.model_copy(
                update={
                    "handled_annotations": again.status.handled_annotations,
                    "revisions": [e for e in plan.status.revisions if e.name in kept],
                    "conditions": again.status.conditions,
                }
            ), "another pass changed more than records and history"
            assert set(again.status.handled_annotations) <= set(plan.status.handled_annotations)
            assert all(
                (isinstance(a, actions.Apply) and "cleanup" in a.name)
                or (isinstance(a, actions.Delete) and a.kind == "Pod")  # build pods, outcome stored
                for a in changed
            ), changed
            cluster.apply(again)
            again = decide.decide(cluster.resource(), cluster.children(), self.measurements, now, settings=SETTINGS)
            changed = [a for a in again.actions if not isinstance(a, actions.Analyze)]
        assert not again.status_changed and changed == [], f"a third decision changed {changed or again.status_patch}"

    def check_plan(self, before: api_status.FaissIndexStatus, plan: actions.Plan) -> None:
        after = plan.status
        total = int(self.cluster.wire.get("serving", {}).get("replicas", 4))
        deletes = {a.name for a in plan.actions if isinstance(a, actions.Delete) and a.kind == "Deployment"}
        if self.wiped:
            children = self.cluster.children()
            serving = {
                manifests.deployment_name("alerts", revision)
                for d in children.deployments
                if (revision := d.revision) is not None and children.ready_replicas(revision) > 0
            }
            assert not deletes & serving, f"a wiped status deleted serving Deployments {deletes & serving}"
        if before.current_revision is not None and self.cluster.children().ready_replicas(before.current_revision):
            assert after.current_revision is not None, "the serving revision was dropped"
        if after.current_revision is not None:
            name = manifests.deployment_name("alerts", after.current_revision)
            assert name not in deletes, "the current revision's Deployment is deleted"
            for action in plan.actions:
                if isinstance(action, actions.Apply) and action.kind == "Deployment" and action.name == name:
                    assert action.manifest["spec"]["replicas"] == total, "the stable was scaled down"
        self.check_last_ready_pods_kept(plan)
        if any(
            e.state == "RolledBack" and (b := before.revision(e.name)) is not None and b.state != "RolledBack"
            for e in after.revisions
        ) and after.candidate_revision is None:
            assert after.scale_downs == [], "a finished rollback left revisions in their scale-down delay"
        if after.rollout is not None and after.rollout.mode == "Rollback":
            target = after.revision(after.candidate_revision)
            assert target is not None and target.promoted_at is not None, "a rollback to a revision that never served"


    def check_last_ready_pods_kept(self, plan: actions.Plan) -> None:
        """The plan never deletes the Deployments with the last ready pods, unless an admin asked
        or analysis failed (the revision's reason says so)."""
        children = self.cluster.children()
        ready = {d.name: d.ready_replicas for d in children.deployments}
        deletes = {a.name for a in plan.actions if isinstance(a, actions.Delete) and a.kind == "Deployment"}
        if self.wiped or not any(ready[name] for name in deletes if name in ready):
            return
        if any(count for name, count in ready.items() if name not in deletes):
            return
        for entry in plan.status.revisions:
            if manifests.deployment_name("alerts", entry.name) in deletes and ready.get(
                manifests.deployment_name("alerts", entry.name)
            ):
                assert entry.reason in keep_serving.DELIBERATE, (
                    f"the last ready pods ({entry.name}, {entry.state}/{entry.reason}) were taken away"
                )


@pytest.mark.parametrize("seed", SEEDS)
def test_a_random_walk_keeps_every_invariant(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state.Draft, "move", _checked_move(state.Draft.move))
    rng = random.Random(seed)
    walk = Walk(rng, Cluster(spec()))
    walk.cluster.wire = walk.wire()
    walk.cluster.wire.pop("paused", None)
    for _ in range(STEPS):
        walk.move_world()
        try:
            walk.decide_and_check()
        except AssertionError as error:
            raise AssertionError(f"seed {seed} at t={walk.now}: {error}\n" + "\n".join(walk.log[-15:])) from None
