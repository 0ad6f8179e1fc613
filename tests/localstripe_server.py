"""Runs ``localstripe`` (a fake but stateful Stripe) for the end-to-end tests: on 127.0.0.1 only,
with its store kept in memory (it would otherwise share /tmp/localstripe.pickle between runs).

    python tests/localstripe_server.py PORT
"""

from __future__ import annotations

import sys

from aiohttp import web
from localstripe import resources, server


def main() -> None:
    port = int(sys.argv[1])
    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    resources.Store.try_load_from_disk = lambda self: None  # type: ignore[method-assign]
    web.run_app(server.app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
