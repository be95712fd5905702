"""versitygw (tools/versitygw, Apache-2.0) as the S3 server of the object-store tests: its posix
backend in a temporary directory, so an object is a file the tests compare byte for byte. One
bucket (a directory, as the posix backend takes it). stop() and start() again on the same
address and directory make an outage."""
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile

from harness import ROOT, wait_for

VGW = os.path.join(ROOT, "bin", "versitygw")


def free_port_on(host):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class S3Server:
    def __init__(self, access, secret, bucket, host="127.0.0.1"):
        self.access, self.secret, self.bucket, self.host = access, secret, bucket, host
        self.dir = tempfile.mkdtemp(prefix="s3-")
        os.makedirs(os.path.join(self.dir, bucket))
        self.port = free_port_on(host)
        self.url = f"http://{host}:{self.port}"
        # (beside the directory, not through it: cleanup removes the directory first)
        self.log = os.path.join(os.path.dirname(self.dir), os.path.basename(self.dir) + ".log")
        self.proc = None
        self.start()

    def start(self):
        env = dict(os.environ, ROOT_ACCESS_KEY=self.access, ROOT_SECRET_KEY=self.secret)
        self.logf = open(self.log, "a")
        self.proc = subprocess.Popen([VGW, "--port", f"{self.host}:{self.port}", "posix", self.dir],
                                     stdout=self.logf, stderr=self.logf, env=env)
        ok = wait_for(lambda: socket.create_connection((self.host, self.port), timeout=1).close() or True
                      if self.proc.poll() is None else None, timeout=30)
        if not ok:
            raise RuntimeError("versitygw did not start: " + self.log_text()[-1500:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.logf.closed:
            self.logf.close()

    def log_text(self):
        try:
            return open(self.log, errors="replace").read()
        except OSError:
            return ""

    def objects(self, prefix):
        """{segment file name: bytes} under prefix in the bucket: objects are named
        <oldest record, 16 hex>-<segment id, 16 hex>.seg, the file <segment id>.seg (anything
        else is kept under its own name, and so matches no segment)."""
        d = os.path.join(self.dir, self.bucket, prefix, "segments")
        out = {}
        for p in glob.glob(os.path.join(d, "*")):
            name = os.path.basename(p)
            m = re.fullmatch(r"[0-9a-f]{16}-([0-9a-f]{16}\.seg)", name)
            out[m.group(1) if m else name] = open(p, "rb").read()
        return out

    def keys(self, prefix):
        """The object names under prefix/segments (<oldest record>-<segment id>.seg)."""
        return [os.path.basename(p) for p in glob.glob(os.path.join(self.dir, self.bucket, prefix, "segments", "*"))]

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        try:
            os.unlink(self.log)
        except OSError:
            pass
