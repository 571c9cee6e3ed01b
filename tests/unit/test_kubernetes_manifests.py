"""examples/kubernetes/ and its external-idp/ variant without a cluster: the Kubernetes JSON schemas, and what
ties the objects to each other and to the validator.

kubernetes-validate ships the schemas of every Kubernetes release in its wheel, so nothing is
fetched at test time. Strict mode also refuses fields the schema does not know (a misspelt key).
"""

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from auth_api.config import Settings as AuthSettings
from validator import authorization
from validator.config import CLAIMS_HEADER, DEFAULT_CLAIM_HEADERS, Settings


ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "examples" / "kubernetes"
# The same without an auth API, for an external identity provider: applied on its own.
EXTERNAL = MANIFESTS / "external-idp"
# An older release that clusters still run, and the newest the pinned kubernetes-validate ships:
# every field used must exist in both.
KUBERNETES_VERSIONS = ("1.32", kubernetes_validate.latest_version())
ANNOTATION = "nginx.ingress.kubernetes.io/"
# The request headers the validator reads on /verify (validator/resources.py, validator/authorization.py).
REQUIREMENT_HEADERS = {"X-Jwtgate-Require-Scopes", "X-Jwtgate-Require-Roles", "X-Jwtgate-Require-Claims"}


# Which Service a URL in a setting or annotation names: <service>.<namespace>.svc[.cluster.local].
SERVICE_URL = re.compile(r"\b[a-z]+://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?\b")
WORKLOADS = ("Deployment", "StatefulSet")


def _objects(directory):
    objects = []
    for path in sorted(directory.glob("*.yaml")):
        for document in YAML(typ="safe", pure=True).load_all(path.read_text()):
            if document:
                objects.append((str(path.relative_to(MANIFESTS)), document))
    return objects


OBJECTS = _objects(MANIFESTS)
EXTERNAL_OBJECTS = _objects(EXTERNAL)
SETS = {"auth-api": OBJECTS, "external-idp": EXTERNAL_OBJECTS}


def _kind(kind, objects=OBJECTS):
    return [obj for _, obj in objects if obj["kind"] == kind]


def _named(kind, name, objects=OBJECTS):
    (found,) = [obj for obj in _kind(kind, objects) if obj["metadata"]["name"] == name]
    return found


def _pod_labels(objects):
    """Each workload's name and the labels its pods carry."""
    return [(obj["metadata"]["name"], obj["spec"]["template"]["metadata"]["labels"])
            for kind in WORKLOADS for obj in _kind(kind, objects)]


def _selects(selector, labels):
    return selector["matchLabels"].items() <= labels.items()


def _annotations(obj):
    return obj["metadata"].get("annotations", {})


def _protected(ingress):
    return ANNOTATION + "auth-url" in _annotations(ingress)


def _validator_container(objects=OBJECTS):
    (container,) = _named("Deployment", "validator", objects)["spec"]["template"]["spec"]["containers"]
    return container


def _validator_settings_env():
    (source,) = _validator_container()["envFrom"]
    return dict(_named("ConfigMap", source["configMapRef"]["name"])["data"])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name, obj", OBJECTS + EXTERNAL_OBJECTS,
                         ids=[f"{name}:{obj['kind']}/{obj['metadata']['name']}"
                              for name, obj in OBJECTS + EXTERNAL_OBJECTS])
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


@pytest.mark.parametrize("objects", SETS.values(), ids=SETS)
def test_every_object_is_in_one_namespace(objects):
    namespaces = {obj["metadata"].get("namespace") for _, obj in objects if obj["kind"] != "Namespace"}
    assert namespaces == {_kind("Namespace", objects)[0]["metadata"]["name"]}


def _service_references(objects):
    """(namespace, Service name, port or None, where) for every Service an object names."""
    for _, obj in objects:
        namespace = obj["metadata"].get("namespace")
        texts = [*_annotations(obj).values()]
        if obj["kind"] == "ConfigMap":
            texts += obj.get("data", {}).values()
        for kind in WORKLOADS:
            if obj["kind"] == kind:
                pod = obj["spec"]["template"]["spec"]
                texts += [variable.get("value", "") for container in pod.get("initContainers", []) + pod["containers"]
                          for variable in container.get("env", [])]
        for text in texts:
            for name, service_namespace in SERVICE_URL.findall(text):
                port = re.search(rf"{name}\.{service_namespace}\.svc[a-z.]*:(\d+)", text)
                yield service_namespace, name, port and int(port.group(1)), obj["metadata"]["name"]
        if obj["kind"] == "Ingress":
            for rule in obj["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    service = path["backend"]["service"]
                    yield namespace, service["name"], service["port"]["number"], obj["metadata"]["name"]


@pytest.mark.parametrize("objects", SETS.values(), ids=SETS)
def test_every_service_a_manifest_names_exists_in_the_set_with_that_port(objects):
    services = {(obj["metadata"]["namespace"], obj["metadata"]["name"]): {port["port"] for port in obj["spec"]["ports"]}
                for obj in _kind("Service", objects)}
    references = list(_service_references(objects))
    assert len(references) >= 3
    for namespace, name, port, where in references:
        assert (namespace, name) in services, (where, name)
        assert port is None or port in services[namespace, name], (where, name, port)
    # Each Service reaches pods of the set, on a port they declare.
    for service in _kind("Service", objects):
        pods = [(workload, labels) for workload, labels in _pod_labels(objects)
                if service["spec"]["selector"].items() <= labels.items()]
        assert pods, service["metadata"]["name"]


@pytest.mark.parametrize("objects", SETS.values(), ids=SETS)
def test_every_selector_selects_pods_of_the_set(objects):
    pods = _pod_labels(objects)
    selectors = [(obj["metadata"]["name"], obj["spec"]["selector"]) for obj in _kind("PodDisruptionBudget", objects)]
    for policy in _kind("NetworkPolicy", objects):
        selectors.append((policy["metadata"]["name"], policy["spec"]["podSelector"]))
        # A peer with no namespaceSelector is a pod of this namespace, so of this set.
        selectors += [(policy["metadata"]["name"], peer["podSelector"]) for rule in policy["spec"]["ingress"]
                      for peer in rule["from"] if "namespaceSelector" not in peer]
    for name, selector in selectors:
        assert [workload for workload, labels in pods if _selects(selector, labels)], name


@pytest.mark.parametrize("objects", SETS.values(), ids=SETS)
def test_only_the_ingress_controller_reaches_the_validator_and_the_backend(objects):
    for workload in ("validator", "backend"):
        labels = _named("Deployment", workload, objects)["spec"]["template"]["metadata"]["labels"]
        (policy,) = [policy for policy in _kind("NetworkPolicy", objects)
                     if _selects(policy["spec"]["podSelector"], labels)]
        (rule,) = policy["spec"]["ingress"]
        (peer,) = rule["from"]
        assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}
        assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "ingress-nginx"}
    # Every pod of the set is behind some policy.
    for workload, labels in _pod_labels(objects):
        assert any(_selects(policy["spec"]["podSelector"], labels) for policy in _kind("NetworkPolicy", objects)), \
            workload


@pytest.mark.parametrize("objects", SETS.values(), ids=SETS)
def test_every_pod_is_unprivileged_bounded_and_probed(objects):
    for kind in WORKLOADS:
        for workload in _kind(kind, objects):
            name = workload["metadata"]["name"]
            pod = workload["spec"]["template"]["spec"]
            assert pod["automountServiceAccountToken"] is False, name
            context = pod["securityContext"]
            assert context["runAsNonRoot"] is True and context["runAsUser"] > 0, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            for container in pod.get("initContainers", []) + pod["containers"]:
                assert container["securityContext"] == {
                    "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                }, (name, container["name"])
                resources = container["resources"]
                assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"], name
            for container in pod["containers"]:
                assert "readinessProbe" in container and "livenessProbe" in container, name
                for probe in ("readinessProbe", "livenessProbe"):
                    if "httpGet" in container[probe]:
                        assert container[probe]["httpGet"]["path"] in {"/healthz", "/readyz"}, name


@pytest.mark.parametrize("objects", SETS.values(), ids=SETS)
def test_validator_pods_survive_a_drain(objects):
    labels = _named("Deployment", "validator", objects)["spec"]["template"]["metadata"]["labels"]
    (budget,) = [budget for budget in _kind("PodDisruptionBudget", objects) if _selects(budget["spec"]["selector"],
                                                                                         labels)]
    assert budget["spec"]["minAvailable"] < _named("Deployment", "validator", objects)["spec"]["replicas"]


def test_only_the_auth_api_mounts_its_data():
    claims = {volume["persistentVolumeClaim"]["claimName"]: workload["metadata"]["name"]
              for workload in _kind("Deployment") for volume in workload["spec"]["template"]["spec"]["volumes"]
              if "persistentVolumeClaim" in volume}
    assert claims == {"auth-data": "auth-api"}
    assert _named("Deployment", "auth-api")["spec"]["strategy"] == {"type": "Recreate"}


def test_the_auth_api_and_the_validator_share_the_redis_revocation_feed():
    (source,) = _named("Deployment", "auth-api")["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    auth = AuthSettings.from_env(dict(_named("ConfigMap", source["configMapRef"]["name"])["data"]))
    validator = Settings.from_env({**_validator_settings_env(), "JWTGATE_DATA_DIR": "/var/lib/jwtgate"})
    assert auth.revocation_store == validator.revocation_db == validator.dpop_replay_db
    assert validator.revocation_db.startswith("redis://redis.")


def test_the_external_provider_set_has_no_auth_api_and_keys_by_discovery():
    (source,) = _validator_container(EXTERNAL_OBJECTS)["envFrom"]
    env = dict(_named("ConfigMap", source["configMapRef"]["name"], EXTERNAL_OBJECTS)["data"])
    settings = Settings.from_env({**env, "JWTGATE_DATA_DIR": "/var/lib/jwtgate"})
    assert settings.jwks_url is None and settings.issuer.startswith("https://")
    assert "VALIDATOR_ALLOW_HTTP" not in env
    names = {obj["metadata"]["name"] for _, obj in EXTERNAL_OBJECTS}
    assert not {"auth-api", "auth-data", "redis"} & names


def test_validator_settings_are_valid_and_listen_on_the_service_port():
    env = _validator_settings_env()
    # What the validator's gunicorn config reads at start: any bad value would stop the pod.
    settings = Settings.from_env({**env, "JWTGATE_DATA_DIR": "/var/lib/jwtgate"})
    assert settings.jwks_url == "http://auth-api.jwtgate.svc.cluster.local:8000/.well-known/jwks.json"
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


@pytest.mark.parametrize("objects", SETS.values(), ids=SETS)
def test_only_public_paths_skip_the_validator(objects):
    for ingress in _kind("Ingress", objects):
        if _protected(ingress):
            continue
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                # The auth API's routes take credentials or a refresh token, and the JWKS is public.
                public = ("/api/auth", "/.well-known/jwks.json") if path["backend"]["service"]["name"] == "auth-api" \
                    else ("/api/public",)
                assert path["path"].startswith(public), ingress["metadata"]["name"]
