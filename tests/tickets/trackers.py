"""A real HTTP server on 127.0.0.1 that speaks the slice of each tracker API the adapters use.

It keeps what a real tracker keeps (issues, incidents, alerts, comments), deduplicates where the
real service does (Standard Webhooks receivers on ``webhook-id``, PagerDuty on ``dedup_key``,
Opsgenie on ``alias``) and not where it does not (Jira, GitHub, ServiceNow), and can be scripted
to fail: ``faults`` is a queue consumed by mutating requests (POST/PATCH), each either
``("status", code, headers)`` (Jira's search, a POST that writes nothing, is exempt) - answer that without doing anything - or ``("slow", seconds)`` -
do the work, then answer too late for the client's timeout.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse


class Tracker:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # every request as received
        self.faults: deque = deque()
        self.webhooks: dict[str, list[dict]] = {}  # webhook-id -> deliveries
        self.jira: dict[str, dict] = {}  # key -> {"fields", "comments"}
        self.github: dict[int, dict] = {}
        self.snow: dict[str, dict] = {}  # sys_id -> record (+ "work_notes": [...])
        self.pd: dict[str, list[dict]] = {}  # dedup_key -> events
        self.og: dict[str, dict] = {}  # alias -> {"alert", "count", "notes"}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Tracker:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def posts(self, path_part: str) -> list[dict]:
        return [r for r in self.requests if r["method"] in ("POST", "PATCH") and path_part in r["path"]]

    # -- the API ---------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict, headers: dict, body: bytes) -> tuple[int, dict, Any]:
        data = json.loads(body) if body else None
        if path == "/_counts":  # for a tracker run as a separate process (benchmarks)
            return 200, {}, {"webhook_ids": len(self.webhooks), "webhook_deliveries": sum(map(len, self.webhooks.values())),
                             "jira_issues": len(self.jira), "jira_comments": sum(len(v["comments"]) for v in self.jira.values()),
                             "pagerduty_keys": len(self.pd), "pagerduty_events": sum(map(len, self.pd.values()))}
        if path == "/hook":
            self.webhooks.setdefault(headers.get("webhook-id", ""), []).append({"headers": headers, "body": body})
            return 200, {}, {"ok": True}
        if path == "/rest/api/3/issue":
            key = f"RISK-{len(self.jira) + 1}"
            self.jira[key] = {"fields": data["fields"], "comments": []}
            return 201, {}, {"id": str(10000 + len(self.jira)), "key": key, "self": f"{self.url}/rest/api/3/issue/{key}"}
        m = re.fullmatch(r"/rest/api/3/issue/([A-Z]+-\d+)/comment", path)
        if m:
            if method == "GET":
                return 200, {}, {"comments": [{"body": c} for c in self.jira[m.group(1)]["comments"]]}
            self.jira[m.group(1)]["comments"].append(data["body"])
            return 201, {}, {"id": "1"}
        if path == "/rest/api/3/search/jql":
            label = re.search(r'labels = "([^"]+)"', data["jql"]).group(1)
            return 200, {}, {"issues": [{"id": "1", "key": k} for k, v in self.jira.items()
                                        if label in v["fields"]["labels"]]}
        m = re.fullmatch(r"/repos/([\w.-]+/[\w.-]+)/issues", path)
        if m:
            if method == "GET":
                label = query.get("labels", [""])[0]
                return 200, {}, [{"number": n, "html_url": f"{self.url}/{m.group(1)}/issues/{n}", "body": i["body"]}
                                 for n, i in sorted(self.github.items(), reverse=True)
                                 if not label or label in i["labels"]]
            n = len(self.github) + 1
            self.github[n] = {**data, "comments": []}
            return 201, {}, {"number": n, "html_url": f"https://github.example/{m.group(1)}/issues/{n}"}
        m = re.fullmatch(r"/repos/[\w.-]+/[\w.-]+/issues/(\d+)/comments", path)
        if m:
            if method == "GET":
                return 200, {}, [{"body": c} for c in self.github[int(m.group(1))]["comments"]]
            self.github[int(m.group(1))]["comments"].append(data["body"])
            return 201, {}, {"id": 1}
        if path == "/api/now/table/incident":
            if method == "GET":
                cid = query["sysparm_query"][0].removeprefix("correlation_id=")
                return 200, {}, {"result": [{"sys_id": s, "number": r["number"]} for s, r in self.snow.items()
                                            if r["correlation_id"] == cid][:1]}
            sys_id = f"{len(self.snow) + 1:032x}"
            self.snow[sys_id] = {**data, "number": f"INC{len(self.snow) + 1:07d}", "work_notes": []}
            return 201, {}, {"result": {"sys_id": sys_id, "number": self.snow[sys_id]["number"]}}
        m = re.fullmatch(r"/api/now/table/incident/(\w+)", path)
        if m and method == "PATCH":
            self.snow[m.group(1)]["work_notes"].append(data["work_notes"])
            return 200, {}, {"result": {"sys_id": m.group(1)}}
        if path == "/v2/enqueue":
            if not data.get("routing_key") or data.get("event_action") not in ("trigger", "acknowledge", "resolve"):
                return 400, {}, {"status": "invalid event", "message": "Event object is invalid"}
            self.pd.setdefault(data["dedup_key"], []).append(data)
            return 202, {}, {"status": "success", "message": "Event processed", "dedup_key": data["dedup_key"]}
        if path == "/v2/alerts":
            entry = self.og.setdefault(data["alias"], {"alert": data, "count": 0, "notes": []})
            entry["count"] += 1
            return 202, {}, {"result": "Request will be processed", "took": 0.01, "requestId": "r1"}
        m = re.fullmatch(r"/v2/alerts/([^/]+)/notes", path)
        if m:
            self.og[unquote(m.group(1))]["notes"].append(data["note"])
            return 202, {}, {"result": "Request will be processed", "took": 0.01, "requestId": "r2"}
        return 404, {}, {"error": f"no route {method} {path}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        tracker = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                url = urlparse(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                query = parse_qs(url.query)
                slow = 0.0
                with tracker.lock:
                    tracker.requests.append({"at": time.monotonic(), "method": self.command, "path": url.path, "query": query,
                                             "headers": headers, "body": body})
                    writes = self.command in ("POST", "PATCH") and "/search/" not in url.path
                    fault = tracker.faults.popleft() if tracker.faults and writes else None
                    tracker.requests[-1]["fault"] = fault
                    if fault and fault[0] == "status":
                        status, extra, payload = fault[1], fault[2] if len(fault) > 2 else {}, {"error": "scripted"}
                    else:
                        status, extra, payload = tracker.handle(self.command, url.path, query, headers, body)
                        slow = fault[1] if fault else 0.0
                if slow:
                    time.sleep(slow)
                out = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PATCH = _serve

        return Handler


if __name__ == "__main__":  # python -m tests.tickets.trackers PORT: a tracker for manual runs and benchmarks
    import sys

    t = Tracker()
    t.server.server_close()
    t.server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), t._handler())
    print(t.url, flush=True)
    t.server.serve_forever()
