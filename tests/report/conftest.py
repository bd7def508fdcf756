"""The report tests use the dashboards' shared simulated run (one definition, in tests/dashboards)."""

from tests.dashboards.conftest import client, run  # noqa: F401 - fixtures re-exported for this folder
