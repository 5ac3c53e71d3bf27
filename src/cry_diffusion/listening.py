"""A blind listening test: can people tell the generated cries from real ones?

A study is one folder (the pipeline's `listening` rule writes results/listening/NAME/):

    index.html     the test; from the server it loads each trial over /api, from a file it reads trials.js
    trials.js      every rater's trials without the key, for the page opened as a file (no server)
    plan.json      the key: which stimulus is what, each rater's trials in order, the exclusion rule.
                   Never served, never shared.
    stimuli/       every clip under an opaque random name, loudness-matched
    answers.sqlite one row per answer (SQLite, WAL), made by the server or by `import`

    python -m cry_diffusion.listening serve results/listening/embedded      # prints the URL to share
    python -m cry_diffusion.listening import results/listening/embedded listening-*.json

This module is that command: the server (the page, the stimuli and the /api) and the import. The
library side is three modules that serve nothing, and the analysis of the answers a fourth:

    from cry_diffusion import listening_analysis, listening_build, listening_plan, listening_store
    listening_build.build(folder, real, real_categories, {"steps-200": (audio, labels)}, StudyParams(), "embedded")
    plan = listening_plan.load_plan(folder)    # the key; slot_trials(plan, r): any rater slot's trials
    store = listening_store.Store(folder)      # the database, checked against the plan
    store.add(payload)                         # the server's and the importer's one way in
    listening_analysis.analyse(listening_store.study_plan(folder), listening_store.read_answers(folder), ...)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from .listening_plan import StudyError
from .listening_store import BadRequest, Store, import_files

MAX_BODY = 4096  # bytes: an answer is a few hundred; anything larger is refused unread
STIMULUS = re.compile(r"[0-9a-f]{16}\.wav")  # the only file names the server hands out


class Handler(BaseHTTPRequestHandler):
    """The page, the stimuli and the /api; nothing else of the folder is reachable."""

    store: Store  # set by serve()
    server_version = "cry-diffusion-listening"

    def log_message(self, fmt, *args):  # one line per request on stderr, without the client's address
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    def _send(self, status: int, body: bytes, kind: str = "application/json", cache: str = "no-store") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: dict) -> None:
        self._send(status, json.dumps(obj).encode())

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def do_GET(self):
        path = urlsplit(self.path).path
        try:
            if path in ("/", "/index.html"):
                return self._send(200, (self.store.folder / "index.html").read_bytes(), "text/html; charset=utf-8")
            if path.startswith("/stimuli/"):
                name = unquote(path[len("/stimuli/"):])
                if not STIMULUS.fullmatch(name) or name[:-4] not in self.store.plan["stimuli"]:
                    return self._error(404, "no such stimulus")
                rater = parse_qs(urlsplit(self.path).query).get("rater", [None])[0]
                if rater and self.command == "GET":  # what the server sent whom: an answer needs its clips sent first
                    self.store.fetched(rater, name[:-4])
                return self._send(200, (self.store.folder / "stimuli" / name).read_bytes(), "audio/wav", "private, max-age=3600")
            match = re.fullmatch(r"/api/raters/([^/]+)", path)
            if match:
                return self._json(200, self.store.progress(unquote(match.group(1))))
            return self._error(404, "not found")
        except BadRequest as exc:
            return self._error(exc.status, str(exc))

    do_HEAD = do_GET

    def do_POST(self):
        path = urlsplit(self.path).path
        if path not in ("/api/raters", "/api/answers"):
            return self._error(404, "not found")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._error(411, "a Content-Length is needed")
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True  # the body is left unread
            return self._error(413, f"bodies are at most {MAX_BODY} bytes")
        body = self.rfile.read(length)
        try:
            if path == "/api/raters":
                return self._json(201, {"rater": self.store.claim()})
            try:
                payload = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                return self._error(400, "malformed JSON")
            stored = self.store.add(payload)
            return self._json(201 if stored else 200, {"stored": stored, **self.store.progress(payload["rater"])})
        except BadRequest as exc:
            return self._error(exc.status, str(exc))

    def _refuse(self):
        self._error(405, "method not allowed")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse


def make_server(folder: str | Path, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    store = Store(folder)
    handler = type("StudyHandler", (Handler,), {"store": store})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cry_diffusion.listening", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a study and record its answers in FOLDER/answers.sqlite")
    serve.add_argument("folder")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface; 127.0.0.1 by default)")
    serve.add_argument("--port", type=int, default=8000, help="0: any free port")
    imp = sub.add_parser("import", help="add answers downloaded by the page run from files (one JSON per rater)")
    imp.add_argument("folder")
    imp.add_argument("files", nargs="+")
    a = ap.parse_args(argv)
    try:
        if a.command == "import":
            said = import_files(a.folder, a.files)
            print("\n".join(said))
            return 1 if any("REFUSED" in line for line in said) else 0
        server = make_server(a.folder, a.host, a.port)
    except StudyError as exc:
        print(exc, file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    print(f"serving {a.folder} ({len(server.RequestHandlerClass.store.plan['raters'])} rater slots)", flush=True)
    print(f"share: http://{shown}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
