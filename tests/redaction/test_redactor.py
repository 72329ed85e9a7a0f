"""Redaction: every planted secret format disappears; ordinary log text is untouched."""

from __future__ import annotations

import pytest

from prefect_failure_insights.redaction import Redactor


def redact(text: str) -> tuple[str, dict[str, int]]:
    r = Redactor()
    return r.redact(text), dict(r.counts)

SECRETS = [
    # (log line, the secret that must disappear, expected kind)
    ("connecting to postgresql://etl:hunter2pw@db.internal:5432/x", "hunter2pw", "url_password"),
    ("snowflake://analyst:S3cr3t!x@acme-xy12345/db/schema", "S3cr3t!x", "url_password"),
    ("redis://:r3dispass@cache:6379/0", "r3dispass", "url_password"),
    ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnopqrstuvwxyz012345", "authorization_header"),
    ("headers={'Authorization': 'Basic dXNlcjpwYXNzd29yZA=='}", "dXNlcjpwYXNzd29yZA==", "authorization_header"),
    ("aws key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE", "aws_access_key_id"),
    ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "assignment"),
    ("token ghp_aBcdEfGhIjKlMnOpQrStUvWxYz0123456789", "ghp_aBcdEfGhIjKlMnOpQrStUvWxYz0123456789", "github_token"),
    ("slack xoxb-123456789012-abcdefghijKL", "xoxb-123456789012-abcdefghijKL", "slack_token"),
    ("key=sk-proj-abcdefghijklmnopqrstuvwxyz1234", "sk-proj-abcdefghijklmnopqrstuvwxyz1234", "openai_key"),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe_key"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx7\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEAx7", "private_key"),
    ("password=hunter2 user=bob", "hunter2", "assignment"),
    ('{"password": "p@ss w0rd", "user": "bob"}', "p@ss w0rd", "assignment"),
    ("Driver={ODBC};Server=x;UID=me;PWD=S3cret99;", "S3cret99", "assignment"),
    ("host=db user=etl password=pg_s3cret dbname=x", "pg_s3cret", "assignment"),
    ("client_secret: abcdef123456", "abcdef123456", "assignment"),
    # Regressions: keys with a prefix, Azure connection strings, "=>", odd URL passwords.
    ("export PGPASSWORD=pgEnvS3cret", "pgEnvS3cret", "assignment"),
    ("dbPassword=camelS3cret adminPassword: adm1nS3cret", "camelS3cret", "assignment"),
    ("myApiKey=key-0123456789", "key-0123456789", "assignment"),
    ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0a2V5MTIzNDU2Nzg5MA==;EndpointSuffix=core",
     "c2VjcmV0a2V5MTIzNDU2Nzg5MA==", "assignment"),
    ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=sbK3yValue0123=",
     "sbK3yValue0123=", "assignment"),
    ("https://acct.blob.core.windows.net/c/f.csv?sv=2022-11-02&sig=AbCd%2BEfGh0123456789", "AbCd%2BEfGh0123456789",
     "assignment"),
    ("config = {password => 'ruby-style-pw'}", "ruby-style-pw", "assignment"),
    ("postgresql://etl:pa/ss@word@db.internal:5432/x", "pa/ss@word", "url_password"),
    # Regressions of issue 11, one per family (the corpus in tests/fixtures/secrets holds the rest).
    ("connecting token=Bearer bEnChBeArErToKeN0123456789abcdef", "bEnChBeArErToKeN0123456789abcdef",
     "authorization_header"),
    ("RuntimeError(\"{\\'host\\': \\'db\\', \\'password\\': \\'Esc4ped-pw\\'}\")", "Esc4ped-pw", "assignment"),
    ("send: b'GET / HTTP/1.1\\r\\nAuthorization: Basic ZXRsOlN1bUBtZXIxOTkxPw==\\r\\n'", "ZXRsOlN1bUBtZXIxOTkxPw==",
     "authorization_header"),
    ('url: "https://x.io/data?units=metric&api_key=Qz8kYw2LpV5rT9mN3bH6" failed', "Qz8kYw2LpV5rT9mN3bH6", "assignment"),
    ('"Warehouse": "Server=tcp:sql;User ID=etl;Password=zephyr-oak-188;Encrypt=True;"', "zephyr-oak-188",
     "assignment"),
    ("snowflake://loader:Hidden9pw@***/db", "Hidden9pw", "url_password"),
    ("mysqldump -u root -pRootPa55 orders", "RootPa55", "cli_password"),
    ("CalledProcessError: Command '['pg_dump', '--password', 'Argv-pw-9']' returned 1", "Argv-pw-9", "cli_password"),
    ("requests.post(url, auth=('api', 'key-3ax6xnjp29jd6fds4gc373sgvjxteol0'))", "3ax6xnjp29jd6fds4gc373sgvjxteol0",
     "positional_credential"),
    ("CREATE ROLE dbt_ci WITH LOGIN PASSWORD 'violet-pepp''er-786';", "violet-pepp''er-786", "assignment"),
]

ORDINARY = [
    "run 3c8501c2-4f21-449b-a62b-d72965b53ccf started at 2026-11-22T03:21:38.123Z",
    "wrote /data/ab12cd34ef56ab12cd34ef56/part-0001.parquet (sha256 9f86d081884c7d659a2feaa0c55ad015)",
    'password authentication failed for user "etl"',
    "GET https://api.vendor.example/v2/orders?page=7 -> 503",
    "Finished in state Failed('Task run encountered an exception ValueError: bad row 7')",
    "token count: 512 of 6000",
    "http://example.com:8080/path",
    "max_tokens=512 total_tokens: 900",
    "signal handler installed; config=prod.yaml",
    "Fetching secret arn:aws:secretsmanager:eu-west-1:481516234211:secret:prod/warehouse/etl-sgHsFt",
    "DB_PASSWORD=\nDB_USER=etl",
    "export OPENAI_API_KEY=<your-api-key>",
    "password: \"{{ env_var('DBT_PASSWORD') }}\"",
    "git@github.com:acme-data/etl-jobs.git",
    "docker pull acme/loader@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
]


@pytest.mark.parametrize("line,secret,kind", SECRETS)
def test_secret_is_removed_and_counted(line: str, secret: str, kind: str) -> None:
    out, counts = redact(line)
    assert secret not in out
    assert counts.get(kind, 0) >= 1, counts


@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_text_is_untouched(line: str) -> None:
    assert redact(line) == (line, {})


def test_user_and_host_survive_url_redaction() -> None:
    out, _ = redact("postgresql://etl:hunter2pw@db.internal:5432/x")
    assert out == "postgresql://etl:[REDACTED:url_password]@db.internal:5432/x"


def test_exact_secret_values_are_removed() -> None:
    r = Redactor(literals=["plain-looking-value-42", "short"])
    assert r.redact("token plain-looking-value-42 and short") == "token [REDACTED:secret_value] and short"
    assert r.counts["secret_value"] == 1
