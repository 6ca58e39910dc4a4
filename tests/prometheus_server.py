"""A real Prometheus server (Debian's `prometheus`, installed by
scripts/setup) for the exporter tests: on loopback, with its own temporary
storage, scraping given targets every second; stopped and removed after."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

CONFIG = """global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: rsttrace
    static_configs:
      - targets: [%s]
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_for(what, check, timeout=60, every=0.5):
    """check()'s first truthy value within `timeout` s, else AssertionError
    with the last value it returned."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as e:
            last = e
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError("%s: not within %ds (last: %r)" % (what, timeout,
                                                             last))


class Prometheus:
    def __init__(self, targets):
        self.dir = tempfile.mkdtemp(prefix="rsttrace-fleet-prom-")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(CONFIG % ", ".join('"%s"' % t for t in targets))
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(
            ["prometheus", "--config.file=" + config,
             "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for("prometheus ready", lambda: get(self.url + "/-/ready"), 60)

    def query(self, expr):
        """{label values tuple: value} of an instant query."""
        body = json.loads(get(self.url + "/api/v1/query?" +
                              urllib.parse.urlencode({"query": expr})))
        assert body["status"] == "success", body
        return {tuple(sorted(r["metric"].items())): float(r["value"][1])
                for r in body["data"]["result"]}

    def logs(self):
        self.log.flush()
        with open(os.path.join(self.dir, "log")) as f:
            return f.read()[-3000:]

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
