#!/usr/bin/env python3
"""The HTTP benchmark of the invoke path (issue 17); run it through scripts/bench-http.

One run measures, against the same machine at the same time:
  1. a bare axum server (crates/server/examples/bare_axum.rs) answering POST /echo
     with the same JSON body: the framework's ceiling, ratio 1.000;
  2. Tenantry's GET /healthz;
  3. POST /v1/installs/{id}/invoke of the Rust echo plugin, as an agent key bound to
     the install, a uniformly random org per request, over 10, 1,000 and 10,000 orgs
     (one install and one agent per org; one warm-up invoke per org before timing);
  4. the first invoke of cold orgs after a restart (no file open, nothing cached;
     the plugin compiled by one invoke before): the server's own time from its
     Server-Timing header;
  5. the server's resident memory after the largest run.
Embedded mode (SQLite) by default; --pooled adds the same on PostgreSQL (a database
created for the run and dropped after it).

Standard library only; the load generator is wrk (installed by scripts/bench-http).
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# TENANTRY_BENCH_BIN: another build to measure (say, an older commit's) with the same script.
BIN = os.environ.get("TENANTRY_BENCH_BIN") or os.path.join(ROOT, "target", "release", "tenantry")
BARE = os.path.join(ROOT, "target", "release", "examples", "bare_axum")
ECHO = os.path.join(ROOT, "examples", "plugins", "echo")
BODY = json.dumps({"action": "echo", "input": {"message": "hello", "n": 42}})
BARE_BODY = json.dumps({"message": "hello", "n": 42})
PERF_DIR = None
PG_ADMIN = os.environ.get("TENANTRY_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")

CONFIG = """
default_tier = "bench"
[tiers.bench]
base = "enterprise"
executions_per_day = 1000000000000
executions_per_month = 1000000000000
invocations_per_minute = 60000000
concurrent_executions = 100000
"""

WRK_LUA = """
local targets = {}
init = function(args)
  for line in io.lines(args[1]) do
    local key, install = line:match("(%S+) (%S+)")
    targets[#targets + 1] = {key, install}
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end
request = function()
  local t = targets[math.random(#targets)]
  return wrk.format("POST", "/v1/installs/" .. t[2] .. "/invoke",
    {["Authorization"] = "Bearer " .. t[1], ["Content-Type"] = "application/json"},
    [[BODY]])
end
done = function(summary, latency, requests)
  io.write(string.format("STATUS non2xx=%d errors=%d\\n",
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
""".replace("BODY", BODY)

BARE_LUA = """
wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Content-Type"] = "application/json"
""" % BARE_BODY


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Client:
    """One keep-alive HTTP connection per thread."""

    def __init__(self, addr):
        self.addr = addr
        self.local = threading.local()

    def call(self, method, path, key=None, body=None, expect=None):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            host, port = self.addr.rsplit(":", 1)
            conn = self.local.conn = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {}
        if key:
            headers["Authorization"] = "Bearer " + key
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            res = conn.getresponse()
            raw = res.read()
        except (http.client.HTTPException, OSError):
            self.local.conn = None
            raise
        if expect is not None and res.status != expect:
            raise RuntimeError(f"{method} {path}: {res.status} {raw[:300]!r}")
        return res, (json.loads(raw) if raw else None)


def start_bare():
    p = subprocess.Popen([BARE, "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    return p, line.split()[-1]


class Tenantry:
    def __init__(self, data, database_url=None):
        self.data = data
        self.database_url = database_url
        with open(os.path.join(data, "tenantry.toml"), "w") as f:
            f.write(CONFIG)
        self.proc = None
        self.operator_key = None

    def start(self):
        args = [BIN, "serve", "--data-dir", self.data, "--listen", "127.0.0.1:0",
                "--config", os.path.join(self.data, "tenantry.toml")]
        env = dict(os.environ)
        for k in ("TENANTRY_DATABASE_URL", "TENANTRY_REDIS_URL", "TENANTRY_CONFIG", "TENANTRY_MASTER_KEY"):
            env.pop(k, None)
        env["RUST_LOG"] = "warn"
        if self.database_url:
            args += ["--database-url", self.database_url]
        self.log = open(os.path.join(self.data, "server.log"), "a")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        while True:
            line = self.proc.stdout.readline()
            if not line:
                sys.exit(f"tenantry serve exited; see {self.data}/server.log")
            t = line.strip()
            if t.startswith("tny_"):
                self.operator_key = t
            if t.startswith("Tenantry listening on "):
                self.addr = t.split()[3].removeprefix("http://")
                break
        threading.Thread(target=lambda: self.proc.stdout.read(), daemon=True).start()
        self.client = Client(self.addr)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)

    def rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def cli(self, *args, cwd):
        env = dict(os.environ, TENANTRY_URL="http://" + self.addr, TENANTRY_API_KEY=self.operator_key,
                   TENANTRY_CONFIG_HOME=os.path.join(self.data, "cli-config"), NO_COLOR="1")
        out = subprocess.run([BIN, *args], cwd=cwd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"tenantry {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def publish_echo(self):
        work = os.path.join(self.data, "author")
        os.makedirs(work)
        shutil.copytree(ECHO, os.path.join(work, "echo"))
        public = [l.split()[2] for l in self.cli("plugin", "keygen", cwd=work).splitlines() if l.startswith("Public")][0]
        self.cli("publisher", "register", "examples", "--public-key", public, cwd=work)
        self.cli("plugin", "sign", "echo", cwd=work)
        self.cli("plugin", "publish", "echo", cwd=work)

    def add_org(self, n):
        c, op = self.client, self.operator_key
        _, org = c.call("POST", "/v1/orgs", op, {"name": f"bench-{n}"}, 201)
        oid = org["id"]
        _, user = c.call("POST", f"/v1/orgs/{oid}/users", op, {"name": "owner", "role": "owner"}, 201)
        _, k = c.call("POST", f"/v1/orgs/{oid}/keys", op, {"owner": {"kind": "user", "id": user["id"]}, "name": "owner"}, 201)
        owner = k["key"]
        _, inst = c.call("POST", "/v1/installs", owner, {"plugin": "@examples/echo", "config": {"greeting": "hi"}}, 201)
        _, agent = c.call("POST", "/v1/agents", owner, {"name": "bot", "grants": ["invoke"]}, 201)
        _, ak = c.call("POST", "/v1/keys", owner, {"owner": {"kind": "agent", "id": agent["id"]}, "name": "bot"}, 201)
        c.call("PUT", f"/v1/agents/{agent['id']}/installs/{inst['id']}", owner, None, 201)
        return ak["key"], inst["id"]

    def invoke(self, key, install):
        res, body = self.client.call("POST", f"/v1/installs/{install}/invoke", key, json.loads(BODY), 200)
        if body.get("outcome") != "OK":
            raise RuntimeError(f"invoke: {body}")
        m = re.search(r"dur=([0-9.]+)", res.getheader("server-timing") or "")
        return float(m.group(1)) if m else float("nan")


def parallel(fn, items, threads=6, label=""):
    out = [None] * len(items)
    done = 0
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        futs = {ex.submit(fn, it): i for i, it in enumerate(items)}
        for f in concurrent.futures.as_completed(futs):
            out[futs[f]] = f.result()
            done += 1
            if done % 500 == 0 or done == len(items):
                log(f"  {label}: {done}/{len(items)} ({time.time() - started:.0f} s)")
    return out


def wrk(addr, path, lua, args, duration, conns):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
        script = f.name
    cmd = ["wrk", f"-t2", f"-c{conns}", f"-d{duration}s", "--latency", "-s", script, f"http://{addr}{path}"]
    if args:
        cmd += ["--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([0-9.]+)(us|ms|s)\s*$", out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    bad = re.search(r"STATUS non2xx=(\d+) errors=(\d+)", out)
    non2xx = int(bad.group(1)) + int(bad.group(2)) if bad else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non2xx = max(non2xx, int(m.group(1)) if m else 0)
    return {"rps": rps, "p50": pct(50), "p99": pct(99), "bad": non2xx}


def run_mode(name, org_counts, duration, conns, cold, database_url=None):
    rows = []
    data = tempfile.mkdtemp(prefix=f"tenantry-bench-{name}-")
    t = Tenantry(data, database_url)
    t.start()
    try:
        t.publish_echo()
        rows.append(("Tenantry `GET /healthz`", wrk(t.addr, "/healthz", "", [], duration, conns)))
        targets = []
        for n in sorted(org_counts):
            new = parallel(t.add_org, list(range(len(targets), n)), label=f"{name}: orgs")
            targets += new
            target_file = os.path.join(data, f"targets-{n}.txt")
            with open(target_file, "w") as f:
                f.writelines(f"{k} {i}\n" for k, i in targets)
            log(f"  {name}: warm-up, one invoke per org ({n})")
            parallel(lambda ki: t.invoke(*ki), targets, label=f"{name}: warm-up")
            log(f"  {name}: wrk over {n} orgs for {duration} s")
            perf = None
            if PERF_DIR:
                out = os.path.join(PERF_DIR, f"perf-{name}-{n}.data")
                perf = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(t.proc.pid), "-o", out,
                                         "--", "sleep", str(duration)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            rows.append((f"invoke, {n:,} orgs", wrk(t.addr, "/v1/installs/x/invoke", WRK_LUA, [target_file], duration, conns)))
            if perf:
                perf.wait()
        rss = t.rss_mib()
        t.stop()
        # Cold orgs: a restarted server, nothing open or cached; sequential invokes
        # of orgs never touched since the restart.
        t.start()
        sample = random.sample(targets, min(cold + 1, len(targets)))
        # The first invoke after a restart also compiles the plugin (once per
        # version per process); it is reported apart.
        first = t.invoke(*sample[0])
        timings = [t.invoke(k, i) for k, i in sample[1:]]
        cold_stats = (statistics.median(timings), max(timings), len(timings), first)
        t.stop()
    finally:
        if t.proc and t.proc.poll() is None:
            t.proc.kill()
        shutil.rmtree(data, ignore_errors=True)
    return rows, rss, cold_stats


def psql(sql, url=PG_ADMIN):
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True, capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orgs", default="10,1000,10000", help="org counts, comma-separated")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--cold", type=int, default=50, help="cold orgs to time after a restart")
    ap.add_argument("--pooled", action="store_true", help="also run pooled mode on PostgreSQL")
    ap.add_argument("--only-pooled", action="store_true")
    ap.add_argument("--perf", metavar="DIR", help="record a perf profile of the server during each invoke run")
    a = ap.parse_args()
    global PERF_DIR
    PERF_DIR = a.perf
    if PERF_DIR:
        os.makedirs(PERF_DIR, exist_ok=True)
    counts = [int(x) for x in a.orgs.split(",")]

    bare, bare_addr = start_bare()
    try:
        base = wrk(bare_addr, "/echo", BARE_LUA, [], a.duration, a.connections)
    finally:
        bare.kill()
    results = []
    if not a.only_pooled:
        results.append(("embedded (SQLite)",) + run_mode("embedded", counts, a.duration, a.connections, a.cold))
    if a.pooled or a.only_pooled:
        name = "tenantry_bench_" + uuid.uuid4().hex[:12]
        role = name.replace("bench", "benchapp")
        psql(f"CREATE DATABASE {name}")
        owner = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        try:
            subprocess.run([BIN, "migrate", "--database-url", owner, "--app-role", role], check=True, capture_output=True)
            app = owner.replace("postgres@", f"{role}@", 1)
            results.append(("pooled (PostgreSQL, strict RLS)",) + run_mode("pooled", counts, a.duration, a.connections, a.cold, app))
        finally:
            psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            psql(f'DROP ROLE IF EXISTS "{role}"')

    print(f"\nwrk -t2 -c{a.connections} -d{a.duration}s on loopback; ratios against the bare axum server of this run.\n")
    print("| what | req/s | p50 ms | p99 ms | × bare axum | × 10 orgs |")
    print("|---|---|---|---|---|---|")
    print(f"| bare axum `POST /echo`, same JSON body | {base['rps']:,.0f} | {base['p50']:.2f} | {base['p99']:.2f} | 1.000 | |")
    for mode, rows, rss, cold in results:
        first = None
        for label, r in rows:
            rel = ""
            if label.startswith("invoke"):
                first = first or r
                rel = f"{r['rps'] / first['rps']:.3f}"
            bad = f" ({r['bad']} not 2xx!)" if r["bad"] else ""
            print(f"| {mode}: {label}{bad} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['rps'] / base['rps']:.3f} | {rel} |")
    print()
    for mode, rows, rss, cold in results:
        print(f"- {mode}: first invoke of a cold org after a restart, server time (Server-Timing): "
              f"median {cold[0]:.2f} ms, max {cold[1]:.2f} ms over {cold[2]} orgs "
              f"(the very first, which also compiles the plugin: {cold[3]:.1f} ms); "
              f"resident memory after the largest run: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
