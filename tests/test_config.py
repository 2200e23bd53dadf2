"""Settings come from defaults, then the environment."""

from __future__ import annotations

import pytest

from jobsvc import config


def test_defaults_use_one_absolute_sqlite_file(tmp_path):
    settings = config.load(str(tmp_path / "instance"), environ={})
    url = settings["SQLALCHEMY_DATABASE_URI"]
    assert url == f"sqlite:///{(tmp_path / 'instance').resolve()}/jobsvc.sqlite3"
    assert settings["JOBSVC_AUTO_MIGRATE"] is True
    assert settings["JOBSVC_HANDLERS"] == ()


def test_environment_overrides_with_fractions(tmp_path):
    settings = config.load(
        str(tmp_path),
        environ={
            "JOBSVC_LEASE_SECONDS": "0.5",
            "JOBSVC_HEARTBEAT_SECONDS": "0.2",
            "JOBSVC_MAX_ATTEMPTS": "7",
            "JOBSVC_AUTO_MIGRATE": "off",
            "JOBSVC_HANDLERS": "a.b, c.d ,",
            "DATABASE_URL": "postgresql://u@h/db",
        },
    )
    assert settings["JOBSVC_LEASE_SECONDS"] == 0.5
    assert settings["JOBSVC_MAX_ATTEMPTS"] == 7
    assert settings["JOBSVC_AUTO_MIGRATE"] is False
    assert settings["JOBSVC_HANDLERS"] == ("a.b", "c.d")
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JOBSVC_LEASE_SECONDS", "0"),
        ("JOBSVC_LEASE_SECONDS", "soon"),
        ("JOBSVC_MAX_ATTEMPTS", "0"),
        ("JOBSVC_AUTO_MIGRATE", "maybe"),
    ],
)
def test_invalid_setting_names_itself(tmp_path, name, value):
    with pytest.raises(ValueError, match=name):
        config.load(str(tmp_path), environ={name: value})


def test_every_setting_is_documented_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for setting in config.SETTINGS:
        assert f"JOBSVC_{setting.name}" in readme, setting.name


def test_the_instance_folder_is_per_user_unless_set(tmp_path):
    # Never found from where the package is installed: every process of a user agrees.
    assert config.instance_path({"XDG_DATA_HOME": str(tmp_path)}) == str(tmp_path / "jobsvc")
    assert config.instance_path({"JOBSVC_INSTANCE_PATH": str(tmp_path / "x")}) == str(
        tmp_path / "x"
    )
