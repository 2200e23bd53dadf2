"""``flask --app jobsvc jobs queues``: the list as a table or JSON, pause and resume."""

from __future__ import annotations

import json


def test_the_list_shows_each_queue_as_a_table_row_and_as_json(app, client):
    client.post("/jobs", json={"type": "test.echo", "payload": {}, "queue": "emails"})
    client.put(
        "/queues/reports", json={"concurrency": 2, "rate_limit": {"jobs": 10, "per_seconds": 1}}
    )
    runner = app.test_cli_runner()
    table = runner.invoke(args=["jobs", "queues"])
    assert table.exit_code == 0, table.output
    header, emails, reports = table.output.splitlines()
    assert header.split()[:3] == ["queue", "paused", "concurrency"]
    assert emails.split()[:5] == ["emails", "no", "-", "-", "1"]
    assert reports.split()[:4] == ["reports", "no", "2", "10/1s"]
    listed = runner.invoke(args=["jobs", "queues", "--json"])
    assert listed.exit_code == 0, listed.output
    from_cli = json.loads(listed.output)["queues"]
    from_api = client.get("/queues").json["queues"]
    for queue in from_cli + from_api:
        queue.pop("oldest_ready_age_seconds")  # it grows between the two reads
    assert from_cli == from_api


def test_pause_and_resume_from_the_command_line_reach_the_api(app, client):
    runner = app.test_cli_runner()
    paused = runner.invoke(args=["jobs", "queues", "pause", "emails"])
    assert paused.exit_code == 0 and "Paused queue 'emails'" in paused.output
    assert client.get("/queues/emails").json["paused"] is True
    resumed = runner.invoke(args=["jobs", "queues", "resume", "emails"])
    assert resumed.exit_code == 0
    assert client.get("/queues/emails").json["paused"] is False
    refused = runner.invoke(args=["jobs", "queues", "pause", "bad name!"])
    assert refused.exit_code != 0 and "letters, digits" in refused.output
