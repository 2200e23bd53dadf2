"""Each endpoint is declared once; access and errors follow from the declarations."""

from __future__ import annotations

import pytest

from jobsvc import errors
from jobsvc.api.endpoints import ENDPOINTS, OPEN_TO_ALL
from jobsvc.api.problems import STATUS_BY_ERROR, status_of
from jobsvc.tokens import SCOPES
from tests.support.tokens import bearer, make_token


def test_a_view_declared_without_a_scope_needs_admin(app, client):
    app.add_url_rule("/undeclared", "undeclared", lambda: "ok")
    read, admin = make_token(app, "r", "read"), make_token(app, "a", "admin")
    refused = client.get("/undeclared", headers=bearer(read))
    assert refused.status_code == 403
    assert "'admin' scope" in refused.json["detail"]
    assert client.get("/undeclared", headers=bearer(admin)).status_code == 200


def test_the_access_check_reads_the_declared_scopes(app):
    scopes = app.extensions["jobsvc"].scopes
    assert scopes == {endpoint.name: endpoint.scope for endpoint in ENDPOINTS}
    assert scopes["jobs.create_job"] == "enqueue"
    assert scopes["health.health"] == OPEN_TO_ALL


def test_every_declared_scope_is_a_real_scope():
    assert {endpoint.scope for endpoint in ENDPOINTS} <= {*SCOPES, OPEN_TO_ALL}


def _domain_errors() -> list[type[errors.JobsvcError]]:
    found = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.JobsvcError)
    ]
    return sorted(found, key=lambda cls: cls.__name__)


@pytest.mark.parametrize("error_class", _domain_errors(), ids=lambda cls: cls.__name__)
def test_domain_errors_carry_no_http(error_class):
    assert error_class.__doc__
    assert not hasattr(error_class, "status")
    assert not hasattr(error_class, "headers")


@pytest.mark.parametrize("error_class", _domain_errors(), ids=lambda cls: cls.__name__)
def test_every_error_but_a_stale_schema_has_its_own_status(error_class):
    assert (error_class in STATUS_BY_ERROR) == (
        error_class not in {errors.JobsvcError, errors.SchemaBehind}
    )
    assert status_of(errors.SchemaBehind()) == 500
