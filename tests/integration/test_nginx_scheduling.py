"""JWTGATE_NGINX_SCHED_POLICY: the scheduling policy the stack starts Nginx with, and only Nginx."""

import os

import pytest

from launcher.stack import Stack, StackError
from tests.conftest import children
from tests.services import free_port


def process_tree(root):
    """root and its children: a master and its workers."""
    return [root, *children(root)]


def policies(stack, name):
    return {os.sched_getscheduler(pid) for pid in process_tree(stack.processes[name].pid)}


def test_nginx_master_and_workers_run_as_batch_and_the_services_do_not(gateway):
    nginx = process_tree(gateway.stack.processes["nginx"].pid)
    assert len(nginx) >= 2
    assert {os.sched_getscheduler(pid) for pid in nginx} == {os.SCHED_BATCH}
    for service in ("validator", "auth_api", "backend"):
        assert policies(gateway.stack, service) == {os.SCHED_OTHER}


def test_other_starts_nginx_under_the_default_policy(tmp_path):
    stack = Stack(tmp_path, listen=f"127.0.0.1:{free_port()}",
                  environ={**os.environ, "JWTGATE_NGINX_SCHED_POLICY": "other"})
    try:
        stack.prepare()
        stack.start_process("nginx")
        assert len(process_tree(stack.processes["nginx"].pid)) >= 2
        assert policies(stack, "nginx") == {os.SCHED_OTHER}
    finally:
        stack.stop()


def test_a_system_that_refuses_the_policy_still_starts_nginx_and_says_so(tmp_path, monkeypatch, capsys):
    # The one fault injected here: the call fails in the child (a fork of this process), as in a
    # sandbox whose seccomp filter refuses sched_setscheduler(2).
    def refused(pid, policy, param):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refused)
    stack = Stack(tmp_path, listen=f"127.0.0.1:{free_port()}",
                  environ={**os.environ, "JWTGATE_NGINX_SCHED_POLICY": "batch"})
    try:
        stack.prepare()
        stack.start_process("nginx")
        assert policies(stack, "nginx") == {os.sched_getscheduler(0)}
    finally:
        stack.stop()
    assert "JWTGATE_NGINX_SCHED_POLICY=batch: this system refused" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["fifo", "BATCH", "1"])
def test_an_unknown_policy_stops_start_up(tmp_path, value):
    stack = Stack(tmp_path, environ={"JWTGATE_NGINX_SCHED_POLICY": value, "VALIDATOR_JWKS_URL": "http://127.0.0.1/j"})
    with pytest.raises(StackError, match="JWTGATE_NGINX_SCHED_POLICY: must be one of batch, other"):
        stack.check_settings()
