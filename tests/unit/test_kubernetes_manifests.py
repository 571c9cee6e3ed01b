"""examples/kubernetes/ without a cluster: the Kubernetes JSON schemas, and what ties the objects to the validator.

kubernetes-validate ships the schemas of every Kubernetes release in its wheel, so nothing is
fetched at test time. Strict mode also refuses fields the schema does not know (a misspelt key).
"""

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from validator import authorization
from validator.config import CLAIMS_HEADER, DEFAULT_CLAIM_HEADERS, Settings


ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "examples" / "kubernetes"
# An older release that clusters still run, and the newest the pinned kubernetes-validate ships:
# every field used must exist in both.
KUBERNETES_VERSIONS = ("1.32", kubernetes_validate.latest_version())
ANNOTATION = "nginx.ingress.kubernetes.io/"
# The request headers the validator reads on /verify (validator/resources.py, validator/authorization.py).
REQUIREMENT_HEADERS = {"X-Jwtgate-Require-Scopes", "X-Jwtgate-Require-Roles", "X-Jwtgate-Require-Claims"}


def _objects():
    objects = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for document in YAML(typ="safe", pure=True).load_all(path.read_text()):
            if document:
                objects.append((path.name, document))
    return objects


OBJECTS = _objects()


def _kind(kind):
    return [obj for _, obj in OBJECTS if obj["kind"] == kind]


def _named(kind, name):
    (found,) = [obj for obj in _kind(kind) if obj["metadata"]["name"] == name]
    return found


def _annotations(obj):
    return obj["metadata"].get("annotations", {})


def _protected(ingress):
    return ANNOTATION + "auth-url" in _annotations(ingress)


def _validator_container():
    (container,) = _named("Deployment", "validator")["spec"]["template"]["spec"]["containers"]
    return container


def _validator_settings_env():
    (source,) = _validator_container()["envFrom"]
    return dict(_named("ConfigMap", source["configMapRef"]["name"])["data"])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name, obj", OBJECTS, ids=[f"{name}:{obj['kind']}/{obj['metadata']['name']}"
                                                    for name, obj in OBJECTS])
def test_every_object_validates_against_the_kubernetes_schema(version, name, obj):
    # SchemaNotFoundError (an unknown kind or apiVersion) fails the test too.
    kubernetes_validate.validate(obj, version, strict=True)


def test_the_schemas_really_check():
    deployment = copy.deepcopy(_named("Deployment", "validator"))
    deployment["spec"]["template"]["spec"]["containers"][0]["containerport"] = 8000
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)
    service = copy.deepcopy(_named("Service", "validator"))
    service["spec"]["ports"][0]["port"] = "8000"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES_VERSIONS[-1], strict=True)


def test_every_object_is_in_one_namespace():
    namespaces = {obj["metadata"].get("namespace") for _, obj in OBJECTS if obj["kind"] != "Namespace"}
    assert namespaces == {_kind("Namespace")[0]["metadata"]["name"]}


def test_validator_settings_are_valid_and_listen_on_the_service_port():
    env = _validator_settings_env()
    # What the validator's gunicorn config reads at start: any bad value would stop the pod.
    settings = Settings.from_env({**env, "JWTGATE_DATA_DIR": "/var/lib/jwtgate"})
    assert settings.revocation_db is None
    assert settings.jwks_url.startswith("http://auth-api.")
    container = _validator_container()
    assert container["args"] == ["-c", "validator/gunicorn.conf.py"]
    (port,) = container["ports"]
    assert env["VALIDATOR_BIND"] == f"0.0.0.0:{port['containerPort']}"
    service = _named("Service", "validator")
    assert service["spec"]["selector"].items() <= \
        _named("Deployment", "validator")["spec"]["template"]["metadata"]["labels"].items()
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]


def test_validator_runs_as_the_images_user_without_privileges():
    user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    pod = _named("Deployment", "validator")["spec"]["template"]["spec"]
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == \
        (int(user.group(1)), int(user.group(2)))
    assert pod["securityContext"]["runAsNonRoot"] is True
    context = _validator_container()["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    # A read-only root: the data directory (metrics files) and /tmp are writable volumes.
    assert {mount["mountPath"] for mount in _validator_container()["volumeMounts"]} == {"/var/lib/jwtgate", "/tmp"}


def test_a_pod_gets_traffic_only_once_it_could_allow_a_request():
    container = _validator_container()
    # /readyz is 503 until the worker holds a key and a fresh revocation set; /healthz only says it runs.
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["port"] == container["livenessProbe"]["httpGet"]["port"] == "http"


def test_protected_ingresses_ask_the_validators_verify_for_every_identity_header():
    service = _named("Service", "validator")
    (port,) = service["spec"]["ports"]
    verify = f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local:" \
             f"{port['port']}/verify"
    identity_headers = [pair.split(":")[1] for pair in DEFAULT_CLAIM_HEADERS.split()] + [CLAIMS_HEADER]
    protected = [ingress for ingress in _kind("Ingress") if _protected(ingress)]
    assert len(protected) >= 2
    for ingress in protected:
        annotations = _annotations(ingress)
        assert annotations[ANNOTATION + "auth-url"] == verify
        assert annotations[ANNOTATION + "auth-response-headers"].split(",") == identity_headers
        # The validator answers GET and HEAD only.
        assert annotations[ANNOTATION + "auth-method"] == "GET"


def test_the_admin_ingress_sends_a_requirement_the_validator_reads():
    annotations = _annotations(_named("Ingress", "api-admin"))
    namespace, name = annotations[ANNOTATION + "auth-proxy-set-headers"].split("/")
    # ingress-nginx refuses a ConfigMap from another namespace here.
    assert namespace == _named("Ingress", "api-admin")["metadata"]["namespace"]
    headers = _named("ConfigMap", name)["data"]
    assert headers and set(headers) <= REQUIREMENT_HEADERS
    requirements = authorization.parse(headers.get("X-Jwtgate-Require-Scopes"), headers.get("X-Jwtgate-Require-Roles"),
                                       headers.get("X-Jwtgate-Require-Claims"))
    assert requirements.roles == ("admin",)
    # No snippet annotation: ingress-nginx refuses those unless its administrator allowed them.
    assert not [key for ingress in _kind("Ingress") for key in _annotations(ingress) if key.endswith("-snippet")]


def test_only_public_paths_skip_the_validator():
    for ingress in _kind("Ingress"):
        if _protected(ingress):
            continue
        paths = [path["path"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]
        assert paths and all(path.startswith("/api/public") for path in paths), ingress["metadata"]["name"]
