"""Kopf is set up to keep no state in a FaissIndex's status and to stream only labelled children."""

from __future__ import annotations

import kopf

from faiss_operator.controller.runtime import caches, handlers


def test_kopf_state_goes_to_annotations_and_child_watches_are_label_filtered() -> None:
    settings = kopf.OperatorSettings()
    handlers.configure_kopf(settings)
    progress = settings.persistence.progress_storage
    diffbase = settings.persistence.diffbase_storage
    assert isinstance(progress, kopf.AnnotationsProgressStorage) and progress.prefix == "kopf.faiss.dev"
    assert isinstance(diffbase, kopf.AnnotationsDiffBaseStorage) and diffbase.prefix == "kopf.faiss.dev"
    selectors = {(s.group, s.version, s.plural or s.any_name): v for s, v in settings.watching.label_selectors.items()}
    assert selectors == {
        ("batch", "v1", "jobs"): "faiss.dev/index",
        ("", "v1", "pods"): "faiss.dev/index",
        ("apps", "v1", "deployments"): "faiss.dev/index",
        ("", "v1", "services"): "faiss.dev/index",
        ("policy", "v1", "poddisruptionbudgets"): "faiss.dev/index",
    }
    assert settings.posting.reporting_component == "faiss-operator"


def test_watch_requests_have_explicit_server_client_and_connect_timeouts() -> None:
    defaults = kopf.OperatorSettings().watching
    assert (defaults.server_timeout, defaults.client_timeout) == (None, None)  # Kopf's own: wait forever
    settings = kopf.OperatorSettings()
    handlers.configure_kopf(settings)
    watching = settings.watching
    assert (watching.server_timeout, watching.client_timeout, watching.connect_timeout) == (300.0, 330.0, 30.0)
    handlers.configure_kopf(settings, handlers.WatchTimeouts(server_seconds=60, client_seconds=75, connect_seconds=5))
    assert (watching.server_timeout, watching.client_timeout, watching.connect_timeout) == (60, 75, 5)


def test_only_event_handlers_are_registered_so_kopf_writes_nothing_to_a_faissindex() -> None:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, reconciler=None, cache=caches.Caches())  # type: ignore[arg-type]  # handlers are not called here
    assert registry._changing.get_all_handlers() == []
    assert registry._spawning.get_all_handlers() == []
    watched = {(h.selector.group, h.selector.any_name) for h in registry._watching.get_all_handlers() if h.selector}
    kinds = {("faiss.dev", "faissindexes"), ("batch", "jobs"), ("", "pods"), ("apps", "deployments"), ("", "services"),
             ("policy", "poddisruptionbudgets"), ("", "persistentvolumeclaims"),
             ("", "namespaces")}  # fmt: skip
    assert watched == kinds
    # the same watches fill one index per kind: what a pass reads
    indexed = {(h.selector.group, h.selector.any_name): h.id for h in registry._indexing.get_all_handlers() if h.selector}
    assert indexed == {kind: f"cache_{kind[1]}" for kind in kinds}
