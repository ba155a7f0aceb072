"""The embedded default server (real offline models) on a loopback port, shared by the end-to-end tests."""

import pytest

from falante.config import Settings
from server.app import create_app
from server.run import running


@pytest.fixture(scope="session")
async def real_server():
    settings = Settings()
    settings.server.ui = False
    app = create_app(settings)
    async with running(app, settings) as host:
        yield host, app
