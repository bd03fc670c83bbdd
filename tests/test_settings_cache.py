"""The instance settings' cache (service/domain/app_settings.py) while the database is down."""

from __future__ import annotations

import asyncpg
import pytest

from service.db.pool import is_database_outage
from service.domain.app_settings import SettingsCache
from tests.topology.postgres_servers import free_port


async def test_a_long_outage_does_not_grow_the_failure_every_request_is_answered_with():
    """Past the stale bound every request of the retry window gets the one failure: it must not
    carry each earlier request's frames (a worker's memory grew 60 MB in a 90 s outage)."""
    cache = SettingsCache(ttl_seconds=0.5, stale_seconds=0.0, retry_seconds=60.0)
    async with asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:{free_port()}/x", min_size=0) as nowhere:
        depths = []
        for _ in range(200):
            with pytest.raises(OSError) as failure:
                await cache.get(nowhere)
            assert is_database_outage(failure.value)  # still read from where it was raised: a 503
            depth, frame = 0, failure.value.__traceback__
            while frame is not None:
                depth, frame = depth + 1, frame.tb_next
            depths.append(depth)
    assert max(depths) <= depths[0] + 2, depths[:5] + depths[-5:]
