def test_healthz_reports_database_up(client, db):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "up"
