"""The OpenAPI page (``/api/schema/swagger``) with Swagger UI's assets served by the service
itself, from the ``swagger-ui-py`` package, so the page works without internet (Litestar's default
loads them, and its favicon, from a CDN: offline, the page was blank)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router

__all__ = ["ASSETS_PATH", "openapi_assets", "openapi_config"]

ASSETS_PATH = "/api/schema/assets"
"""Where Swagger UI's scripts and styles are served."""


def _swagger_ui_static() -> Path:
    """The package's copy of swagger-ui-dist (located without importing the package, whose
    ``__init__`` pulls in web-framework adapters the service does not need)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(spec.origin).parent / "static"


def openapi_config() -> OpenAPIConfig:
    swagger = SwaggerRenderPlugin(
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
        path="/swagger",
    )
    return OpenAPIConfig(title="faddl", version="0.1.0", path="/api/schema", render_plugins=[swagger])


def openapi_assets() -> Router:
    """The assets' route: cached by browsers for a day, limited like any other route."""
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[_swagger_ui_static()],
        include_in_schema=False,
        cache_control=None,
        name="openapi-assets",
    )
