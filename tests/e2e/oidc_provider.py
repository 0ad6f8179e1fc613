"""An OpenID Connect provider stand-in for the dashboard's login test: discovery, an authorization
endpoint that signs the one configured person in at once (sending the browser back with a code),
a token endpoint answering with an RS256 ID token (the nonce it was asked for, the roles where
AUTH_ROLE_CLAIM looks), and its JWKS. A real HTTP server, so Streamlit and Authlib run their own
code against it."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = ["OidcProvider"]


class OidcProvider:
    def __init__(self, client_id: str, claims: dict[str, Any]) -> None:
        self.client_id = client_id
        self.claims = claims
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes: dict[str, str] = {}  # code -> the nonce of its authorization request
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._json(owner.metadata())
                elif url.path == "/jwks":
                    jwk = json.loads(RSAAlgorithm.to_jwk(owner.key.public_key()))
                    self._json({"keys": [{**jwk, "kid": "test", "use": "sig", "alg": "RS256"}]})
                elif url.path == "/authorize":
                    code = secrets.token_urlsafe(16)
                    owner.codes[code] = query.get("nonce", "")
                    back = {"code": code, "state": query.get("state", "")}
                    self.send_response(302)
                    self.send_header("Location", f"{query['redirect_uri']}?{urlencode(back)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._json({"error": "not_found"}, 404)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                nonce = owner.codes.pop(form.get("code", ""), None)
                if urlsplit(self.path).path != "/token" or nonce is None:
                    self._json({"error": "invalid_grant"}, 400)
                    return
                now = int(time.time())
                claims = {"iss": owner.issuer, "aud": owner.client_id, "iat": now, "exp": now + 600, "nonce": nonce}
                token = jwt.encode({**claims, **owner.claims}, owner.key, algorithm="RS256", headers={"kid": "test"})
                self._json({"access_token": "at", "token_type": "Bearer", "expires_in": 600, "id_token": token})

            def _json(self, body: dict[str, Any], status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    def __enter__(self) -> OidcProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
