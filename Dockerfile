# gitlab-internal-api: one image, one worker per container by default (scale containers, or pass
# --workers N). Point DATABASE_URL and REDIS_URL at real servers in production; without them the
# embedded PostgreSQL and Redis start inside the container (fine for a trial, not for production).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GITLAB_INTERNAL_API_ROOT=/var/lib/gitlab-internal-api

# git: the repository checks (force pushes) when a storage path is mounted
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/gitlab-internal-api --uid 10001 gitlab-internal-api

WORKDIR /opt/gitlab-internal-api
COPY requirements.lock pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.lock
COPY service/ service/
COPY schemas/ schemas/
COPY sql/ sql/
COPY config/ config/
# editable: the code keeps reading config/ and sql/ from this directory
RUN pip install --no-cache-dir --no-deps -e .

USER gitlab-internal-api
WORKDIR /var/lib/gitlab-internal-api
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/-/readiness', timeout=2)" || exit 1
CMD ["gitlab-internal-api", "serve", "--host", "0.0.0.0", "--port", "8080"]
