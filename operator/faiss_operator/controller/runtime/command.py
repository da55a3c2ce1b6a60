"""`faiss-operator run`: the operator process (Kopf), as a user or the operator's Deployment runs it.

It reads the cluster from $KUBECONFIG (or the pod's ServiceAccount in the cluster), watches
FaissIndex objects and their labelled children, and reconciles each FaissIndex with the pure
`decide()` (see controller/runtime/reconciler.py). Operator-wide defaults of the index layer come from
its environment: FAISS_INDEX_TYPE, FAISS_NLIST, FAISS_NPROBE and FAISS_CONFIG_<KEY>, checked at
start by the config file's rule (index/settings.py: an environment it refuses stops the operator
with one line per variable, an unknown FAISS_* variable is logged); the operator reads no config
file, so a FAISS_CONFIG_FILE is logged as ignored. FAISS_OPERATOR_IMAGE is the image of the build
Jobs and serving pods.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Mapping

import kopf

from faiss_operator.controller.decision import settings as operator_settings
from faiss_operator.controller.runtime import applier as applying
from faiss_operator.controller.runtime import caches, handlers, kube_api
from faiss_operator.controller.runtime import metrics as operator_metrics
from faiss_operator.controller.runtime import reconciler as reconciling
from faiss_operator.controller.runtime import source_objects
from faiss_operator.index import config as index_config
from faiss_operator.index import settings as index_settings

PEERING_NAME = "faiss-operator"
logger = logging.getLogger("faiss_operator.controller")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def _positive_whole(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of seconds above 0")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0-65535)")
    return int(text)


def liveness_endpoint(value: str) -> str:
    """`8080` -> `http://0.0.0.0:8080/healthz`; a URL is kept as it is."""
    if value.isdigit():
        return f"http://0.0.0.0:{_port(value)}/healthz"
    if not value.startswith("http://"):
        raise argparse.ArgumentTypeError(f"{value!r}: give a port or an http:// URL such as http://0.0.0.0:8080/healthz")
    return value


def missing_kubeconfig(environ: Mapping[str, str]) -> str | None:
    """The first file that $KUBECONFIG names and that does not exist; None when all exist or
    it is unset (a colon-separated list, as kubectl reads it)."""
    for path in (environ.get("KUBECONFIG") or "").split(os.pathsep):
        if path and not os.path.exists(path):
            return path
    return None


def environment_is_usable(environ: Mapping[str, str]) -> bool:
    """Says each problem of the index variables: False (after one stderr line each) when the
    environment is refused, True after logging what is only reported."""
    check = index_settings.check_environment(environ)
    problems = list(check.errors)
    if not problems:
        try:
            # As the decision resolves it: without the file (controller/decision/revisions.py).
            without_file = {k: v for k, v in environ.items() if k != index_settings.ENV_CONFIG_FILE}
            index_settings.resolve_config(env=without_file, config_file=None)
        except index_config.ConfigError as error:  # FAISS_INDEX_TYPE=Annoy, FAISS_CONFIG_M=fast, ...
            problems.append(str(error))
    for problem in problems:
        print(f"faiss-operator run: refused environment: {problem}", file=sys.stderr)
    for warning in check.warnings:
        logger.warning("Ignored environment variable: %s", warning)
    if environ.get(index_settings.ENV_CONFIG_FILE):
        logger.warning("Ignored environment variable: %s: the operator reads no config file; put its values in "
                       "the FaissIndex spec or the chart's ml.faiss values", index_settings.ENV_CONFIG_FILE)
    return not problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = operator_settings.OperatorSettings()
    timing = reconciling.Timing()
    watch = handlers.WatchTimeouts()
    parser.add_argument(
        "--namespace", "-n", action="append", default=[], metavar="NS",
        help="watch FaissIndex objects in this namespace (repeatable; Kopf glob patterns allowed); "
        "all namespaces when not given",
    )  # fmt: skip
    parser.add_argument(
        "--liveness", type=liveness_endpoint, default=None, metavar="URL-or-PORT",
        help="serve Kopf's health endpoint here, e.g. 8080 (= http://0.0.0.0:8080/healthz); off when not given",
    )  # fmt: skip
    parser.add_argument(
        "--metrics-port", type=_port, default=0, metavar="PORT",
        help="serve the operator's Prometheus metrics on http://0.0.0.0:PORT/metrics; 0 (the default) is off",
    )  # fmt: skip
    parser.add_argument(
        "--analysis-interval", type=_positive, default=defaults.analysis_interval_seconds, metavar="SECONDS",
        help="how often a canary step is measured again while its analysis is pending "
        f"(default {defaults.analysis_interval_seconds:g})",
    )  # fmt: skip
    parser.add_argument(
        "--analysis-timeout", type=_positive, default=30.0, metavar="SECONDS",
        help="the longest one live measurement of candidate and stable pods may take (default 30)",
    )  # fmt: skip
    parser.add_argument(
        "--resync", type=_positive, default=timing.resync_seconds, metavar="SECONDS",
        help=f"look at every FaissIndex again at least this often, events or not (default {timing.resync_seconds:g})",
    )  # fmt: skip
    parser.add_argument(
        "--source-recheck", type=_positive, default=source_objects.RECHECK_SECONDS, metavar="SECONDS",
        help="ask the object store again this often for the ETag or version id of an s3:// source that "
        "nothing else changed, so that a new upload under the same key is a new revision "
        f"(default {source_objects.RECHECK_SECONDS:g})",
    )  # fmt: skip
    parser.add_argument(
        "--watch-server-timeout", type=_positive_whole, default=watch.server_seconds, metavar="SECONDS",
        help="the API server ends each watch request after this many whole seconds and the operator starts "
        f"the next (default {watch.server_seconds})",
    )  # fmt: skip
    parser.add_argument(
        "--watch-client-timeout", type=_positive, default=watch.client_seconds, metavar="SECONDS",
        help="the operator gives up on a watch request that has been open this long, so a connection that "
        f"died silently is noticed; longer than --watch-server-timeout (default {watch.client_seconds:g})",
    )  # fmt: skip
    parser.add_argument(
        "--watch-connect-timeout", type=_positive, default=watch.connect_seconds, metavar="SECONDS",
        help=f"the longest connecting for a watch request may take (default {watch.connect_seconds:g})",
    )  # fmt: skip
    parser.add_argument(
        "--priority", type=int, default=None, metavar="N",
        help="run with Kopf peering (needs Kopf's peering CRDs and a peering object named "
        f"'{PEERING_NAME}'): the running operator with the highest priority works, others stand by; "
        "without it the operator runs standalone (one replica, strategy Recreate)",
    )  # fmt: skip
    parser.add_argument(
        "--standby", action="store_true",
        help="run with Kopf peering at priority 0, as the standby of an operator started with --priority above 0",
    )  # fmt: skip
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("--verbose", action="store_true", help="log what Kopf does (debug level)")
    verbosity.add_argument("--quiet", action="store_true", help="log only warnings and errors")


def watch_timeouts(args: argparse.Namespace) -> handlers.WatchTimeouts:
    return handlers.WatchTimeouts(
        server_seconds=args.watch_server_timeout,
        client_seconds=args.watch_client_timeout,
        connect_seconds=args.watch_connect_timeout,
    )


def run(args: argparse.Namespace) -> int:
    timeouts = watch_timeouts(args)
    problem = timeouts.problem()
    if problem is not None:
        print(f"faiss-operator run: {problem}", file=sys.stderr)
        return 2
    kopf.configure(verbose=args.verbose, quiet=args.quiet, log_prefix=False)
    if not args.verbose:
        # Kopf logs "Handler ... succeeded." for every watch event; our own lines say what was done.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if not environment_is_usable(os.environ):
        return 1
    try:
        environment_settings = operator_settings.OperatorSettings.from_environment(os.environ)
    except ValueError as error:  # FAISS_S3_* (Helm objectStore.*) that a FaissIndex could not use
        print(f"faiss-operator run: {error}", file=sys.stderr)
        return 2
    settings = dataclasses.replace(environment_settings, analysis_interval_seconds=args.analysis_interval)
    absent = missing_kubeconfig(os.environ)
    if absent is not None:
        # Said here: the client would go on to the in-cluster config and report that failure instead.
        print(f"faiss-operator run: KUBECONFIG names {absent}, which does not exist", file=sys.stderr)
        return 1
    metrics = operator_metrics.OperatorMetrics()
    try:
        api = kube_api.KubeApi(requests=metrics.count_request)
    except Exception as error:  # no kubeconfig, unreachable API server, the CRD not installed
        print(f"faiss-operator run: cannot use the Kubernetes API: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    cache = caches.Caches()
    metrics.watch_caches(cache.sizes)
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    reconciler = reconciling.Reconciler(
        reader=cache,
        applier=applying.Applier(api=api, post_event=handlers.post_event, writes=cache),
        settings=settings,
        metrics=metrics,
        timing=dataclasses.replace(reconciling.Timing(), resync_seconds=args.resync),
        analysis_timeout_seconds=args.analysis_timeout,
        sources=source_objects.SourceObjects(
            secrets=api.get_secret_data, default_store=settings.object_store, environ=os.environ,
            recheck_seconds=args.source_recheck,
        ),
    )
    registry = kopf.OperatorRegistry()
    handlers.register(registry, reconciler, cache, timeouts=timeouts)
    peering = args.priority is not None or args.standby
    logging.getLogger("faiss_operator.controller").info(
        "Started faiss-operator namespaces=%s image=%s peering=%s",
        ",".join(args.namespace) or "*", settings.image, "on" if peering else "off",
    )  # fmt: skip
    kopf.run(
        registry=registry,
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=args.liveness,
        standalone=not peering,
        priority=(0 if args.standby else args.priority) if peering else None,
        peering_name=PEERING_NAME if peering else None,
    )
    return 0
