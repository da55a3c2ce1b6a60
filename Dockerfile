# One image for the operator (`faiss-operator run`), the build Jobs (`faiss-operator build`) and the
# serving pods (`faiss-operator serve`). Its name is the operator's default image,
# ghcr.io/faiss-operator/faiss-operator:<version> (controller/decision/settings.py DEFAULT_IMAGE; a test
# keeps the version equal to pyproject.toml's).
#
# With Docker, on the official Python base:
#
#   docker build -t ghcr.io/faiss-operator/faiss-operator:0.1.0 .
#
# Without Docker (the project's machines and CI): `make image` builds this file with podman and
# runc on a Debian bookworm base made by mmdebstrap, passed as PYTHON_IMAGE (hack/image/build.sh).

# A pinned slim Python base (Debian bookworm); the same in both stages so the venv's interpreter path holds.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The runtime dependencies at pinned versions first, in a layer of their own: a change of the
# package's code rebuilds only the small layer below. No extra (test, bench, validate).
COPY hack/image/requirements.txt requirements.txt
RUN python -m venv /opt/faiss-operator \
 && /opt/faiss-operator/bin/pip install pip==26.3 \
 && /opt/faiss-operator/bin/pip install --requirement requirements.txt
# Only what the package needs: no tests, benchmarks or the rest of hack/ in the build context's copy.
COPY pyproject.toml README.md ./
COPY operator/ operator/
# --no-deps: every dependency is pinned above. pip leaves: the final stage never installs.
RUN /opt/faiss-operator/bin/pip install --no-deps . \
 && /opt/faiss-operator/bin/pip uninstall --yes pip \
 && /opt/faiss-operator/bin/faiss-operator --help >/dev/null

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/faiss-operator /opt/faiss-operator
ENV PATH=/opt/faiss-operator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A numeric non-root user, so that Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --gid 65532 faiss && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin faiss
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["faiss-operator"]
CMD ["run"]
