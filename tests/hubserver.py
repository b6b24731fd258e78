"""A loopback HTTP server speaking the Hugging Face Hub's file protocol, for tests of the model store.

It serves the API calls and resolve URLs huggingface_hub makes (see shared HUB-NOTES.md), records
every request, and can cut a transfer half-way or slow it down. Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class Repo:
    files: dict[str, bytes]
    sha: str = ""

    def __post_init__(self) -> None:
        digest = hashlib.sha1()
        for name in sorted(self.files):
            digest.update(name.encode() + hashlib.sha256(self.files[name]).digest())
        self.sha = digest.hexdigest()  # changes whenever any file changes, as a commit would


@dataclass
class HubServer:
    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    cuts: dict[str, int] = field(default_factory=dict)  # file path -> how many more GETs to cut half-way
    delay: float = 0.0  # seconds to sleep per 64 KiB chunk (makes concurrent pulls overlap)
    url: str = ""

    def add_repo(self, repo_id: str, files: dict[str, bytes | Path]) -> str:
        data = {k: v.read_bytes() if isinstance(v, Path) else v for k, v in files.items()}
        self.repos[repo_id] = Repo(data)
        return self.repos[repo_id].sha

    def gets(self, suffix: str = "") -> list[str]:
        """Paths of GET requests for file contents (resolve URLs), optionally ending with `suffix`."""
        return [p for m, p in self.requests if m == "GET" and "/resolve/" in p and p.endswith(suffix)]

    def start(self) -> HubServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return None

            def do_HEAD(self) -> None:
                self.route(head=True)

            def do_GET(self) -> None:
                self.route(head=False)

            def route(self, head: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                server.requests.append(("HEAD" if head else "GET", path))
                if path == "/api/agent-harnesses":
                    return self.send_json({"standardEnvVars": [], "harnesses": {}})
                if path.startswith("/api/models/"):
                    return self.api(path[len("/api/models/"):])
                parts = path.strip("/").split("/", 4)
                if len(parts) == 5 and parts[2] == "resolve":
                    return self.resolve(f"{parts[0]}/{parts[1]}", parts[3], parts[4], head)
                self.send_error_code(404, "RepoNotFound")

            def api(self, rest: str) -> None:
                bits = rest.split("/")
                repo_id, tail = "/".join(bits[:2]), bits[2:]
                repo = server.repos.get(repo_id)
                if repo is None:
                    return self.send_error_code(404, "RepoNotFound")
                if tail[:1] == ["revision"] and tail[1:2] not in (["main"], [repo.sha]):
                    return self.send_error_code(404, "RevisionNotFound")
                if tail[:1] == ["tree"]:
                    return self.send_json([{"type": "file", "path": p, "size": len(b),
                                            "oid": hashlib.sha1(b).hexdigest()} for p, b in repo.files.items()])
                siblings = [{"rfilename": p, "size": len(b), "blobId": hashlib.sha1(b).hexdigest()}
                            for p, b in repo.files.items()]
                self.send_json({"id": repo_id, "modelId": repo_id, "sha": repo.sha, "siblings": siblings,
                                "private": False, "disabled": False, "gated": False, "tags": []})

            def resolve(self, repo_id: str, revision: str, name: str, head: bool) -> None:
                repo = server.repos.get(repo_id)
                if repo is None:
                    return self.send_error_code(404, "RepoNotFound")
                if revision not in ("main", repo.sha):
                    return self.send_error_code(404, "RevisionNotFound")
                if name not in repo.files:
                    return self.send_error_code(404, "EntryNotFound", {"X-Repo-Commit": repo.sha})
                body = repo.files[name]
                start = 0
                ranged = self.headers.get("Range", "")
                if ranged.startswith("bytes=") and not head:
                    start = int(ranged[6:].split("-")[0] or 0)
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", repo.sha)
                self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                if head:
                    return
                payload = body[start:]
                if server.cuts.get(name, 0) > 0:
                    server.cuts[name] -= 1
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True  # the client sees a short body: a dropped transfer
                    return
                for i in range(0, len(payload), 65536):
                    if server.delay:
                        time.sleep(server.delay)
                    self.wfile.write(payload[i:i + 65536])

            def send_json(self, data: object) -> None:
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def send_error_code(self, status: int, code: str, extra: dict[str, str] | None = None) -> None:
                body = json.dumps({"error": code}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
