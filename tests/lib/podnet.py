"""Pod networking for the test kubelet: one Linux bridge per run with the gateway address, and
one network namespace per pod with a veth pair into the bridge and an address from the run's
/16. Pods reach each other and the host (which holds the gateway address) over the bridge;
there is no default route, no forwarding and no NAT, so nothing in a pod can reach any other
address. EndpointSlice validation rejects loopback addresses, which is why pods need these.

Names: every interface and namespace of a run starts with its prefix ("ppk" + 4 hex digits),
and a state file under /run/pprof-podnet/ records the owning PID, so a run that was killed
without cleaning up is cleaned up by the next one (`sweep()`)."""
import ipaddress
import os
import secrets
import subprocess
import threading

STATE = "/run/pprof-podnet"


def _ip(*args, check=True):
    p = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {p.stderr.strip()}")
    return p


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def sweep():
    """Removes the namespaces, bridges and veths of runs whose process is gone."""
    if not os.path.isdir(STATE):
        return
    for f in os.listdir(STATE):
        path = os.path.join(STATE, f)
        try:
            pid = int(open(path).read().split()[0])
        except (OSError, ValueError, IndexError):
            pid = 0
        if pid and _alive(pid):
            continue
        _remove_prefix(f)
        os.unlink(path)


def _del_netns(name):
    """Kills whatever still runs in the namespace (a container the kubelet lost track of, or a
    run killed with -9: the processes changed credentials, so no parent-death signal reaches
    them), then deletes it."""
    for pid in _ip("netns", "pids", name, check=False).stdout.split():
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass
    _ip("netns", "del", name, check=False)


def _remove_prefix(prefix):
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(prefix + "-"):
            _del_netns(name)
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            name = parts[1].strip().split("@")[0]
            if name.startswith(prefix):
                _ip("link", "del", name, check=False)


def _used_subnets():
    used = []
    for line in _ip("-o", "-4", "addr", "show", check=False).stdout.splitlines():
        for tok in line.split():
            if "/" in tok and tok[0].isdigit():
                try:
                    used.append(ipaddress.ip_interface(tok).network)
                except ValueError:
                    pass
    return used


class PodNetwork:
    """bridge + per-pod namespaces. `cidr` None picks the first /16 of 10.244-10.254 that no
    interface of this machine uses."""

    def __init__(self, cidr=None):
        sweep()
        self.prefix = "ppk" + secrets.token_hex(2)
        if cidr is None:
            used = _used_subnets()
            for third in range(244, 255):
                net = ipaddress.ip_network(f"10.{third}.0.0/16")
                if not any(net.overlaps(u) for u in used):
                    cidr = str(net)
                    break
            else:
                raise RuntimeError("no free 10.x.0.0/16 for pods")
        self.net = ipaddress.ip_network(cidr)
        self.gateway = str(self.net.network_address + 1)
        self.bridge = self.prefix + "br"
        self.lock = threading.Lock()
        self.next_host = 2
        self.pods = {}  # netns name -> (ip, host veth)
        self.up_done = False

    def up(self):
        os.makedirs(STATE, exist_ok=True)
        with open(os.path.join(STATE, self.prefix), "w") as f:
            f.write(f"{os.getpid()}\n")
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/{self.net.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        self.up_done = True

    def add(self):
        """A new namespace with eth0 on the bridge: (netns name, pod IP)."""
        with self.lock:
            n = self.next_host
            self.next_host += 1
        if n >= self.net.num_addresses - 1:
            raise RuntimeError("pod addresses exhausted")
        ip = str(self.net.network_address + n)
        ns = f"{self.prefix}-{n}"
        veth = f"{self.prefix}v{n}"
        _ip("netns", "add", ns)
        try:
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("link", "set", veth, "master", self.bridge)
            _ip("link", "set", veth, "up")
            _ip("-n", ns, "addr", "add", f"{ip}/{self.net.prefixlen}", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        except Exception:
            _ip("netns", "del", ns, check=False)
            _ip("link", "del", veth, check=False)
            raise
        with self.lock:
            self.pods[ns] = (ip, veth)
        return ns, ip

    def reserve(self):
        """An address with no namespace behind it, for pods that only need status (benchmarks
        with thousands of endpoints): (None, pod IP)."""
        with self.lock:
            n = self.next_host
            self.next_host += 1
        if n >= self.net.num_addresses - 1:
            raise RuntimeError("pod addresses exhausted")
        return None, str(self.net.network_address + n)

    def remove(self, ns):
        with self.lock:
            entry = self.pods.pop(ns, None)
        _del_netns(ns)
        if entry:
            _ip("link", "del", entry[1], check=False)  # usually gone with its peer already

    def down(self):
        for ns in list(self.pods):
            self.remove(ns)
        _remove_prefix(self.prefix)
        try:
            os.unlink(os.path.join(STATE, self.prefix))
        except FileNotFoundError:
            pass
        self.up_done = False
