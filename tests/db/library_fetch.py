"""procrastinate's own fetch function, as its package ships it, for comparing ours against.

Migration 0402 replaces procrastinate_fetch_job_v2 with a version that finds the same job by index
probes (its header says why). The library's version is read from the installed package's
schema.sql (the pin is the version 0400 copied) and created under another name in pg_temp, so a test
or bench/job_fetch.py can ask both the same question in the same database and leave nothing behind.
"""

from __future__ import annotations

from pathlib import Path

import procrastinate

LIBRARY_FETCH = "pg_temp.library_fetch_job_v2"


def library_fetch_function_sql() -> str:
    """CREATE FUNCTION pg_temp.library_fetch_job_v2(...): procrastinate's procrastinate_fetch_job_v2."""
    schema = (Path(procrastinate.__file__).parent / "sql" / "schema.sql").read_text()
    start = schema.index("CREATE FUNCTION procrastinate_fetch_job_v2(")
    end = schema.index("$$;", start) + len("$$;")
    return schema[start:end].replace("procrastinate_fetch_job_v2", LIBRARY_FETCH, 1)
