"""gitlab-internal-api: GitLab's internal API on aiohttp, PostgreSQL and Redis."""
