#!/usr/bin/env python3
"""kube-fake: an in-memory Kubernetes API server for tests (no cluster runs on our machines).

It serves what bin/operator and kubectl use, with the API server's semantics where they show:
discovery (/api, /apis, resource lists, /version), CRD registration that makes custom resources
servable (structural schema: pruning, defaults, type/enum/minimum/maximum/pattern/maxLength/
maxItems/maxProperties validation -> 422),
namespaces (objects need theirs; deleting one deletes its contents), get/list/watch with one
global resourceVersion, label and field selectors, limit/continue, bookmarks, 410 Gone for a
watch older than the last simulated compaction, create/update with optimistic concurrency
(409), merge patches, server-side apply with field managers (conflicts, force, fields removed
when their only manager stops applying them, managedFields), the status subresource,
metadata.generation, ownerReference garbage collection, Table output for `kubectl get`, and
fault injection through /_fake/ endpoints (status codes, delays, dropped watches, compaction).

    kube_fake.py --port 0 --kubeconfig OUT.yaml [--token T]

prints "listening on http://127.0.0.1:PORT" and writes a kubeconfig for kubectl and the
operator. Documented in docs/testing.md. Simplifications (kept on purpose): every list is
atomic for server-side apply, deletion is immediate (no finalizers), one stored version per
resource, authentication is one bearer token, no authorization.
"""
import argparse
import base64
import bisect
import copy
import json
import os
import re
import select
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

# group, version, plural, kind, namespaced, short names, has status subresource
BUILTIN = [
    ("", "v1", "namespaces", "Namespace", False, ["ns"], True),
    ("", "v1", "services", "Service", True, ["svc"], True),
    ("", "v1", "configmaps", "ConfigMap", True, ["cm"], False),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ["pvc"], True),
    ("", "v1", "pods", "Pod", True, ["po"], True),
    ("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"], False),
    ("", "v1", "secrets", "Secret", True, [], False),
    ("", "v1", "events", "Event", True, ["ev"], False),
    ("apps", "v1", "statefulsets", "StatefulSet", True, ["sts"], True),
    ("apps", "v1", "deployments", "Deployment", True, ["deploy"], True),
    ("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True, [], False),
    ("coordination.k8s.io", "v1", "leases", "Lease", True, [], False),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, [], False),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False, [], False),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role", True, [], False),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, [], False),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False, ["crd", "crds"], True),
]
SYSTEM_META = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "deletionTimestamp")
MAX_BODY = 8 << 20


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            s["details"] = self.details
        return s


class Resource:
    def __init__(self, group, version, plural, kind, namespaced, short=(), status=False, crd=None):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced, self.short, self.status = namespaced, list(short), status
        self.singular = kind.lower()
        self.schema, self.columns, self.crd = None, [], crd

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    def discovery(self):
        verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        out = [{"name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
                "kind": self.kind, "verbs": verbs, "shortNames": self.short}]
        if self.status:
            out.append({"name": self.plural + "/status", "singularName": "", "namespaced": self.namespaced,
                        "kind": self.kind, "verbs": ["get", "patch", "update"]})
        return out


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---- selectors --------------------------------------------------------------------------------

def split_top(s):
    out, depth, cur = [], 0, ""
    for c in s:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += c
    if cur.strip():
        out.append(cur)
    return [x.strip() for x in out if x.strip()]


def parse_label_selector(s):
    reqs = []
    for part in split_top(s or ""):
        m = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", part)
        if m:
            reqs.append((m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}))
            continue
        m = re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)", part)
        if m:
            reqs.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
            continue
        m = re.fullmatch(r"(!?)([\w./-]+)", part)
        if m:
            reqs.append((m.group(2), "!" if m.group(1) else "exists", None))
            continue
        raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for k, op, v in reqs:
        have = labels.get(k)
        if op == "=" and have != v:
            return False
        if op == "!=" and have == v:
            return False
        if op == "in" and have not in v:
            return False
        if op == "notin" and have in v:
            return False
        if op == "exists" and k not in labels:
            return False
        if op == "!" and k in labels:
            return False
    return True


def parse_field_selector(s):
    out = []
    for part in split_top(s or ""):
        m = re.fullmatch(r"([\w.]+)\s*(==|=|!=)\s*(.*)", part)
        if not m or m.group(1) not in ("metadata.name", "metadata.namespace"):
            raise ApiError(400, "BadRequest", f"field label not supported: {part}")
        out.append((m.group(1).split(".")[1], m.group(2) != "!=", m.group(3)))
    return out


def fields_match(reqs, obj):
    md = obj.get("metadata", {})
    return all((md.get(f, "") == v) == eq for f, eq, v in reqs)


# ---- server-side apply: leaf paths and managed fields ----------------------------------------

def leaves(obj, prefix=()):
    """Leaf paths of an object as the fields a manager owns (lists are atomic leaves)."""
    out = {}
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            p = prefix + (k,)
            if not prefix and k in ("apiVersion", "kind"):
                continue
            if prefix == ("metadata",) and k in SYSTEM_META + ("name", "namespace"):
                continue
            out.update(leaves(v, p))
    else:
        out[prefix] = obj
    return out


def get_path(obj, path):
    for k in path:
        if not isinstance(obj, dict) or k not in obj:
            return KeyError
        obj = obj[k]
    return obj


def set_path(obj, path, value):
    for k in path[:-1]:
        if not isinstance(obj.get(k), dict):
            obj[k] = {}
        obj = obj[k]
    obj[path[-1]] = copy.deepcopy(value)


def del_path(obj, path):
    chain = []
    for k in path[:-1]:
        if not isinstance(obj, dict) or k not in obj:
            return
        chain.append((obj, k))
        obj = obj[k]
    if isinstance(obj, dict):
        obj.pop(path[-1], None)
    for parent, k in reversed(chain):  # drop maps emptied by the removal
        if parent[k] == {}:
            del parent[k]


def fields_v1(paths):
    root = {}
    for p in sorted(paths):
        node = root
        for k in p:
            node = node.setdefault("f:" + k, {})
    return root


def paths_of_fields_v1(f, prefix=()):
    out = set()
    for k, v in (f or {}).items():
        if not k.startswith("f:"):
            continue
        p = prefix + (k[2:],)
        if v:
            out |= paths_of_fields_v1(v, p)
        else:
            out.add(p)
    return out


# ---- structural schema: pruning, defaults, validation -----------------------------------------

QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i?|[munkMGTPE]|)$")


def apply_schema(value, schema, path, errors):
    if schema is None:
        return value
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            errors.append({"field": path, "reason": "FieldValueTypeInvalid",
                           "message": f"Invalid value: must be an integer or a string"})
            return value
    t = schema.get("type")
    if t and not schema.get("x-kubernetes-int-or-string"):
        ok = {"object": isinstance(value, dict), "array": isinstance(value, list), "string": isinstance(value, str),
              "integer": isinstance(value, int) and not isinstance(value, bool),
              "number": isinstance(value, (int, float)) and not isinstance(value, bool),
              "boolean": isinstance(value, bool)}.get(t, True)
        if not ok:
            errors.append({"field": path, "reason": "FieldValueTypeInvalid",
                           "message": f"Invalid value: \"{type(value).__name__}\": {path} in body must be of type {t}"})
            return value
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(json.dumps(v) for v in schema["enum"])
        errors.append({"field": path, "reason": "FieldValueNotSupported",
                       "message": f"Unsupported value: {json.dumps(value)}: supported values: {allowed}"})
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append({"field": path, "reason": "FieldValueInvalid",
                           "message": f"Invalid value: {value}: {path} in body should be greater than or equal to {schema['minimum']}"})
        if "maximum" in schema and value > schema["maximum"]:
            errors.append({"field": path, "reason": "FieldValueInvalid",
                           "message": f"Invalid value: {value}: {path} in body should be less than or equal to {schema['maximum']}"})
    if isinstance(value, str) and "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append({"field": path, "reason": "FieldValueTooLong",
                       "message": f"Too long: may not be more than {schema['maxLength']} bytes"})
    if isinstance(value, list) and "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append({"field": path, "reason": "FieldValueTooMany",
                       "message": f"Too many: {len(value)}: must have at most {schema['maxItems']} items"})
    if isinstance(value, dict) and "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errors.append({"field": path, "reason": "FieldValueTooMany",
                       "message": f"Too many: {len(value)}: must have at most {schema['maxProperties']} items"})
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append({"field": path, "reason": "FieldValueInvalid",
                       "message": f"Invalid value: {json.dumps(value)}: {path} in body should match '{schema['pattern']}'"})
    if isinstance(value, dict):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        keep = schema.get("x-kubernetes-preserve-unknown-fields")
        out = {}
        for k, v in value.items():
            if props is not None and k in props:
                out[k] = apply_schema(v, props[k], f"{path}.{k}", errors)
            elif isinstance(addl, dict):
                out[k] = apply_schema(v, addl, f"{path}.{k}", errors)
            elif keep or (props is None and addl is None and t != "object") or addl is True:
                out[k] = v
            else:  # pruned, as the API server drops unknown fields (or refuses them when strict)
                errors.append({"field": f"{path}.{k}", "reason": "FieldValueUnknown", "message": "unknown field"})
        for k, sub in (props or {}).items():
            if k not in out and isinstance(sub, dict) and "default" in sub:
                out[k] = copy.deepcopy(sub["default"])
        for r in schema.get("required", []):
            if r not in out:
                errors.append({"field": f"{path}.{r}", "reason": "FieldValueRequired", "message": "Required value"})
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_schema(v, schema["items"], f"{path}[{i}]", errors) for i, v in enumerate(value)]
    return value


def simple_jsonpath(obj, path):
    """The subset of JSONPath printer columns use: .a.b, .a[0].b, .a[?(@.k=="v")].b"""
    cur = [obj]
    for tok in re.findall(r"\.([\w-]+)|\[(\d+)\]|\[\?\(@\.(\w+)==\"([^\"]*)\"\)\]", path):
        name, idx, fk, fv = tok
        nxt = []
        for c in cur:
            if name and isinstance(c, dict) and name in c:
                nxt.append(c[name])
            elif idx and isinstance(c, list) and int(idx) < len(c):
                nxt.append(c[int(idx)])
            elif fk and isinstance(c, list):
                nxt.extend(x for x in c if isinstance(x, dict) and str(x.get(fk)) == fv)
        cur = nxt
    return cur[0] if cur else None


# ---- the store ------------------------------------------------------------------------------

class Store:
    def __init__(self):
        self.lock = threading.Condition()
        self.rv = 1
        self.resources = {}   # (group, version, plural) -> Resource
        self.objects = {}     # (group, plural) -> {(ns, name): obj}
        self.events = []      # (rv, (group, plural), type, obj, prev), in rv order
        self.event_rvs = []   # their rvs, for bisect
        self.compacted = 0
        self.faults = []
        self.requests = 0
        self.strict = False  # the fieldValidation=Strict of the request being served
        for b in BUILTIN:
            self.register(Resource(*b))
        with self.lock:
            for ns in ("default", "kube-system", "kube-public"):
                self.create(self.resources[("", "v1", "namespaces")], None, {"metadata": {"name": ns}}, "kube-fake")

    def register(self, r):
        self.resources[(r.group, r.version, r.plural)] = r
        self.objects.setdefault((r.group, r.plural), {})

    def find(self, group, version, plural):
        r = self.resources.get((group, version, plural))
        if not r:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return r

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def record(self, r, typ, obj, prev=None):
        self.events.append((int(obj["metadata"]["resourceVersion"]), (r.group, r.plural), typ, copy.deepcopy(obj),
                            copy.deepcopy(prev) if prev else None))
        self.event_rvs.append(self.events[-1][0])
        if len(self.events) > 200000:
            self.compact()
        self.lock.notify_all()

    def compact(self):
        """Forget history up to now: watches from an older resourceVersion get 410 Gone."""
        self.compacted = self.rv
        self.events = []
        self.event_rvs = []
        self.lock.notify_all()

    # -- helpers
    def check_ns(self, r, ns):
        if r.namespaced and ns and (None, ns) not in self.objects[("", "namespaces")]:
            raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                           {"name": ns, "kind": "namespaces"})

    def key(self, r, ns, name):
        return (ns if r.namespaced else None, name)

    def normalise(self, r, ns, obj, name=None):
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body is not a JSON object")
        obj.setdefault("metadata", {})
        if not isinstance(obj["metadata"], dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        md = obj["metadata"]
        if name and md.get("name") and md["name"] != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        if name:
            md["name"] = name
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + uuid.uuid4().hex[:5]
        if not md.get("name") or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", md["name"]):
            raise ApiError(422, "Invalid", f"{r.kind} \"{md.get('name', '')}\" is invalid: metadata.name: Invalid value",
                           {"name": md.get("name", ""), "kind": r.kind,
                            "causes": [{"reason": "FieldValueInvalid", "field": "metadata.name",
                                        "message": "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"}]})
        if r.namespaced:
            if md.get("namespace") and ns and md["namespace"] != ns:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
            md["namespace"] = ns or md.get("namespace") or "default"
        else:
            md.pop("namespace", None)
        obj["apiVersion"] = r.api_version
        obj["kind"] = r.kind
        if r.schema is not None:
            errors = []
            cleaned = apply_schema({k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")},
                                   {**r.schema, "properties": {k: v for k, v in r.schema.get("properties", {}).items()
                                                               if k not in ("apiVersion", "kind", "metadata")}},
                                   "", errors)
            unknown = [e for e in errors if e["reason"] == "FieldValueUnknown"]
            errors = [e for e in errors if e["reason"] != "FieldValueUnknown"]
            if unknown and self.strict:
                raise ApiError(400, "BadRequest", "strict decoding error: " + ", ".join(
                    f'unknown field "{e["field"].lstrip(".")}"' for e in unknown))
            if errors:
                causes = [{"reason": e["reason"], "message": e["message"], "field": e["field"].lstrip(".")} for e in errors]
                msg = f"{r.kind}.{r.group} \"{md['name']}\" is invalid: " + ", ".join(
                    f"{c['field']}: {c['message']}" for c in causes)
                raise ApiError(422, "Invalid", msg, {"name": md["name"], "group": r.group, "kind": r.kind, "causes": causes})
            for k in list(obj):
                if k not in ("apiVersion", "kind", "metadata"):
                    del obj[k]
            obj.update(cleaned)
        return obj

    def stamp(self, r, obj, prev):
        md = obj["metadata"]
        md["uid"] = prev["metadata"]["uid"] if prev else str(uuid.uuid4())
        md["creationTimestamp"] = prev["metadata"]["creationTimestamp"] if prev else now_rfc3339()
        spec_of = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status", "apiVersion", "kind")}
        gen = prev["metadata"].get("generation", 1) if prev else 1
        if prev and spec_of(prev) != spec_of(obj):
            gen += 1
        if r.crd or r.kind in ("StatefulSet", "Deployment", "CustomResourceDefinition"):
            md["generation"] = gen
        md["resourceVersion"] = self.next_rv()

    def set_managed(self, obj, managers):
        md = obj["metadata"]
        entries = []
        for (mgr, op, sub), paths in sorted(managers.items()):
            if paths:
                e = {"manager": mgr, "operation": op, "apiVersion": obj["apiVersion"], "time": now_rfc3339(),
                     "fieldsType": "FieldsV1", "fieldsV1": fields_v1(paths)}
                if sub:
                    e["subresource"] = sub
                entries.append(e)
        md["managedFields"] = entries

    def managers_of(self, obj):
        out = {}
        for e in obj.get("metadata", {}).get("managedFields") or []:
            out[(e.get("manager", ""), e.get("operation", "Update"), e.get("subresource", ""))] = \
                paths_of_fields_v1(e.get("fieldsV1"))
        return out

    # -- operations (called with the lock held)
    def create(self, r, ns, obj, manager):
        self.check_ns(r, ns if r.namespaced else None)
        obj = self.normalise(r, ns, copy.deepcopy(obj))
        if r.status and r.crd:
            obj.pop("status", None)
        k = self.key(r, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if k in self.objects[(r.group, r.plural)]:
            raise ApiError(409, "AlreadyExists", f'{r.plural}{"." + r.group if r.group else ""} "{k[1]}" already exists',
                           {"name": k[1], "group": r.group, "kind": r.plural})
        self.stamp(r, obj, None)
        self.set_managed(obj, {(manager, "Update", ""): set(leaves(obj))})
        self.objects[(r.group, r.plural)][k] = obj
        self.record(r, "ADDED", obj)
        self.after_change(r, obj, None)
        return obj

    def get(self, r, ns, name):
        o = self.objects[(r.group, r.plural)].get(self.key(r, ns, name))
        if not o:
            raise ApiError(404, "NotFound", f'{r.plural}{"." + r.group if r.group else ""} "{name}" not found',
                           {"name": name, "group": r.group, "kind": r.plural})
        return o

    def put(self, r, ns, name, obj, manager, sub=""):
        prev = self.get(r, ns, name)
        obj = self.normalise(r, ns, copy.deepcopy(obj), name)
        want_rv = obj["metadata"].get("resourceVersion")
        if want_rv and want_rv != prev["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {r.plural}{"." + r.group if r.group else ""} "{name}": '
                           "the object has been modified; please apply your changes to the latest version and try again",
                           {"name": name, "group": r.group, "kind": r.plural})
        return self.replace(r, prev, obj, manager, "Update", sub)

    def replace(self, r, prev, obj, manager, op, sub, applied=None):
        # the status subresource and the main resource each change only their part
        if r.status:
            if sub == "status":
                new = copy.deepcopy(prev)
                if "status" in obj:
                    new["status"] = obj["status"]
                else:
                    new.pop("status", None)
                obj = new
            elif "status" in prev:
                obj["status"] = copy.deepcopy(prev["status"])
            else:
                obj.pop("status", None)
        obj["metadata"]["managedFields"] = prev["metadata"].get("managedFields")
        for f in ("uid", "creationTimestamp"):
            obj["metadata"][f] = prev["metadata"][f]
        managers = self.managers_of(prev)
        old, new = leaves(prev), leaves(obj)
        if applied is None:
            changed = {p for p in set(old) | set(new) if old.get(p, KeyError) != new.get(p, KeyError)}
            for key in managers:
                managers[key] -= changed
            mine = managers.setdefault((manager, op, sub), set())
            mine |= {p for p in changed if p in new}
        else:
            managers[(manager, "Apply", sub)] = applied
        managers = {k: {p for p in v if p in new} for k, v in managers.items()}
        self.stamp(r, obj, prev)
        self.set_managed(obj, managers)
        if self.same_but_meta(prev, obj):
            return prev  # a no-op write does not bump the resourceVersion
        self.objects[(r.group, r.plural)][self.key(r, obj["metadata"].get("namespace"), obj["metadata"]["name"])] = obj
        self.record(r, "MODIFIED", obj, prev)
        self.after_change(r, obj, prev)
        return obj

    @staticmethod
    def same_but_meta(a, b):
        strip = lambda o: {**o, "metadata": {k: v for k, v in o["metadata"].items()
                                             if k not in ("resourceVersion", "managedFields", "generation")}}
        ma = sorted((e["manager"], e["operation"], json.dumps(e["fieldsV1"], sort_keys=True))
                    for e in a["metadata"].get("managedFields") or [])
        mb = sorted((e["manager"], e["operation"], json.dumps(e["fieldsV1"], sort_keys=True))
                    for e in b["metadata"].get("managedFields") or [])
        return strip(a) == strip(b) and ma == mb

    def apply(self, r, ns, name, patch, manager, force, sub=""):
        if not manager:
            raise ApiError(400, "BadRequest", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                           "is required for apply patch")
        if not isinstance(patch, dict):
            raise ApiError(400, "BadRequest", "the apply patch is not an object")
        patch = copy.deepcopy(patch)
        md = patch.setdefault("metadata", {})
        md.setdefault("name", name)
        if r.namespaced:
            md.setdefault("namespace", ns)
        for f in SYSTEM_META:
            md.pop(f, None)
        prev = self.objects[(r.group, r.plural)].get(self.key(r, ns, name))
        if prev is None:
            if sub:
                raise ApiError(404, "NotFound", f'{r.plural} "{name}" not found')
            self.check_ns(r, ns if r.namespaced else None)
            obj = self.normalise(r, ns, patch, name)
            if r.status and r.crd:
                obj.pop("status", None)
            self.stamp(r, obj, None)
            self.set_managed(obj, {(manager, "Apply", ""): set(leaves(obj))})
            self.objects[(r.group, r.plural)][self.key(r, obj["metadata"].get("namespace"), name)] = obj
            self.record(r, "ADDED", obj)
            self.after_change(r, obj, None)
            return obj, 201
        applied_obj = self.normalise(r, ns, copy.deepcopy(patch), name)
        applied = leaves(applied_obj)
        if sub == "status":
            applied = {p: v for p, v in applied.items() if p[0] == "status"}
        elif r.status:
            applied = {p: v for p, v in applied.items() if p[0] != "status"}
        managers = self.managers_of(prev)
        current = leaves(prev)
        conflicts = []
        for p, v in applied.items():
            if current.get(p, KeyError) == v:
                continue
            for (m, op, s), owned in managers.items():
                if m != manager and p in owned:
                    conflicts.append((m, p))
        if conflicts and not force:
            causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}"', "field": "." + ".".join(p)}
                      for m, p in conflicts]
            raise ApiError(409, "Conflict", f"Apply failed with {len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''}: " +
                           "; ".join(f'conflict with "{c["message"][15:-1]}": {c["field"]}' for c in causes),
                           {"name": name, "group": r.group, "kind": r.plural, "causes": causes})
        if force:
            for key in managers:
                if key[0] != manager:
                    managers[key] -= {p for p in applied if current.get(p, KeyError) != applied[p]}
        new = copy.deepcopy(prev)
        previously = set().union(*[v for (m, op, s), v in managers.items() if m == manager and op == "Apply" and s == sub]) \
            if managers else set()
        others = set().union(*[v for (m, op, s), v in managers.items() if not (m == manager and op == "Apply" and s == sub)]) \
            if managers else set()
        for p in previously - set(applied) - others:
            del_path(new, p)
        for p, v in applied.items():
            set_path(new, p, v)
        # a leaf replacing a map (or the reverse) leaves no stale children behind
        new = self.normalise(r, ns, new, name)
        new["metadata"]["managedFields"] = [
            e for e in (prev["metadata"].get("managedFields") or [])]
        for key in list(managers):
            if key[0] == manager and key[1] == "Apply" and key[2] == sub:
                del managers[key]
        self.set_managed(new, managers)
        return self.replace(r, prev, new, manager, "Apply", sub, applied=set(applied)), 200

    def merge_patch(self, r, ns, name, patch, manager, sub=""):
        prev = self.get(r, ns, name)

        def merge(a, b):
            if not isinstance(b, dict):
                return copy.deepcopy(b)
            out = copy.deepcopy(a) if isinstance(a, dict) else {}
            for k, v in b.items():
                if v is None:
                    out.pop(k, None)
                else:
                    out[k] = merge(out.get(k), v)
            return out
        if not isinstance(patch, dict):
            raise ApiError(400, "BadRequest", "the merge patch is not an object")
        new = merge(prev, patch)
        want_rv = (patch.get("metadata") or {}).get("resourceVersion")
        if want_rv and want_rv != prev["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {r.plural} "{name}": the object has been modified')
        new["metadata"]["resourceVersion"] = prev["metadata"]["resourceVersion"]
        new = self.normalise(r, ns, new, name)
        return self.replace(r, prev, new, manager, "Update", sub)

    def delete(self, r, ns, name):
        prev = self.get(r, ns, name)
        k = self.key(r, ns, name)
        del self.objects[(r.group, r.plural)][k]
        gone = copy.deepcopy(prev)
        gone["metadata"]["resourceVersion"] = self.next_rv()
        self.record(r, "DELETED", gone)
        self.after_delete(r, gone)
        return gone

    def after_change(self, r, obj, prev):
        if r.plural == "customresourcedefinitions":
            self.sync_crd(obj)
        owners = obj["metadata"].get("ownerReferences") or []
        if owners:
            # the garbage collector removes dependents whose owners are all gone, including ones
            # created after their owner's deletion (a controller racing its own cache)
            live = {o["metadata"]["uid"] for objs in self.objects.values() for o in objs.values()}
            if not any(x.get("uid") in live for x in owners):
                self.delete(r, obj["metadata"].get("namespace"), obj["metadata"]["name"])

    def after_delete(self, r, obj):
        if r.plural == "customresourcedefinitions":
            g = obj["spec"]["group"]
            plural = obj["spec"]["names"]["plural"]
            for key in [k for k, v in self.resources.items() if v.crd and k[0] == g and k[2] == plural]:
                res = self.resources.pop(key)
                for (ns, n) in list(self.objects.get((g, plural), {})):
                    self.delete(res, ns, n)
        if r.plural == "namespaces":
            name = obj["metadata"]["name"]
            for res in list(self.resources.values()):
                if res.namespaced:
                    for (ns, n) in list(self.objects[(res.group, res.plural)]):
                        if ns == name:
                            self.delete(res, ns, n)
        self.collect_garbage(obj["metadata"]["uid"])

    def collect_garbage(self, uid):
        """Deletes dependents none of whose owners exist any more (background propagation)."""
        live = {o["metadata"]["uid"] for objs in self.objects.values() for o in objs.values()}
        for res in list({id(v): v for v in self.resources.values()}.values()):
            for (ns, n), o in list(self.objects.get((res.group, res.plural), {}).items()):
                owners = o["metadata"].get("ownerReferences") or []
                if owners and any(x.get("uid") == uid for x in owners) and not any(x.get("uid") in live for x in owners):
                    if (ns, n) in self.objects[(res.group, res.plural)]:
                        self.delete(res, ns, n)

    def sync_crd(self, crd):
        spec = crd.get("spec", {})
        g, names = spec.get("group"), spec.get("names", {})
        for v in spec.get("versions", []):
            if not v.get("served", True):
                continue
            res = Resource(g, v["name"], names["plural"], names["kind"], spec.get("scope") == "Namespaced",
                           names.get("shortNames", []), "status" in (v.get("subresources") or {}), crd=crd["metadata"]["name"])
            res.singular = names.get("singular", names["kind"].lower())
            res.schema = (v.get("schema") or {}).get("openAPIV3Schema")
            res.columns = v.get("additionalPrinterColumns", [])
            self.register(res)
        st = crd.setdefault("status", {})
        st["conditions"] = [{"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                             "lastTransitionTime": now_rfc3339(), "message": "the initial names have been accepted"},
                            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                             "lastTransitionTime": now_rfc3339(), "message": "no conflicts found"}]
        st["acceptedNames"] = names
        st["storedVersions"] = [v["name"] for v in spec.get("versions", []) if v.get("storage")]


# ---- HTTP -------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-fake"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("kube-fake: " + (fmt % args) + "\n")

    @property
    def st(self):
        return self.server.store

    def send_json(self, code, obj, ctype="application/json"):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def fail(self, e):
        self.send_json(e.code, e.status())

    def read_body(self):
        """Always consumed, whatever the route: left unread, it would be parsed as the next request."""
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "RequestEntityTooLarge", "request entity too large")
        self.raw = self.rfile.read(n) if n else b""

    def body(self):
        raw = self.raw
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            try:
                import yaml  # only when a client sends YAML; kubectl and our operator send JSON
                return yaml.safe_load(raw)
            except Exception:
                raise ApiError(400, "BadRequest", "the body is neither JSON nor YAML")

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def do_PATCH(self):
        self.route("PATCH")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        u = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        path = u.path.rstrip("/") or "/"
        self.raw = b""
        try:
            self.read_body()
            if path.startswith("/_fake/"):
                return self.control(method, path, q)
            tok = self.server.token
            auth = self.headers.get("Authorization") or ""
            self.sa = None
            m = re.fullmatch(r"Bearer sa:([a-z0-9.-]+):([a-z0-9.-]+)", auth)
            if m:
                self.sa = (m.group(1), m.group(2))  # a service account: RBAC applies
            elif tok and auth != f"Bearer {tok}" and self.client_cn() != ADMIN_CN:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            with self.st.lock:
                self.st.requests += 1
                fault = self.match_fault(method, self.path, q)
            if fault:
                if fault.get("delay"):
                    time.sleep(fault["delay"])
                if fault.get("status"):
                    code = fault["status"]
                    if code == 429:
                        self.send_response(429)
                        body = json.dumps(ApiError(429, "TooManyRequests", "too many requests").status()).encode()
                        self.send_header("Retry-After", str(fault.get("retry_after", 1)))
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                    raise ApiError(code, "InternalError" if code >= 500 else "BadRequest", f"injected fault {code}")
            self.serve(method, path, q)
        except ApiError as e:
            self.fail(e)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def client_cn(self):
        """The verified client certificate's common name, if one was presented."""
        try:
            cert = self.connection.getpeercert()
        except (AttributeError, ValueError):
            return None
        for rdn in (cert or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    return v
        return None

    def match_fault(self, method, path, q):
        for f in self.st.faults:
            if f.get("count", 1) <= 0:
                continue
            if f.get("method") and f["method"] != method:
                continue
            if f.get("watch") is not None and f["watch"] != (q.get("watch") in ("true", "1")):
                continue
            if f.get("path") and not re.search(f["path"], path):
                continue
            if f.get("drop_after") is not None or "inject" in f or "inject_bytes" in f:
                continue  # consulted by watches
            f["count"] = f.get("count", 1) - 1
            return f
        return None

    def client_gone(self):
        """A watch client never sends anything after its request: a readable socket means it
        closed the connection (without this, the thread would serve a dead watch until the next
        event, and take faults meant for live ones)."""
        try:
            return bool(select.select([self.connection], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def take_inject(self):
        """A fault {"watch": true, "path": RE, "inject": LINE | "inject_bytes": N, "count": C} replaces
        the next C events of matching watches with LINE, or with the event padded to N more bytes."""
        with self.st.lock:
            for f in self.st.faults:
                if ("inject" in f or "inject_bytes" in f) and f.get("count", 1) > 0 and re.search(f.get("path", ""), self.path):
                    f["count"] = f.get("count", 1) - 1
                    return f
        return None

    def control(self, method, path, q):
        """Test hooks: POST /_fake/compact, POST /_fake/faults {...}, DELETE /_fake/faults,
        GET /_fake/stats, POST /_fake/drop-watches."""
        with self.st.lock:
            if path == "/_fake/compact" and method == "POST":
                self.st.compact()
                return self.send_json(200, {"compacted": self.st.compacted})
            if path == "/_fake/faults" and method == "POST":
                f = self.body()
                self.st.faults.append(f)
                return self.send_json(200, {"faults": len(self.st.faults)})
            if path == "/_fake/faults" and method == "DELETE":
                self.st.faults = []
                return self.send_json(200, {})
            if path == "/_fake/drop-watches" and method == "POST":
                self.server.drop_generation += 1
                self.st.lock.notify_all()
                return self.send_json(200, {"generation": self.server.drop_generation})
            if path == "/_fake/stats":
                return self.send_json(200, {"requests": self.st.requests, "resourceVersion": self.st.rv,
                                            "watches": self.server.watches})
        raise ApiError(404, "NotFound", "no such control endpoint")

    def parse_resource_path(self, path):
        segs = path.strip("/").split("/")
        if segs[0] == "api" and len(segs) >= 2:
            group, version, rest = "", segs[1], segs[2:]
        elif segs[0] == "apis" and len(segs) >= 3:
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            return None
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces" and (group, version, rest[2]) in self.st.resources:
            ns, rest = rest[1], rest[2:]
        elif rest and rest[0] == "namespaces" and len(rest) >= 3 and group == "" and rest[2] in ("status", "finalize"):
            pass
        if not rest:
            return group, version, None, None, None, None
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        return group, version, ns, plural, name, sub

    def serve(self, method, path, q):
        if path == "/version":
            return self.send_json(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0-kube-fake",
                                        "platform": "linux/amd64", "goVersion": "go1.22"})
        if path in ("/healthz", "/readyz", "/livez"):
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            return self.wfile.write(body)
        if path == "/api":
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
        if path == "/apis":
            with self.st.lock:
                groups = {}
                for (g, v, _), r in self.st.resources.items():
                    if g:
                        groups.setdefault(g, []).append(v)
            out = [{"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in sorted(set(vs))],
                    "preferredVersion": {"groupVersion": f"{g}/{sorted(set(vs))[0]}", "version": sorted(set(vs))[0]}}
                   for g, vs in sorted(groups.items())]
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": out})
        if path == "/openapi/v3":
            with self.st.lock:
                gvs = sorted({(g, v) for (g, v, _) in self.st.resources})
            return self.send_json(200, {"paths": {(f"apis/{g}/{v}" if g else f"api/{v}"): {
                "serverRelativeURL": f"/openapi/v3/{'apis/' + g if g else 'api'}/{v}?hash={self.st.rv}"} for g, v in gvs}})
        if path.startswith("/openapi/v3/"):
            return self.openapi_v3(path[len("/openapi/v3/"):])
        if path.startswith("/openapi"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        p = self.parse_resource_path(path)
        if not p:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group, version, ns, plural, name, sub = p
        if plural is None:
            with self.st.lock:
                rs = [r for (g, v, _), r in self.st.resources.items() if g == group and v == version]
            if not rs:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            res = [d for r in rs for d in r.discovery()]
            return self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                        "groupVersion": f"{group}/{version}" if group else version, "resources": res})
        with self.st.lock:
            r = self.st.find(group, version, plural)
            if self.sa:
                self.authorize(method, r, ns, name, sub, q)
        if sub and not (sub == "status" and r.status):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        manager = q.get("fieldManager") or self.default_manager()
        if method == "GET" and name is None:
            if q.get("watch") in ("true", "1"):
                return self.watch(r, ns, q)
            return self.list(r, ns, q)
        if q.get("dryRun"):
            return self.dry_run(method, r, ns, name, sub, q, manager)
        with self.st.lock:
            self.st.strict = q.get("fieldValidation") == "Strict"
            if method == "GET":
                return self.send_obj(200, self.st.get(r, ns, name))
            if method == "POST" and name is None:
                return self.send_json(201, self.st.create(r, ns, self.body(), manager))
            if method == "PUT" and name:
                return self.send_json(200, self.st.put(r, ns, name, self.body(), manager, sub))
            if method == "PATCH" and name:
                ctype = (self.headers.get("Content-Type") or "").split(";")[0]
                if ctype == "application/apply-patch+yaml":
                    obj, code = self.st.apply(r, ns, name, self.body(), q.get("fieldManager"),
                                              q.get("force") in ("true", "1"), sub)
                    return self.send_json(code, obj)
                if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                    return self.send_json(200, self.st.merge_patch(r, ns, name, self.body(), manager, sub))
                raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
            if method == "DELETE" and name:
                gone = self.st.delete(r, ns, name)
                return self.send_json(200, gone)
        raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource")

    def openapi_v3(self, gvpath):
        """Just enough OpenAPI v3 for kubectl to see that writes take fieldValidation (so it
        validates on the server, where the CRD schemas are) and which kinds live where."""
        segs = gvpath.split("/")
        g, v = (segs[1], segs[2]) if segs[0] == "apis" and len(segs) == 3 else ("", segs[1]) if len(segs) == 2 else (None, None)
        with self.st.lock:
            rs = [r for (rg, rv, _), r in self.st.resources.items() if rg == g and rv == v]
        if not rs:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        params = [{"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                  for n in ("dryRun", "fieldManager", "fieldValidation", "force")]
        paths, schemas = {}, {}
        for r in rs:
            gvk = {"group": r.group, "version": r.version, "kind": r.kind}
            base = f"/apis/{r.group}/{r.version}" if r.group else f"/api/{r.version}"
            coll = f"{base}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"
            op = lambda verb: {"x-kubernetes-action": verb, "x-kubernetes-group-version-kind": gvk,
                               "parameters": params, "responses": {"200": {"description": "OK"}}}
            paths[coll] = {"post": op("post"), "get": op("list")}
            paths[coll + "/{name}"] = {"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}
            name = ".".join(reversed(r.group.split("."))) + f".{r.version}.{r.kind}" if r.group else f"io.k8s.api.core.{r.version}.{r.kind}"
            schemas[name] = {**(r.schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
                             "x-kubernetes-group-version-kind": [gvk]}
        return self.send_json(200, {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.30.0"},
                                    "paths": paths, "components": {"schemas": schemas}})

    def authorize(self, method, r, ns, name, sub, q):
        """RBAC for service-account tokens ("sa:<namespace>:<name>"): the bindings and roles
        stored here decide, as the API server's authorizer does (no aggregation, no groups)."""
        if method == "GET":
            verb = "get" if name else ("watch" if q.get("watch") in ("true", "1") else "list")
        else:
            verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
        verbs = [verb]
        if verb == "patch" and (self.headers.get("Content-Type") or "").startswith("application/apply-patch") and \
                self.st.objects[(r.group, r.plural)].get(self.st.key(r, ns, name)) is None:
            verbs.append("create")  # an apply that creates needs both
        sa_ns, sa_name = self.sa
        res = r.plural + ("/" + sub if sub else "")

        def rules():
            for g, pl in (("rbac.authorization.k8s.io", "clusterrolebindings"), ("rbac.authorization.k8s.io", "rolebindings")):
                for (bns, _), b in self.st.objects[(g, pl)].items():
                    if pl == "rolebindings" and bns != ns:
                        continue
                    if not any(s.get("kind") == "ServiceAccount" and s.get("name") == sa_name and s.get("namespace", bns) == sa_ns
                               for s in b.get("subjects") or []):
                        continue
                    ref = b.get("roleRef") or {}
                    role = self.st.objects[("rbac.authorization.k8s.io", "clusterroles" if ref.get("kind") == "ClusterRole" else "roles")] \
                        .get((None, ref.get("name")) if ref.get("kind") == "ClusterRole" else (bns, ref.get("name")))
                    for rule in (role or {}).get("rules") or []:
                        yield rule

        def allows(rule, v):
            return ((r.group in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", [])) and
                    (res in rule.get("resources", []) or "*" in rule.get("resources", [])) and
                    (v in rule.get("verbs", []) or "*" in rule.get("verbs", [])) and
                    (not rule.get("resourceNames") or (name and name in rule["resourceNames"])))
        for v in verbs:
            if not any(allows(rule, v) for rule in rules()):
                scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
                raise ApiError(403, "Forbidden", f'{r.plural}{"." + r.group if r.group else ""}{" " + json.dumps(name) if name else ""} '
                               f'is forbidden: User "system:serviceaccount:{sa_ns}:{sa_name}" cannot {v} resource "{res}" '
                               f'in API group "{r.group}" {scope}',
                               {"name": name or "", "group": r.group, "kind": r.plural})

    def dry_run(self, method, r, ns, name, sub, q, manager):
        """dryRun=All: the write is validated and its result returned, nothing is stored."""
        with self.st.lock:
            self.st.strict = q.get("fieldValidation") == "Strict"
            saved = (copy.deepcopy(self.st.objects), self.st.rv, list(self.st.events), dict(self.st.resources),
                     list(self.st.event_rvs))
            try:
                body = self.body()
                if method == "POST":
                    out, code = self.st.create(r, ns, body, manager), 201
                elif method == "PATCH":
                    out, code = self.st.apply(r, ns, name, body, q.get("fieldManager"), q.get("force") in ("true", "1"), sub)
                elif method == "PUT":
                    out, code = self.st.put(r, ns, name, body, manager, sub), 200
                else:
                    out, code = self.st.get(r, ns, name), 200
                out = copy.deepcopy(out)
            finally:
                self.st.objects, self.st.rv, self.st.events, self.st.resources, self.st.event_rvs = saved
        return self.send_json(code, out)

    def default_manager(self):
        ua = self.headers.get("User-Agent") or "unknown"
        return ua.split("/")[0]

    def wants_table(self):
        return "as=Table" in (self.headers.get("Accept") or "")

    def send_obj(self, code, obj):
        if self.wants_table():
            return self.send_json(code, self.table(self.resource_of(obj), [obj]))
        return self.send_json(code, obj)

    def resource_of(self, obj):
        g, _, v = obj["apiVersion"].rpartition("/")
        for (rg, rv, _), r in self.st.resources.items():
            if rg == g and rv == v and r.kind == obj["kind"]:
                return r
        return None

    def table(self, r, objs):
        cols = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
        for c in (r.columns if r else []):
            cols.append({"name": c["name"], "type": c.get("type", "string"), "format": c.get("format", ""),
                         "description": c.get("description", ""), "priority": c.get("priority", 0)})
        cols.append({"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0})
        rows = []
        for o in objs:
            cells = [o["metadata"]["name"]]
            for c in (r.columns if r else []):
                v = simple_jsonpath(o, c["jsonPath"])
                cells.append(v if v is not None else None)
            t = o["metadata"].get("creationTimestamp")
            age = "<unknown>"
            if t:
                s = int(time.time() - time.mktime(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ")) + time.mktime(time.gmtime(0)))
                age = f"{s}s" if s < 120 else f"{s // 60}m"
            cells.append(age)
            pom = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}
            rows.append({"cells": cells, "object": pom})
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": str(self.st.rv)},
                "columnDefinitions": cols, "rows": rows}

    def select(self, r, ns, q):
        lsel = parse_label_selector(q.get("labelSelector"))
        fsel = parse_field_selector(q.get("fieldSelector"))

        def ok(o):
            md = o["metadata"]
            if r.namespaced and ns and md.get("namespace") != ns:
                return False
            return labels_match(lsel, md.get("labels")) and fields_match(fsel, o)
        return ok

    def list(self, r, ns, q):
        ok = self.select(r, ns, q)
        with self.st.lock:
            items = sorted((o for o in self.st.objects[(r.group, r.plural)].values() if ok(o)),
                           key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
            rv = str(self.st.rv)
        limit = int(q.get("limit") or 0)
        start = 0
        cont = q.get("continue")
        if cont:
            try:
                c = json.loads(bytes.fromhex(cont).decode())
                start = c["start"]
                if c["rv"] < self.st.compacted:
                    raise ApiError(410, "Expired", "The provided continue parameter is too old to display a consistent list result. "
                                   "You can start a new list without the continue parameter.")
            except (ValueError, KeyError):
                raise ApiError(400, "BadRequest", "continue key is not valid")
        md = {"resourceVersion": rv}
        if limit and start + limit < len(items):
            md["continue"] = json.dumps({"start": start + limit, "rv": int(rv)}).encode().hex()
            md["remainingItemCount"] = len(items) - start - limit
            items = items[start:start + limit]
        else:
            items = items[start:]
        with self.st.lock:
            items = copy.deepcopy(items)  # only the page
        if self.wants_table():
            t = self.table(r, items)
            t["metadata"].update(md)
            return self.send_json(200, t)
        self.send_json(200, {"kind": r.kind + "List", "apiVersion": r.api_version, "metadata": md, "items": items})

    def chunk(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, r, ns, q):
        ok = self.select(r, ns, q)
        rv = q.get("resourceVersion") or ""
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        timeout = float(q.get("timeoutSeconds") or 1800)
        table = self.wants_table()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deadline = time.time() + timeout
        drop = None
        for f in self.st.faults:
            if f.get("drop_after") is not None and f.get("count", 1) > 0 and re.search(f.get("path", ""), self.path):
                f["count"] = f.get("count", 1) - 1
                drop = time.time() + f["drop_after"]
        with self.st.lock:
            self.server.watches += 1
            gen = self.server.drop_generation
            if rv and rv != "0" and int(rv) < self.st.compacted:
                self.chunk({"type": "ERROR", "object": ApiError(410, "Expired", f"too old resource version: {rv} ({self.st.compacted})").status()})
                self.server.watches -= 1
                self.wfile.write(b"0\r\n\r\n")
                return
            pending = []
            if not rv or rv == "0":
                for o in self.st.objects[(r.group, r.plural)].values():
                    if ok(o):
                        pending.append(("ADDED", copy.deepcopy(o)))
                last = self.st.rv
            else:
                last = int(rv)
        last_bookmark = time.time()
        try:
            while True:
                for typ, o in pending:
                    inject = self.take_inject()
                    if inject:  # this event, replaced by what the fault says (the event is lost)
                        if "inject_bytes" in inject:  # the same event, padded past a client's limit
                            line = json.dumps({"type": typ, "object": {**o, "padding": "x" * inject["inject_bytes"]}})
                        else:
                            line = inject["inject"]
                        data = (line + "\n").encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
                        continue
                    self.chunk({"type": typ, "object": self.table(r, [o]) if table else o})
                pending = []
                with self.st.lock:
                    while True:
                        if self.server.drop_generation != gen or (drop and time.time() >= drop):
                            return  # dropped: the connection closes without the final chunk
                        if time.time() >= deadline or self.server.stopping:
                            self.wfile.write(b"0\r\n\r\n")
                            return
                        start = bisect.bisect_right(self.st.event_rvs, last)
                        new = [e for e in self.st.events[start:] if e[1] == (r.group, r.plural)]
                        if new or (bookmarks and time.time() - last_bookmark > 1.0):
                            break
                        self.st.lock.wait(0.2)
                        if self.client_gone():
                            return  # as the API server does: a watch ends with its client
                    for erv, _, typ, o, prev in new:
                        last = erv
                        now_ok, was_ok = ok(o), prev is not None and ok(prev)
                        if typ == "MODIFIED" and not now_ok and was_ok:
                            pending.append(("DELETED", o))
                        elif typ == "MODIFIED" and now_ok and not was_ok:
                            pending.append(("ADDED", o))
                        elif now_ok:
                            pending.append((typ, o))
                    if not new:
                        last = max(last, self.st.rv)  # nothing of ours up to here
                if bookmarks and not pending and time.time() - last_bookmark > 1.0:
                    last_bookmark = time.time()
                    self.chunk({"type": "BOOKMARK", "object": {"kind": r.kind, "apiVersion": r.api_version,
                                                               "metadata": {"resourceVersion": str(last)}}})
        finally:
            with self.st.lock:
                self.server.watches -= 1
            self.close_connection = True


ADMIN_CN = "kube-fake-admin"


def make_certs(d):
    """A CA, the serving certificate for 127.0.0.1 it signs (client-go sends tokens only over
    TLS), and a client certificate for CN=kube-fake-admin (full access, like the token)."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    p = lambda n: os.path.join(d, n)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", "2",
        "-subj", "/CN=kube-fake-ca")
    for name, cn, ext in (("tls", "kube-fake", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
                          ("client", ADMIN_CN, "extendedKeyUsage=clientAuth")):
        open(p(name + ".ext"), "w").write(ext)
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p(name + ".key"), "-out", p(name + ".csr"), "-subj", "/CN=" + cn)
        run("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial",
            "-out", p(name + ".crt"), "-days", "2", "-extfile", p(name + ".ext"))
    return p("tls.key"), p("tls.crt"), p("ca.crt"), p("client.crt"), p("client.key")


def write_kubeconfig(path, url, token, ca_file, client=None, files=False):
    """token, or client=(cert, key) as -data (or as file paths when files=True)."""
    b64 = lambda f: base64.b64encode(open(f, "rb").read()).decode()
    ca = b64(ca_file) if ca_file else ""
    if client and files:
        user = f"    client-certificate: {client[0]}\n    client-key: {client[1]}\n"
    elif client:
        user = f"    client-certificate-data: {b64(client[0])}\n    client-key-data: {b64(client[1])}\n"
    else:
        user = f"    token: {token}\n"
    with open(path, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: kube-fake
  cluster:
    server: {url}
""" + ((f"    certificate-authority: {ca_file}\n" if files else f"    certificate-authority-data: {ca}\n") if ca else "") + f"""contexts:
- name: kube-fake
  context:
    cluster: kube-fake
    user: kube-fake
    namespace: default
current-context: kube-fake
users:
- name: kube-fake
  user:
""" + user)


def main():
    ap = argparse.ArgumentParser(description="in-memory Kubernetes API server for tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--kubeconfig", help="write a kubeconfig for this server here")
    ap.add_argument("--token", default="kube-fake-token")
    ap.add_argument("--plain-http", action="store_true", help="no TLS (client-go then sends no token)")
    ap.add_argument("--kubeconfig-cert", help="also write a kubeconfig that authenticates with a client certificate (data)")
    ap.add_argument("--kubeconfig-cert-files", help="the same with the certificate, key and CA as file paths")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.store = Store()
    srv.token = a.token
    srv.verbose = a.verbose
    srv.watches = 0
    srv.drop_generation = 0
    srv.stopping = False
    scheme, crt = "http", None
    if not a.plain_http:
        d = tempfile.mkdtemp(prefix="kube-fake-")
        key, crt, ca, ccrt, ckey = make_certs(d)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL  # a client certificate, when sent, must be ours
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        scheme = "https"
    url = f"{scheme}://127.0.0.1:{srv.server_address[1]}"
    if a.kubeconfig:
        write_kubeconfig(a.kubeconfig, url, a.token, ca if not a.plain_http else None)
    if a.kubeconfig_cert and not a.plain_http:
        write_kubeconfig(a.kubeconfig_cert, url, None, ca, (ccrt, ckey))
    if a.kubeconfig_cert_files and not a.plain_http:
        write_kubeconfig(a.kubeconfig_cert_files, url, None, ca, (ccrt, ckey), files=True)
    print(f"listening on {url}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
