"""A minimal Hugging Face Hub-compatible HTTP server for the write-path tests (127.0.0.1 only).

What it implements, honestly and no more: the endpoints `huggingface_hub` uses for the regular
(non-LFS) commit path and for reading back what was committed:

- `GET /api/whoami-v2`, `POST /api/repos/create`, `POST /api/{type}s/{repo}/branch/{branch}`
- `GET /api/{type}s/{repo}` and `/revision/{rev}` (repo info), `POST /api/validate-yaml`
- `POST /api/{type}s/{repo}/preupload/{rev}`: every file is "regular" up to `--max-file-bytes`;
  larger files are refused with 413 (there is no LFS or Xet storage behind this server)
- `POST /api/{type}s/{repo}/commit/{rev}` (ndjson: header, file, deletedFile, deletedFolder;
  `parentCommit` is enforced with 412; `lfsFile` and pull requests are refused with 422)
- `POST /api/{type}s/{repo}/paths-info/{rev}`, `GET /api/{type}s/{repo}/tree/{rev}/{path}`
- `HEAD|GET /{repo}/resolve/{rev}/{path}` and `/datasets/{repo}/resolve/{rev}/{path}`

Repositories are real bare git repositories under `ROOT/{models,datasets}/{org}/{name}`, written with
git plumbing, so olah can serve the same folder as local mirrors (`mirrors_path = ROOT`) for the read
path. Writes need `Authorization: Bearer TOKEN`; private repos need it for reads too. The request log
never contains headers, so tokens never appear in it. `POST /_test/fail-next-commit` makes the next
commit fail with 500 (once, no retry loop on our side) to test that a failed push can be rerun.

Run: `python tests/hub_server.py --root DIR --token TOKEN [--port 0]`; it prints `READY <url>`.
`running_hub(...)` starts it that way from a test and stops it afterwards.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

USER = "tester"
# The license ids and size buckets the Hub's metadata validation accepts (the subset lcrec's cards can produce).
LICENSES = {
    "apache-2.0",
    "mit",
    "bsd-3-clause",
    "cc-by-4.0",
    "cc-by-sa-4.0",
    "cc-by-nc-4.0",
    "cc0-1.0",
    "openrail",
    "llama3",
    "gemma",
    "other",
    "unknown",
}
SIZE_CATEGORIES = {"n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B", "n>1B"}
REPO_TYPES = {"models": "model", "datasets": "dataset"}
_GIT_ENV = {
    "GIT_AUTHOR_NAME": USER,
    "GIT_AUTHOR_EMAIL": f"{USER}@localhost",
    "GIT_COMMITTER_NAME": USER,
    "GIT_COMMITTER_EMAIL": f"{USER}@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


class HubError(Exception):
    """An HTTP error answered the way the Hub answers it (status, X-Error-Code, X-Error-Message)."""

    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}


class GitRepo:
    """One bare git repository, read and written with git plumbing (never a work tree)."""

    def __init__(self, path: Path):
        self.path = path

    def git(self, *args: str, stdin: bytes | None = None, env: dict | None = None) -> bytes:
        result = subprocess.run(
            ["git", "--git-dir", str(self.path), *args],
            input=stdin,
            capture_output=True,
            env={**os.environ, **_GIT_ENV, **(env or {})},
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)}: {result.stderr.decode(errors='replace')}")
        return result.stdout

    def head(self, revision: str) -> str:
        """Full commit sha of a branch, tag or sha; HubError 404 RevisionNotFound when there is none."""
        if revision.startswith("refs/pr/"):
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        try:
            return self.git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").decode().strip()
        except RuntimeError:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound") from None

    def branches(self) -> list[str]:
        out = self.git("for-each-ref", "--format=%(refname:short)", "refs/heads/").decode()
        return [line for line in out.splitlines() if line]

    def entries(self, commit: str) -> dict[str, tuple[str, int]]:
        """{path: (blob sha, size)} of every file at `commit`."""
        out = self.git("ls-tree", "-r", "-l", "-z", commit).decode()
        files = {}
        for record in out.split("\0"):
            if record:
                meta, path = record.split("\t", 1)
                _mode, _kind, sha, size = meta.split()
                files[path] = (sha, int(size))
        return files

    def tree_sha(self, commit: str, folder: str) -> str:
        return self.git("rev-parse", f"{commit}:{folder}").decode().strip()

    def blob(self, sha: str) -> bytes:
        return self.git("cat-file", "blob", sha)

    def commit_date(self, commit: str) -> str:
        """The committer date in the Hub's format (`%Y-%m-%dT%H:%M:%S.%fZ`, UTC)."""
        seconds = int(self.git("log", "-1", "--format=%ct", commit).decode().strip())
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def write_commit(
        self, parent: str | None, files: dict[str, bytes], deleted: list[str], folders: list[str], message: str
    ) -> str:
        """Build a tree from `parent` plus changes with a private index file; return the new commit sha."""
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if parent:
                self.git("read-tree", parent, env=env)
            current = set(self.entries(parent)) if parent else set()
            removed = []
            for path in deleted:
                if path not in current:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                removed.append(path)
            for folder in folders:
                inside = [path for path in current if path.startswith(folder.rstrip("/") + "/")]
                if not inside:
                    raise HubError(404, f"A folder with this name doesn't exist: {folder}", "EntryNotFound")
                removed += inside
            # --index-info works without a work tree (this is a bare repo): mode 0 removes an entry.
            index_info = [f"0 {'0' * 40}\t{path}" for path in removed]
            for path, content in files.items():
                sha = self.git("hash-object", "-w", "--stdin", stdin=content).decode().strip()
                index_info.append(f"100644 {sha}\t{path}")
            if index_info:
                self.git(
                    "update-index", "--add", "--index-info", stdin=("\n".join(index_info) + "\n").encode(), env=env
                )
            tree = self.git("write-tree", env=env).decode().strip()
        parents = ["-p", parent] if parent else []
        return self.git("commit-tree", tree, *parents, "-m", message or "commit").decode().strip()


class HubStore:
    """Repositories on disk plus their visibility; one lock serialises every write."""

    def __init__(self, root: Path, token: str, max_file_bytes: int):
        self.root, self.token, self.max_file_bytes = root, token, max_file_bytes
        self.lock = threading.Lock()
        self.fail_next_commit = False

    def repo(self, type_dir: str, repo_id: str) -> GitRepo:
        path = self.root / type_dir / repo_id
        if not (path / "HEAD").exists():
            raise HubError(404, "Repository not found", "RepoNotFound")
        return GitRepo(path)

    def visibility_file(self, type_dir: str, repo_id: str) -> Path:
        return self.root / "_private" / type_dir / f"{repo_id.replace('/', '--')}.json"

    def is_private(self, type_dir: str, repo_id: str) -> bool:
        return self.visibility_file(type_dir, repo_id).exists()


def _validate_metadata(content: str, repo_type: str) -> tuple[list[str], list[str]]:
    """(errors, warnings) for a README's YAML block: the subset of the Hub's checks this server knows."""
    from huggingface_hub.repocard_data import model_index_to_eval_results

    match = re.match(r"^---\n(.*?)\n---\n", content, flags=re.DOTALL)
    if not match:
        return [], ["Empty or missing yaml metadata in repo card"]
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        return [f"YAML does not parse: {error}"], []
    if not isinstance(data, dict):
        return ["YAML metadata must be a mapping"], []
    errors = []
    if repo_type == "model" and "model-index" in data:
        try:
            _name, results = model_index_to_eval_results(data["model-index"])
            if not results:
                errors.append('"model-index" has no results')
        except (KeyError, TypeError, ValueError) as error:
            errors.append(f'"model-index" is malformed: {error!r}')
    if repo_type == "dataset":
        for config in data.get("configs", []):
            if not isinstance(config, dict) or "config_name" not in config or "data_files" not in config:
                errors.append(f'"configs" entry needs config_name and data_files: {config!r}')
    for key in ("tags", "datasets", "language", "size_categories"):
        if key in data and not isinstance(data[key], (list, str)):
            errors.append(f'"{key}" must be a list or a string')
    licenses = data.get("license", [])
    for license_id in [licenses] if isinstance(licenses, str) else licenses:
        if license_id not in LICENSES:
            errors.append(f'"license" must be one of the Hub\'s license ids, got {license_id!r}')
    sizes = data.get("size_categories", [])
    for size in [sizes] if isinstance(sizes, str) else sizes if isinstance(sizes, list) else []:
        if size not in SIZE_CATEGORIES:
            errors.append(f'"size_categories" must be one of {sorted(SIZE_CATEGORIES)}, got {size!r}')
    return errors, []


class Handler(BaseHTTPRequestHandler):
    server_version = "lcrec-test-hub/1"
    protocol_version = "HTTP/1.1"
    store: HubStore

    # --- plumbing -------------------------------------------------------------------------------
    def log_message(self, format: str, *args) -> None:
        sys.stderr.write(f"hub_server {self.command} {self.path} -> {args[1] if len(args) > 1 else ''}\n")

    def _body(self) -> bytes:
        return self.body

    def _send(self, status: int, payload=None, headers: dict | None = None, body: bytes | None = None) -> None:
        if body is None:
            body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        content_type = "application/json" if payload is not None else "application/octet-stream"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {self.store.token}"

    def _require_write(self) -> None:
        if not self._authorized():
            raise HubError(401, "Invalid credentials in Authorization header")

    def _readable(self, type_dir: str, repo_id: str) -> GitRepo:
        repo = self.store.repo(type_dir, repo_id)
        if self.store.is_private(type_dir, repo_id) and not self._authorized():
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        # Read the whole body first: on a kept-alive connection an unread body would corrupt the next request.
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        try:
            for method, pattern, handler in ROUTES:
                if method == self.command or (method == "GET" and self.command == "HEAD"):
                    match = re.fullmatch(pattern, path)
                    if match:
                        groups = {key: unquote(value) for key, value in match.groupdict().items() if value is not None}
                        return handler(self, query=query, **groups)
            raise HubError(404, f"no route for {self.command} {path}")
        except Exception as error:  # noqa: BLE001 - answered like the Hub's own failures, never a dropped connection
            if not isinstance(error, HubError):
                sys.stderr.write(f"hub_server {self.command} {self.path} failed: {error!r}\n")
                error = HubError(500, f"internal error: {error}")
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            self._send(error.status, {"error": error.message, **error.extra}, headers)

    do_GET = do_HEAD = do_POST = _dispatch

    # --- account and repos ----------------------------------------------------------------------
    def whoami(self, query) -> None:
        if not self._authorized():
            raise HubError(401, "Invalid credentials in Authorization header")
        self._send(
            200,
            {
                "type": "user",
                "name": USER,
                "fullname": USER,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
            },
        )

    def create_repo(self, query) -> None:
        self._require_write()
        payload = json.loads(self._body() or b"{}")
        type_dir = {"model": "models", "dataset": "datasets", None: "models"}.get(payload.get("type"))
        if type_dir is None:
            raise HubError(400, f"unsupported repo type {payload.get('type')!r}")
        repo_id = f"{payload.get('organization') or USER}/{payload['name']}"
        path = self.store.root / type_dir / repo_id
        prefix = "" if type_dir == "models" else "datasets/"
        url = f"http://{self.headers['Host']}/{prefix}{repo_id}"
        with self.store.lock:
            if (path / "HEAD").exists():
                raise HubError(409, "You already created this repo", extra={"url": url})
            path.mkdir(parents=True)
            repo = GitRepo(path)
            repo.git("init", "--bare", "--quiet", "--initial-branch=main")
            first = repo.write_commit(
                None,
                {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"},
                [],
                [],
                "initial commit",
            )
            repo.git("update-ref", "refs/heads/main", first)
            if payload.get("visibility") == "private" or payload.get("private"):
                marker = self.store.visibility_file(type_dir, repo_id)
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text("{}")
        self._send(200, {"url": url, "name": repo_id})

    def create_branch(self, query, type_dir, repo_id, branch) -> None:
        self._require_write()
        payload = json.loads(self._body() or b"{}")
        repo = self.store.repo(type_dir, repo_id)
        with self.store.lock:
            if branch in repo.branches():
                raise HubError(409, f"Reference already exists: refs/heads/{branch}")
            start = repo.head(payload.get("startingPoint") or "main")
            repo.git("update-ref", f"refs/heads/{branch}", start)
        self._send(200, {})

    def repo_info(self, query, type_dir, repo_id, revision="main") -> None:
        repo = self._readable(type_dir, repo_id)
        sha = repo.head(revision)
        files = repo.entries(sha)
        card_data = None
        if "README.md" in files:
            match = re.match(r"^---\n(.*?)\n---\n", repo.blob(files["README.md"][0]).decode(), flags=re.DOTALL)
            card_data = yaml.safe_load(match.group(1)) if match else None
        self._send(
            200,
            {
                "_id": sha,
                "id": repo_id,
                "author": repo_id.split("/")[0],
                "sha": sha,
                "lastModified": repo.commit_date(sha),
                "createdAt": repo.commit_date(sha),
                "private": self.store.is_private(type_dir, repo_id),
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "cardData": card_data,
                "siblings": [
                    {"rfilename": path, "size": size, "blobId": blob} for path, (blob, size) in sorted(files.items())
                ],
            },
        )

    def validate_yaml(self, query) -> None:
        payload = json.loads(self._body() or b"{}")
        errors, warnings = _validate_metadata(payload.get("content", ""), payload.get("repoType", "model"))
        status = 400 if errors else 200
        self._send(
            status, {"errors": [{"message": e} for e in errors], "warnings": [{"message": w} for w in warnings]}
        )

    # --- commits --------------------------------------------------------------------------------
    def preupload(self, query, type_dir, repo_id, revision) -> None:
        self._require_write()
        repo = self.store.repo(type_dir, repo_id)
        current = repo.entries(repo.head(revision))
        answers = []
        for file in json.loads(self._body())["files"]:
            if file["size"] > self.store.max_file_bytes:
                raise HubError(
                    413,
                    f"{file['path']}: {file['size']} bytes is over this test server's regular-file limit; it "
                    f"has no LFS storage",
                )
            answers.append(
                {
                    "path": file["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": current.get(file["path"], (None,))[0],
                }
            )
        self._send(200, {"files": answers, "commitOid": repo.head(revision)})

    def commit(self, query, type_dir, repo_id, revision) -> None:
        self._require_write()
        if query.get("create_pr"):
            raise HubError(422, "pull requests are not implemented by this test server")
        repo = self.store.repo(type_dir, repo_id)
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the first ndjson line must be the commit header")
        header = lines[0]["value"]
        files, deleted, folders = {}, [], []
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, f"{value['path']}: only base64 encoding is supported")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                deleted.append(value["path"])
            elif key == "deletedFolder":
                folders.append(value["path"])
            else:
                raise HubError(422, f"operation {key!r} is not implemented by this test server (no LFS storage)")
        with self.store.lock:
            if self.store.fail_next_commit:
                self.store.fail_next_commit = False
                raise HubError(500, "injected failure: the commit was not applied")
            head = repo.head(revision)
            if header.get("parentCommit") and header["parentCommit"] != head:
                raise HubError(412, f"parent commit {header['parentCommit']} is not the head of {revision} ({head})")
            message = header.get("summary", "") + ("\n\n" + header["description"] if header.get("description") else "")
            sha = repo.write_commit(head, files, deleted, folders, message)
            repo.git("update-ref", f"refs/heads/{revision}", sha, head)
        prefix = "" if type_dir == "models" else "datasets/"
        self._send(
            200,
            {
                "success": True,
                "commitOid": sha,
                "commitUrl": f"http://{self.headers['Host']}/{prefix}{repo_id}/commit/{sha}",
                "pullRequestUrl": None,
            },
        )

    def fail_next_commit(self, query) -> None:
        self.store.fail_next_commit = True
        self._send(200, {})

    def resolve_model(self, query, repo_id, revision, path) -> None:
        """Model file URLs carry no type segment."""
        self.resolve(query, "models", repo_id, revision, path)

    # --- reading --------------------------------------------------------------------------------
    def _entry(self, repo: GitRepo, commit: str, files: dict, path: str) -> dict | None:
        if path in files:
            blob, size = files[path]
            return {"type": "file", "oid": blob, "size": size, "path": path}
        if any(name.startswith(path.rstrip("/") + "/") for name in files):
            return {"type": "directory", "oid": repo.tree_sha(commit, path), "size": 0, "path": path}
        return None

    def paths_info(self, query, type_dir, repo_id, revision) -> None:
        repo = self._readable(type_dir, repo_id)
        commit = repo.head(revision)
        files = repo.entries(commit)
        form = parse_qs(self._body().decode())
        found = [self._entry(repo, commit, files, path.strip("/")) for path in form.get("paths", [])]
        self._send(200, [entry for entry in found if entry is not None])

    def tree(self, query, type_dir, repo_id, revision, path="") -> None:
        repo = self._readable(type_dir, repo_id)
        commit = repo.head(revision)
        files = repo.entries(commit)
        folder = path.strip("/")
        prefix = folder + "/" if folder else ""
        if folder and self._entry(repo, commit, files, folder) is None:
            raise HubError(404, f"{folder} does not exist on {revision}", "EntryNotFound")
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        names = set()
        for name in files:
            if not name.startswith(prefix):
                continue
            parts = name[len(prefix) :].split("/")
            depth = len(parts) if recursive else 1
            for level in range(1, depth + 1):
                names.add(prefix + "/".join(parts[:level]))
        self._send(200, [self._entry(repo, commit, files, name) for name in sorted(names)])

    def resolve(self, query, type_dir, repo_id, revision, path) -> None:
        repo = self._readable(type_dir, repo_id)
        commit = repo.head(revision)
        files = repo.entries(commit)
        if path not in files:
            raise HubError(404, f"{path} does not exist on {revision}", "EntryNotFound")
        blob, _size = files[path]
        self._send(200, body=repo.blob(blob), headers={"ETag": f'"{blob}"', "X-Repo-Commit": commit})


_REPO = r"(?P<repo_id>[\w.-]+/[\w.-]+)"
_TYPE = r"(?P<type_dir>models|datasets)"
ROUTES = [
    ("GET", r"/api/whoami-v2", Handler.whoami),
    ("POST", r"/api/repos/create", Handler.create_repo),
    ("POST", r"/api/validate-yaml", Handler.validate_yaml),
    ("POST", r"/_test/fail-next-commit", Handler.fail_next_commit),
    ("POST", rf"/api/{_TYPE}/{_REPO}/branch/(?P<branch>[^/]+)", Handler.create_branch),
    ("POST", rf"/api/{_TYPE}/{_REPO}/preupload/(?P<revision>[^/]+)", Handler.preupload),
    ("POST", rf"/api/{_TYPE}/{_REPO}/commit/(?P<revision>[^/]+)", Handler.commit),
    ("POST", rf"/api/{_TYPE}/{_REPO}/paths-info/(?P<revision>[^/]+)", Handler.paths_info),
    ("GET", rf"/api/{_TYPE}/{_REPO}/tree/(?P<revision>[^/]+)(?:/(?P<path>.*))?", Handler.tree),
    ("GET", rf"/api/{_TYPE}/{_REPO}(?:/revision/(?P<revision>[^/]+))?", Handler.repo_info),
    ("GET", rf"/(?P<type_dir>datasets)/{_REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)", Handler.resolve),
    ("GET", rf"/{_REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)", Handler.resolve_model),
]


@contextlib.contextmanager
def running_hub(
    root: Path, token: str, log: Path, max_file_bytes: int = 10 * 2**20, start_timeout: float = 30
) -> Iterator[str]:
    """Run this server in a subprocess (stderr to `log`) for the `with` block; yields its URL."""
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, __file__, "--root", str(root), "--token", token, "--max-file-bytes", str(max_file_bytes)],
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
        try:
            ready, _, _ = select.select([process.stdout], [], [], start_timeout)
            line = process.stdout.readline() if ready else ""
            if not line.startswith("READY "):
                raise RuntimeError(f"hub_server did not start in {start_timeout}s: {line!r}")
            yield line.split()[1]
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path, help="folder holding the git repositories")
    parser.add_argument("--token", required=True, help="the one accepted write token")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-file-bytes", type=int, default=10 * 2**20)
    args = parser.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    Handler.store = HubStore(args.root, args.token, args.max_file_bytes)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"READY http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
