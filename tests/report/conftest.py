import pytest

from tests.dashboards.stored_run import StoredRun, stored_run


@pytest.fixture(scope="session")
def run(chdb_dir, tmp_path_factory) -> StoredRun:
    """The shared simulated run (built once per session, whichever test directory asks first)."""
    return stored_run(chdb_dir, tmp_path_factory.mktemp("dash_sim"))


@pytest.fixture(scope="session")
def client(run):
    from pipeline.storage.clickhouse import connect

    return connect(run.dsn, create_database=False)
