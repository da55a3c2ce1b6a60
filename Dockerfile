# One image for the operator (`faiss-operator run`), the build Jobs (`faiss-operator build`) and the
# serving pods (`faiss-operator serve`). Its name is the operator's default image,
# ghcr.io/faiss-operator/faiss-operator:<version> (controller/decision/settings.py DEFAULT_IMAGE; a test
# keeps the version equal to pyproject.toml's):
#
#   docker build -t ghcr.io/faiss-operator/faiss-operator:0.1.0 .
#
# Docker is not available on the project's machines, so this file is checked by tests
# (tests/ship/test_dockerfile.py) but never built there.

# A pinned slim Python base (Debian bookworm); the same in both stages so the venv's interpreter path holds.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only what the package needs: no tests, benchmarks or hack/ in the build context's copy.
COPY pyproject.toml README.md ./
COPY operator/ operator/
# The runtime dependencies only: no extra (test, bench, validate).
RUN python -m venv /opt/faiss-operator \
 && /opt/faiss-operator/bin/pip install --upgrade pip \
 && /opt/faiss-operator/bin/pip install . \
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
