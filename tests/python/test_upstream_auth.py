"""The gateway's upstream JWT, checked by an independent implementation (PyJWT), as Zhipu's own
SDK makes it: HS256 over the secret, header `sign_type: SIGN`, claims in milliseconds."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import openai

from conftest import ADMIN_TOKEN, Process, admin, fresh_database

KEY_ID, SECRET = "pyjwt-id", "pyjwt-secret-0123456789abcdef0123456789"


class ZhipuLike(BaseHTTPRequestHandler):
    seen = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        scheme, token = self.headers["Authorization"].split(" ", 1)
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
        ZhipuLike.seen.append((scheme, header, claims, body))
        answer = {
            "id": "1", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_the_upstream_token_verifies_with_pyjwt(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), ZhipuLike)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "DATABASE_URL": fresh_database(),
        "ZHIPUAI_API_KEY": f"{KEY_ID}.{SECRET}",
        "ZHIPUAI_BASE_URL": f"http://127.0.0.1:{server.server_port}/api/paas/v4",
        "GLM_GATEWAY_LISTEN": "127.0.0.1:0",
        "GLM_GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
        "GLM_GATEWAY_JOURNAL_DIR": str(tmp_path / "journal"),
    }
    gateway = Process(["serve"], "listening on", env)
    try:
        key = admin(gateway.url, "POST", "/admin/keys", {"name": "jwt", "team": "jwt"})["key"]
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
        for _ in range(2):
            client.chat.completions.create(model="glm-4.7", messages=[{"role": "user", "content": "hi"}])
    finally:
        gateway.stop()
        server.shutdown()
    (scheme, header, claims, body), (_, _, second, _) = ZhipuLike.seen
    assert scheme == "Bearer"
    assert header["alg"] == "HS256" and header["sign_type"] == "SIGN"
    now_ms = time.time() * 1000
    assert claims["api_key"] == KEY_ID
    assert abs(claims["timestamp"] - now_ms) < 60_000, "timestamp is in milliseconds"
    assert claims["exp"] - claims["timestamp"] >= 10 * 60 * 1000, "a token lives minutes, in milliseconds"
    assert second == claims, "the token is cached, not signed per request"
    assert body["model"] == "glm-4.7"
