#!/usr/bin/env python3
"""A stand-in for the Hugging Face Hub, for hermetic tests of src/hub.

Serves every folder <root>/<org>/<name>/ as the model repo "org/name":

  GET  /api/models/<org>/<name>[/revision/<rev>]  -> {"id", "sha", "siblings": [{"rfilename"}]}
  HEAD|GET /<org>/<name>/resolve/<rev>/<path>     -> the file; ETag = git blob sha1, X-Repo-Commit.
       LFS files (*.safetensors, *.bin and anything >= 1 MiB) answer with a 302 to an absolute
       CDN URL and X-Linked-Etag (sha256) / X-Linked-Size, like the real Hub.
  HEAD|GET /__cdn/<sha256>                        -> the LFS file; needs no token.

The commit id is a sha1 over the repo's files, so it changes when a test edits a file. "main" and
that commit are the only known revisions. File bodies honour single `Range: bytes=a-[b]` headers.

Options:
  --root DIR         folder holding <org>/<name>/ repos (required)
  --token T          require `Authorization: Bearer T` on /api and /resolve (else 401)
  --drop-after N     send only N body bytes of a file response, then close the connection...
  --drop-count K     ...for the first K such responses (default 1)
  --log FILE         append one JSON line per request: method, path, range, authorization

Prints the port on stdout once listening on 127.0.0.1.
"""

import argparse
import hashlib
import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".h5", ".msgpack", ".onnx", ".gguf")
LFS_MIN_SIZE = 1 << 20


class Repo:
    def __init__(self, folder):
        self.files = {}  # rfilename -> bytes
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for f in sorted(filenames):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, folder).replace(os.sep, "/")
                with open(path, "rb") as fh:
                    self.files[rel] = fh.read()
        h = hashlib.sha1()
        for name, data in sorted(self.files.items()):
            h.update(name.encode() + b"\0" + hashlib.sha1(data).digest())
        self.commit = h.hexdigest()

    @staticmethod
    def git_oid(data):
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    @staticmethod
    def is_lfs(name, data):
        return name.endswith(LFS_SUFFIXES) or len(data) >= LFS_MIN_SIZE


class State:
    def __init__(self, args):
        self.root = args.root
        self.token = args.token
        self.drop_after = args.drop_after
        self.drops_left = args.drop_count if args.drop_after is not None else 0
        self.log_path = args.log
        self.lock = threading.Lock()

    def repo(self, org, name):
        folder = os.path.join(self.root, org, name)
        if not org or not name or org.startswith(".") or name.startswith("."):
            return None
        return Repo(folder) if os.path.isdir(folder) else None

    def find_lfs(self, sha256):
        for org in sorted(os.listdir(self.root)):
            org_dir = os.path.join(self.root, org)
            if not os.path.isdir(org_dir):
                continue
            for name in sorted(os.listdir(org_dir)):
                repo = self.repo(org, name)
                for data in (repo.files.values() if repo else []):
                    if hashlib.sha256(data).hexdigest() == sha256:
                        return data
        return None

    def log(self, entry):
        if not self.log_path:
            return
        with self.lock, open(self.log_path, "a") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()

    def take_drop(self):
        with self.lock:
            if self.drops_left > 0:
                self.drops_left -= 1
                return True
            return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set in main()

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle plus delayed ACKs add
        # ~40 ms to every request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def do_HEAD(self):
        self.handle_request(head=True)

    def do_GET(self):
        self.handle_request(head=False)

    # --- helpers -------------------------------------------------------------------------------
    def send_json(self, status, obj, headers=None, head=False):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_error_json(self, status, code, message, head):
        self.send_json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message}, head)

    def authorized(self):
        token = self.state.token
        return token is None or self.headers.get("Authorization") == "Bearer " + token

    def send_file(self, data, headers, head):
        size = len(data)
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and "," not in rng:
            first, _, last = rng[len("bytes="):].partition("-")
            try:
                start = int(first)
                end = int(last) if last else size - 1
            except ValueError:
                start, end = 0, size - 1
            else:
                if start >= size or end < start:
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % size)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                end = min(end, size - 1)
                status = 206
        body = data[start:end + 1]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        drop_after = self.state.drop_after
        if drop_after is not None and len(body) > drop_after and self.state.take_drop():
            self.wfile.write(body[:drop_after])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)

    # --- routing -------------------------------------------------------------------------------
    def handle_request(self, head):
        path = urlsplit(self.path).path
        self.state.log({
            "method": self.command,
            "path": path,
            "range": self.headers.get("Range"),
            "authorization": self.headers.get("Authorization"),
        })
        parts = [unquote(p) for p in path.split("/")[1:]]

        if len(parts) == 2 and parts[0] == "__cdn":
            data = self.state.find_lfs(parts[1])
            if data is None:
                return self.send_error_json(404, "EntryNotFound", "No such blob", head)
            return self.send_file(data, {"ETag": '"%s"' % parts[1]}, head)

        if len(parts) >= 4 and parts[:2] == ["api", "models"]:
            if not self.authorized():
                return self.send_error_json(401, "GatedRepo", "Invalid or missing token", head)
            repo = self.state.repo(parts[2], parts[3])
            if repo is None:
                return self.send_error_json(404, "RepoNotFound", "Repository not found", head)
            revision = "main"
            if len(parts) >= 6 and parts[4] == "revision":
                revision = "/".join(parts[5:])
            elif len(parts) != 4:
                return self.send_error_json(404, "EntryNotFound", "Unknown API route", head)
            if revision not in ("main", repo.commit):
                return self.send_error_json(404, "RevisionNotFound", "Invalid rev id: " + revision, head)
            return self.send_json(200, {
                "id": parts[2] + "/" + parts[3],
                "modelId": parts[2] + "/" + parts[3],
                "sha": repo.commit,
                "private": False,
                "siblings": [{"rfilename": f} for f in sorted(repo.files)],
            }, head=head)

        if len(parts) >= 5 and parts[2] == "resolve":
            if not self.authorized():
                return self.send_error_json(401, "GatedRepo", "Invalid or missing token", head)
            repo = self.state.repo(parts[0], parts[1])
            if repo is None:
                return self.send_error_json(404, "RepoNotFound", "Repository not found", head)
            if parts[3] not in ("main", repo.commit):
                return self.send_error_json(404, "RevisionNotFound", "Invalid rev id: " + parts[3], head)
            name = "/".join(parts[4:])
            data = repo.files.get(name)
            if data is None:
                return self.send_error_json(404, "EntryNotFound", "Entry not found", head)
            if Repo.is_lfs(name, data):
                sha256 = hashlib.sha256(data).hexdigest()
                host, port = self.server.server_address[:2]
                self.send_response(302)
                self.send_header("Location", "http://%s:%d/__cdn/%s" % (host, port, quote(sha256)))
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("X-Linked-Etag", '"%s"' % sha256)
                self.send_header("X-Linked-Size", str(len(data)))
                # Deliberately not the blob's id: clients must prefer X-Linked-Etag.
                self.send_header("ETag", 'W/"redirect-%s"' % repo.git_oid(data)[:16])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            return self.send_file(data, {"ETag": '"%s"' % repo.git_oid(data), "X-Repo-Commit": repo.commit},
                                  head)

        return self.send_error_json(404, "EntryNotFound", "Unknown route", head)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True)
    parser.add_argument("--token")
    parser.add_argument("--drop-after", type=int)
    parser.add_argument("--drop-count", type=int, default=1)
    parser.add_argument("--log")
    args = parser.parse_args()

    Handler.state = State(args)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
