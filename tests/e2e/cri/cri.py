#!/usr/bin/python3
"""A small CRI (runtime.v1) client for weir's end-to-end tests.

Talks gRPC to containerd's CRI plugin with Debian's python3-grpcio. The
message classes come from cri.proto beside this file, compiled with protoc
into a cache folder the first time they are needed (not committed).

Usage: cri.py [--endpoint unix:///path.sock] [--timeout S] COMMAND ...
Run `cri.py --help` or `cri.py COMMAND --help` for the commands.

Exit status: 0 on success; 1 when the runtime answered with an error (the
gRPC status code and message go to stderr as "cri.py: METHOD: CODE: text");
2 on a usage error; for `exec`, the command's own exit status.
"""

import argparse
import fcntl
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "cri.proto")
TEST_DIR = os.environ.get("WEIR_CRI_DIR", "/run/weir-test/containerd")
GEN_DIR = os.environ.get("WEIR_CRI_GEN_DIR", "/run/weir-test/cri-py")
DEFAULT_ENDPOINT = (os.environ.get("WEIR_CRI_ENDPOINT")
                    or os.environ.get("CONTAINER_RUNTIME_ENDPOINT")
                    or "unix://" + os.path.join(TEST_DIR, "containerd.sock"))
DEFAULT_IMAGE = os.environ.get("WEIR_CRI_IMAGE", "localhost/weir-test/busybox:1")
DEFAULT_NAMESPACE = "weir-test"
DEFAULT_CGROUP_ROOT = os.environ.get("WEIR_CRI_CGROUP_ROOT", "/weir-test")

RUNTIME = "/runtime.v1.RuntimeService/"
IMAGES = "/runtime.v1.ImageService/"


class UsageError(Exception):
    pass


def die(msg, code=1):
    sys.stderr.write("cri.py: %s\n" % msg)
    sys.exit(code)


# --------------------------------------------------------------------------
# protobuf stubs


def load_pb2():
    """Import cri_pb2, compiling cri.proto with protoc when the cached copy is
    missing or older than the .proto file."""
    target = os.path.join(GEN_DIR, "cri_pb2.py")
    fresh = (os.path.exists(target)
             and os.path.getmtime(target) >= os.path.getmtime(PROTO))
    if not fresh:
        protoc = shutil.which("protoc")
        if protoc is None:
            die("protoc not found: run tests/e2e/cri/setup.sh "
                "(Debian package protobuf-compiler)")
        os.makedirs(GEN_DIR, exist_ok=True)
        with open(os.path.join(GEN_DIR, ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (os.path.exists(target)
                    and os.path.getmtime(target) >= os.path.getmtime(PROTO)):
                tmp = tempfile.mkdtemp(dir=GEN_DIR)
                try:
                    shutil.copy(PROTO, os.path.join(tmp, "cri.proto"))
                    r = subprocess.run(
                        [protoc, "-I", tmp, "--python_out=" + tmp,
                         os.path.join(tmp, "cri.proto")],
                        capture_output=True, text=True)
                    if r.returncode != 0:
                        die("protoc failed on %s:\n%s" % (PROTO, r.stderr))
                    os.replace(os.path.join(tmp, "cri_pb2.py"), target)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
    sys.path.insert(0, GEN_DIR)
    try:
        import cri_pb2  # noqa: E402
    except ImportError as e:
        die("cannot import the generated CRI stubs (%s); python3-protobuf "
            "missing? run tests/e2e/cri/setup.sh" % e)
    return cri_pb2


pb = None
grpc = None


def init_modules():
    global pb, grpc
    try:
        import grpc as _grpc
    except ImportError:
        die("python module grpc not found for %s: install Debian's "
            "python3-grpcio (tests/e2e/cri/setup.sh does)" % sys.executable)
    grpc = _grpc
    pb = load_pb2()


# --------------------------------------------------------------------------
# transport


class Client:
    def __init__(self, endpoint, timeout):
        self.endpoint = endpoint
        self.timeout = timeout
        self.channel = grpc.insecure_channel(endpoint)

    def call(self, service, method, request, response_cls, timeout=None):
        fn = self.channel.unary_unary(
            service + method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_cls.FromString)
        try:
            return fn(request, timeout=timeout or self.timeout)
        except grpc.RpcError as e:
            raise CriError(method, e, self.endpoint) from None

    def rt(self, method, request, timeout=None):
        resp_cls = getattr(pb, method_response(method))
        return self.call(RUNTIME, method, request, resp_cls, timeout)


class CriError(Exception):
    def __init__(self, method, err, endpoint):
        self.method = method
        self.code = err.code()
        self.details = err.details() or ""
        hint = ""
        if self.code == grpc.StatusCode.UNAVAILABLE and endpoint.startswith("unix:"):
            path = endpoint[len("unix:"):]
            while path.startswith("//"):
                path = path[1:]
            if not os.path.exists(path):
                hint = " (socket %s does not exist: is containerd running? " \
                       "tests/e2e/cri/containerd.sh start)" % path
        super().__init__("%s: %s: %s%s" % (method, self.code.name, self.details, hint))


RESPONSES = {
    "Version": "VersionResponse",
    "Status": "StatusResponse",
    "RunPodSandbox": "RunPodSandboxResponse",
    "StopPodSandbox": "StopPodSandboxResponse",
    "RemovePodSandbox": "RemovePodSandboxResponse",
    "PodSandboxStatus": "PodSandboxStatusResponse",
    "ListPodSandbox": "ListPodSandboxResponse",
    "CreateContainer": "CreateContainerResponse",
    "StartContainer": "StartContainerResponse",
    "StopContainer": "StopContainerResponse",
    "RemoveContainer": "RemoveContainerResponse",
    "ListContainers": "ListContainersResponse",
    "ContainerStatus": "ContainerStatusResponse",
    "ExecSync": "ExecSyncResponse",
}


def method_response(method):
    return RESPONSES[method]


# --------------------------------------------------------------------------
# JSON helpers


def to_dict(msg):
    from google.protobuf import json_format
    return json_format.MessageToDict(msg, preserving_proto_field_name=True,
                                     including_default_value_fields=True)


def from_dict(d, cls):
    from google.protobuf import json_format
    m = cls()
    try:
        json_format.ParseDict(d, m, ignore_unknown_fields=False)
    except json_format.ParseError as e:
        raise UsageError("bad %s JSON: %s" % (cls.__name__, e))
    return m


def emit(obj):
    json.dump(obj, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def parse_info(info):
    """containerd's verbose info values are JSON strings: decode them."""
    out = {}
    for k, v in info.items():
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def kv_list(items, what):
    d = {}
    for it in items or []:
        if "=" not in it:
            raise UsageError("%s %r: expected KEY=VALUE" % (what, it))
        k, v = it.split("=", 1)
        d[k] = v
    return d


def load_json_arg(path):
    try:
        if path == "-":
            return json.load(sys.stdin)
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise UsageError("cannot read %s: %s" % (path, e.strerror))
    except ValueError as e:
        raise UsageError("%s is not valid JSON: %s" % (path, e))


def is_json_arg(s):
    """A config file argument (vs a name): "-", *.json, or a path with "/"."""
    return s == "-" or s.endswith(".json") or ("/" in s and os.path.isfile(s))


# --------------------------------------------------------------------------
# config generators (JSON in the protobuf JSON mapping, snake_case names)


def gen_pod(name, annotations=None, labels=None, namespace=None, uid=None,
            cgroup_parent=None, log_dir=None, hostname=None, attempt=0):
    uid = uid or str(uuid.uuid4())
    namespace = namespace or DEFAULT_NAMESPACE
    if cgroup_parent is None:
        cgroup_parent = "%s/pod-%s" % (DEFAULT_CGROUP_ROOT.rstrip("/"), uid)
    if log_dir is None:
        log_dir = os.path.join(TEST_DIR, "logs", "%s_%s_%s" % (namespace, name, uid))
    ns = {"network": "POD", "pid": "CONTAINER", "ipc": "POD"}
    return {
        "metadata": {"name": name, "uid": uid, "namespace": namespace,
                     "attempt": attempt},
        "hostname": hostname or name,
        "log_directory": log_dir,
        "labels": dict(labels or {}),
        "annotations": dict(annotations or {}),
        "linux": {
            "cgroup_parent": cgroup_parent,
            "security_context": {"namespace_options": ns},
        },
    }


def gen_ctr(name, command=None, args=None, annotations=None, labels=None,
            image=None, envs=None, privileged=False, cap_add=None,
            attempt=0):
    cfg = {
        "metadata": {"name": name, "attempt": attempt},
        "image": {"image": image or DEFAULT_IMAGE},
        "command": list(command or []),
        "args": list(args or []),
        "envs": [{"key": k, "value": v} for k, v in (envs or {}).items()],
        "labels": dict(labels or {}),
        "annotations": dict(annotations or {}),
        "log_path": "%s_%d.log" % (name, attempt),
        "linux": {
            "security_context": {
                "namespace_options": {"network": "POD", "pid": "CONTAINER",
                                      "ipc": "POD"},
                "privileged": bool(privileged),
            },
        },
    }
    if cap_add:
        cfg["linux"]["security_context"]["capabilities"] = {
            "add_capabilities": list(cap_add)}
    return cfg


def pod_opts(p, with_name):
    if with_name:
        p.add_argument("name", help="pod name")
    p.add_argument("-a", "--annotation", action="append", metavar="K=V",
                   help="pod annotation (repeatable)")
    p.add_argument("-l", "--label", action="append", metavar="K=V",
                   help="pod label (repeatable)")
    p.add_argument("--namespace", help="pod namespace (default %s)" % DEFAULT_NAMESPACE)
    p.add_argument("--uid", help="pod uid (default: random)")
    p.add_argument("--cgroup-parent",
                   help="cgroup parent (default %s/pod-UID)" % DEFAULT_CGROUP_ROOT)
    p.add_argument("--log-dir", help="pod log directory")
    p.add_argument("--hostname")


def ctr_opts(p):
    p.add_argument("-a", "--annotation", action="append", metavar="K=V",
                   help="container annotation (repeatable)")
    p.add_argument("-l", "--label", action="append", metavar="K=V",
                   help="container label (repeatable)")
    p.add_argument("-e", "--env", action="append", metavar="K=V",
                   help="environment variable (repeatable)")
    p.add_argument("--image", help="image (default %s)" % DEFAULT_IMAGE)
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--cap-add", action="append", metavar="CAP",
                   help="add a capability, e.g. CAP_NET_ADMIN (repeatable)")
    p.set_defaults(takes_cmd=True)


def pod_from_args(a, name=None):
    return gen_pod(name or a.name, annotations=kv_list(a.annotation, "annotation"),
                   labels=kv_list(a.label, "label"), namespace=a.namespace,
                   uid=a.uid, cgroup_parent=a.cgroup_parent, log_dir=a.log_dir,
                   hostname=a.hostname)


def merge_kv(cfg, key, items, what):
    extra = kv_list(items, what)
    if extra:
        cfg.setdefault(key, {}).update(extra)


# --------------------------------------------------------------------------
# operations


def run_pod(cli, cfg, handler=""):
    req = pb.RunPodSandboxRequest(config=from_dict(cfg, pb.PodSandboxConfig),
                                  runtime_handler=handler)
    return cli.rt("RunPodSandbox", req).pod_sandbox_id


def pod_config_of(cli, pod_id):
    """The PodSandboxConfig a pod was created with, from containerd's
    verbose status (info.config); good enough for CreateContainer."""
    resp = cli.rt("PodSandboxStatus",
                  pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=True))
    info = parse_info(resp.info).get("info")
    if isinstance(info, dict) and isinstance(info.get("config"), dict):
        return pod_config_from_go_json(info["config"])
    st = resp.status
    return {"metadata": to_dict(st.metadata), "labels": dict(st.labels),
            "annotations": dict(st.annotations)}


def pod_config_from_go_json(c):
    """containerd prints the Go struct: same snake_case names as the proto,
    but enums as numbers and some fields we do not declare. Keep what we
    know."""
    from google.protobuf import json_format
    m = pb.PodSandboxConfig()
    json_format.ParseDict(c, m, ignore_unknown_fields=True)
    return to_dict(m)


def create_ctr(cli, pod_id, ctr_cfg, pod_cfg=None):
    if pod_cfg is None:
        pod_cfg = pod_config_of(cli, pod_id)
    req = pb.CreateContainerRequest(
        pod_sandbox_id=pod_id,
        config=from_dict(ctr_cfg, pb.ContainerConfig),
        sandbox_config=from_dict(pod_cfg, pb.PodSandboxConfig))
    return cli.rt("CreateContainer", req).container_id


def start_ctr(cli, cid):
    cli.rt("StartContainer", pb.StartContainerRequest(container_id=cid))


def remove_pod(cli, pod_id):
    cli.rt("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    cli.rt("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


def list_pods(cli, labels=None):
    f = pb.PodSandboxFilter(label_selector=labels or {})
    return cli.rt("ListPodSandbox", pb.ListPodSandboxRequest(filter=f)).items


def list_ctrs(cli, pod_id="", all_states=True, labels=None):
    f = pb.ContainerFilter(pod_sandbox_id=pod_id or "", label_selector=labels or {})
    if not all_states:
        f.state.state = pb.CONTAINER_RUNNING
    return cli.rt("ListContainers", pb.ListContainersRequest(filter=f)).containers


# --------------------------------------------------------------------------
# commands


def cmd_version(cli, a):
    emit(to_dict(cli.rt("Version", pb.VersionRequest(version="v1"))))


def cmd_status(cli, a):
    r = cli.rt("Status", pb.StatusRequest(verbose=a.verbose))
    d = to_dict(r)
    d["info"] = parse_info(r.info)
    emit(d)
    if a.ready:
        conds = {c.type: c.status for c in r.status.conditions}
        if not (conds.get("RuntimeReady") and conds.get("NetworkReady")):
            die("runtime not ready: %s" % json.dumps(d["status"]))


def cmd_images(cli, a):
    r = cli.call(IMAGES, "ListImages", pb.ListImagesRequest(), pb.ListImagesResponse)
    if a.quiet:
        for img in r.images:
            print(" ".join(img.repo_tags) or img.id)
    else:
        emit(to_dict(r))


def cmd_gen_pod(cli, a):
    emit(pod_from_args(a))


def cmd_gen_ctr(cli, a):
    emit(gen_ctr(a.name, command=a.cmd, annotations=kv_list(a.annotation, "annotation"),
                 labels=kv_list(a.label, "label"), image=a.image,
                 envs=kv_list(a.env, "env"), privileged=a.privileged,
                 cap_add=a.cap_add))


def cmd_runp(cli, a):
    if a.spec and is_json_arg(a.spec):
        cfg = load_json_arg(a.spec)
        merge_kv(cfg, "annotations", a.annotation, "annotation")
        merge_kv(cfg, "labels", a.label, "label")
    else:
        if not a.spec:
            raise UsageError("runp: give a pod JSON file or a pod name")
        cfg = pod_from_args(a, name=a.spec)
    print(run_pod(cli, cfg, a.runtime_handler))


def ctr_config_from_args(a):
    if is_json_arg(a.spec):
        cfg = load_json_arg(a.spec)
        merge_kv(cfg, "annotations", a.annotation, "annotation")
        merge_kv(cfg, "labels", a.label, "label")
        if a.cmd:
            cfg["command"] = a.cmd
            cfg["args"] = []
        if a.image:
            cfg["image"] = {"image": a.image}
        return cfg
    return gen_ctr(a.spec, command=a.cmd, annotations=kv_list(a.annotation, "annotation"),
                   labels=kv_list(a.label, "label"), image=a.image,
                   envs=kv_list(a.env, "env"), privileged=a.privileged,
                   cap_add=a.cap_add)


def cmd_create(cli, a):
    pod_cfg = load_json_arg(a.pod_config) if a.pod_config else None
    cid = create_ctr(cli, a.pod, ctr_config_from_args(a), pod_cfg)
    if a.start:
        start_ctr(cli, cid)
    print(cid)


def cmd_start(cli, a):
    for cid in a.ids:
        start_ctr(cli, cid)
        print(cid)


def cmd_stop(cli, a):
    for cid in a.ids:
        cli.rt("StopContainer", pb.StopContainerRequest(container_id=cid, timeout=a.time),
               timeout=max(cli.timeout, a.time + 30))
        print(cid)


def cmd_rm(cli, a):
    for cid in a.ids:
        if a.force:
            cli.rt("StopContainer", pb.StopContainerRequest(container_id=cid, timeout=0))
        cli.rt("RemoveContainer", pb.RemoveContainerRequest(container_id=cid))
        print(cid)


def cmd_stopp(cli, a):
    for pid in a.ids:
        cli.rt("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pid))
        print(pid)


def cmd_rmp(cli, a):
    ids = a.ids
    if a.all:
        ids = [p.id for p in list_pods(cli)]
    for pid in ids:
        remove_pod(cli, pid)
        print(pid)


def cmd_inspectp(cli, a):
    r = cli.rt("PodSandboxStatus",
               pb.PodSandboxStatusRequest(pod_sandbox_id=a.id, verbose=a.verbose))
    d = to_dict(r)
    d["info"] = parse_info(r.info)
    emit(d)


def cmd_inspect(cli, a):
    r = cli.rt("ContainerStatus",
               pb.ContainerStatusRequest(container_id=a.id, verbose=a.verbose))
    d = to_dict(r)
    d["info"] = parse_info(r.info)
    emit(d)


def cmd_pods(cli, a):
    items = list_pods(cli, kv_list(a.label, "label"))
    if a.quiet:
        for p in items:
            print(p.id)
    else:
        emit([to_dict(p) for p in items])


def cmd_ps(cli, a):
    items = list_ctrs(cli, a.pod, all_states=a.all, labels=kv_list(a.label, "label"))
    if a.quiet:
        for c in items:
            print(c.id)
    else:
        emit([to_dict(c) for c in items])


def cmd_exec(cli, a):
    if not a.cmd:
        raise UsageError("exec: no command (usage: exec CTR -- CMD ARGS...)")
    r = cli.rt("ExecSync", pb.ExecSyncRequest(container_id=a.id, cmd=a.cmd,
                                              timeout=a.exec_timeout),
               timeout=(a.exec_timeout + 30) if a.exec_timeout else None)
    sys.stdout.buffer.write(r.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(r.stderr)
    sys.stderr.flush()
    sys.exit(r.exit_code)


def cmd_ip(cli, a):
    r = cli.rt("PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=a.id))
    ips = [r.status.network.ip] + [x.ip for x in r.status.network.additional_ips]
    ips = [i for i in ips if i]
    if not ips:
        die("pod %s has no IP" % a.id)
    for ip in (ips if a.all else ips[:1]):
        print(ip)


def cmd_pid(cli, a):
    """Host pid of a container's (or, with --pod, a sandbox's) first process."""
    if a.pod:
        r = cli.rt("PodSandboxStatus",
                   pb.PodSandboxStatusRequest(pod_sandbox_id=a.id, verbose=True))
    else:
        r = cli.rt("ContainerStatus",
                   pb.ContainerStatusRequest(container_id=a.id, verbose=True))
    info = parse_info(r.info).get("info") or {}
    pid = info.get("pid") if isinstance(info, dict) else None
    if not pid:
        die("no pid for %s (not running?)" % a.id)
    print(pid)


def cmd_netns(cli, a):
    r = cli.rt("PodSandboxStatus",
               pb.PodSandboxStatusRequest(pod_sandbox_id=a.id, verbose=True))
    info = parse_info(r.info).get("info") or {}
    spec = info.get("runtimeSpec") or {}
    for ns in (spec.get("linux") or {}).get("namespaces") or []:
        if ns.get("type") == "network" and ns.get("path"):
            print(ns["path"])
            return
    die("no network namespace path for pod %s" % a.id)


def cmd_rm_all(cli, a):
    """Stop and remove every pod (and so every container) this runtime has."""
    failed = 0
    for p in list_pods(cli):
        try:
            remove_pod(cli, p.id)
        except CriError as e:
            failed += 1
            sys.stderr.write("cri.py: pod %s: %s\n" % (p.id, e))
    for c in list_ctrs(cli):  # containers whose pod is gone already
        try:
            cli.rt("RemoveContainer", pb.RemoveContainerRequest(container_id=c.id))
        except CriError as e:
            failed += 1
            sys.stderr.write("cri.py: container %s: %s\n" % (c.id, e))
    if failed:
        sys.exit(1)


def cmd_bench(cli, a):
    """Time RunPodSandbox + CreateContainer + StartContainer, N times, by
    --jobs threads at once (each pod is removed once timed)."""
    import threading
    times, errors = [], []
    next_i = iter(range(a.runs))
    lock = threading.Lock()

    def one(i):
        pod_cfg = gen_pod("bench-%d" % i, labels={"weir-test/bench": "1"},
                          annotations=kv_list(a.annotation, "annotation"))
        ctr_cfg = gen_ctr("app")
        t0 = time.monotonic()
        pid = run_pod(cli, pod_cfg)
        try:
            cid = create_ctr(cli, pid, ctr_cfg, pod_cfg)
            start_ctr(cli, cid)
            with lock:
                times.append((time.monotonic() - t0) * 1000.0)
        finally:
            remove_pod(cli, pid)

    def worker():
        while True:
            with lock:
                i = next(next_i, None)
            if i is None:
                return
            try:
                one(i)
            except CriError as e:
                with lock:
                    errors.append(str(e))

    threads = [threading.Thread(target=worker) for _ in range(max(1, a.jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in errors:
        sys.stderr.write("cri.py: bench: %s\n" % e)
    if errors or not times:
        sys.exit(1)
    emit({"runs": a.runs, "jobs": a.jobs, "median_ms": round(statistics.median(times), 1),
          "min_ms": round(min(times), 1), "max_ms": round(max(times), 1),
          "all_ms": [round(t, 1) for t in times]})


# --------------------------------------------------------------------------


def build_parser():
    p = argparse.ArgumentParser(
        prog="cri.py", description="CRI client for weir's e2e tests.",
        epilog="Default endpoint: %s (env WEIR_CRI_ENDPOINT or "
               "CONTAINER_RUNTIME_ENDPOINT)." % DEFAULT_ENDPOINT)
    p.add_argument("--endpoint", default=DEFAULT_ENDPOINT,
                   help="unix:///path/to/containerd.sock")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="per-call gRPC deadline in seconds (default 60)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name, fn, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    add("version", cmd_version, "print the runtime's Version as JSON")
    sp = add("status", cmd_status, "print the runtime's Status as JSON")
    sp.add_argument("-v", "--verbose", action="store_true")
    sp.add_argument("--ready", action="store_true",
                    help="exit 1 unless RuntimeReady and NetworkReady")
    sp = add("images", cmd_images, "list images the CRI plugin sees")
    sp.add_argument("-q", "--quiet", action="store_true", help="names only")

    sp = add("gen-pod", cmd_gen_pod, "print a pod sandbox config JSON")
    pod_opts(sp, True)
    sp = add("gen-ctr", cmd_gen_ctr, "print a container config JSON")
    sp.add_argument("name", help="container name")
    ctr_opts(sp)

    sp = add("runp", cmd_runp,
             "run a pod sandbox from POD.json or from a NAME plus options; "
             "prints its id")
    sp.add_argument("spec", metavar="POD.json|NAME")
    pod_opts(sp, False)
    sp.add_argument("--runtime-handler", default="")

    for name, start in (("create", False), ("run", True)):
        sp = add(name, cmd_create,
                 "%s a container in POD from CTR.json or from a NAME plus "
                 "options; prints its id" % ("create and start" if start else "create"))
        sp.set_defaults(start=start)
        sp.add_argument("pod", metavar="POD", help="pod sandbox id")
        sp.add_argument("spec", metavar="CTR.json|NAME")
        sp.add_argument("pod_config", metavar="POD.json", nargs="?",
                        help="the pod's config (default: asked from the runtime)")
        ctr_opts(sp)

    sp = add("start", cmd_start, "start containers")
    sp.add_argument("ids", nargs="+", metavar="CTR")
    sp = add("stop", cmd_stop, "stop containers")
    sp.add_argument("-t", "--time", type=int, default=0,
                    help="seconds to wait before SIGKILL (default 0)")
    sp.add_argument("ids", nargs="+", metavar="CTR")
    sp = add("rm", cmd_rm, "remove containers")
    sp.add_argument("-f", "--force", action="store_true", help="stop first")
    sp.add_argument("ids", nargs="+", metavar="CTR")
    sp = add("stopp", cmd_stopp, "stop pod sandboxes")
    sp.add_argument("ids", nargs="+", metavar="POD")
    sp = add("rmp", cmd_rmp, "stop and remove pod sandboxes (and their containers)")
    sp.add_argument("-A", "--all", action="store_true", help="every pod")
    sp.add_argument("ids", nargs="*", metavar="POD")
    sp = add("inspectp", cmd_inspectp, "print PodSandboxStatus as JSON")
    sp.add_argument("-v", "--verbose", action="store_true",
                    help="include the runtime's info (decoded JSON)")
    sp.add_argument("id", metavar="POD")
    sp = add("inspect", cmd_inspect, "print ContainerStatus as JSON")
    sp.add_argument("-v", "--verbose", action="store_true",
                    help="include the runtime's info (decoded JSON)")
    sp.add_argument("id", metavar="CTR")
    sp = add("pods", cmd_pods, "list pod sandboxes")
    sp.add_argument("-q", "--quiet", action="store_true", help="ids only")
    sp.add_argument("-l", "--label", action="append", metavar="K=V")
    sp = add("ps", cmd_ps, "list containers")
    sp.add_argument("-q", "--quiet", action="store_true", help="ids only")
    sp.add_argument("-a", "--all", action="store_true",
                    help="all states (default: running only)")
    sp.add_argument("-p", "--pod", default="", help="only this pod's")
    sp.add_argument("-l", "--label", action="append", metavar="K=V")
    sp = add("exec", cmd_exec,
             "run CMD in a container (ExecSync); its stdout/stderr pass through "
             "and its exit status is ours")
    sp.add_argument("--exec-timeout", type=int, default=0,
                    help="seconds before the runtime kills CMD (default none)")
    sp.add_argument("id", metavar="CTR")
    sp.add_argument("words", nargs="*", metavar="CMD",
                    help="command (put it after -- when it has options)")
    sp.set_defaults(takes_cmd=True)
    sp = add("ip", cmd_ip, "print a pod's IP (IPv4 first)")
    sp.add_argument("--all", action="store_true", help="every IP, one a line")
    sp.add_argument("id", metavar="POD")
    sp = add("pid", cmd_pid, "print the host pid of a container (or --pod sandbox)")
    sp.add_argument("--pod", action="store_true")
    sp.add_argument("id", metavar="ID")
    sp = add("netns", cmd_netns, "print a pod's network namespace path")
    sp.add_argument("id", metavar="POD")
    add("rm-all", cmd_rm_all, "stop and remove every pod and container")
    sp = add("bench", cmd_bench,
             "time pod + container start N times; prints JSON with median_ms")
    sp.add_argument("runs", type=int, nargs="?", default=10)
    sp.add_argument("-j", "--jobs", type=int, default=1,
                    help="pods started at once (threads, default 1)")
    sp.add_argument("-a", "--annotation", action="append", metavar="K=V",
                    help="pod annotation for every pod (repeatable)")
    return p


def main(argv):
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped to head
    parser = build_parser()
    # Everything after the first "--" is the container command: split it off
    # before argparse, which would otherwise hand words to optional
    # positionals such as create's POD.json.
    tail = None
    if "--" in argv:
        i = argv.index("--")
        argv, tail = argv[:i], argv[i + 1:]
    a = parser.parse_args(argv)
    if tail is not None and not getattr(a, "takes_cmd", False):
        parser.error("%s takes no command after --" % a.command)
    a.cmd = (getattr(a, "words", None) or []) + (tail or [])
    init_modules()
    cli = Client(a.endpoint, a.timeout)
    try:
        a.fn(cli, a)
    except CriError as e:
        die(str(e))
    except UsageError as e:
        die(str(e), 2)
    except KeyboardInterrupt:
        die("interrupted", 130)


if __name__ == "__main__":
    main(sys.argv[1:])
