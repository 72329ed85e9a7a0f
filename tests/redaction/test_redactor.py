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


# -- issue 25: the families that still leaked, fixed as families --------------------------------------

@pytest.mark.parametrize(("line", "secret"), [
    # (a) a secret as the value of a config pair
    ("[('spark.app.name', 'etl'), ('spark.hadoop.fs.s3a.secret.key', 'wJalrXUtnFEMIK7MDENGbPxRfiCY0123456789ab')]",
     "wJalrXUtnFEMIK7MDENGbPxRfiCY0123456789ab"),
    ('[["fs.azure.account.key.acct.dfs.core.windows.net", "c2VjcmV0a2V5MTIzNDU2Nzg5MA=="]]', "c2VjcmV0a2V5MTIzNDU2Nzg5MA=="),
    ("(spark.hadoop.fs.s3a.secret.key,wJalrXUtnFEMIK7MDENGbPxRfiCY0123)", "wJalrXUtnFEMIK7MDENGbPxRfiCY0123"),
    ("{'name': 'DB_PASSWORD', 'value': 'Copper!4863GJkv', 'value_from': None}", "Copper!4863GJkv"),
    ("Setting(name='snowflake_password', value='nebula!751669qz')", "nebula!751669qz"),
    ("{'Name': '/prod/db/password', 'Type': 'SecureString', 'Value': 'Granite-2231abcd'}", "Granite-2231abcd"),
    # (b) a password flag inside a command's argv repr
    ("Command '['sqlcmd', '-S', 'db', '-U', 'sa', '-P', 'Harbor-492evx6']' returned non-zero exit status 1.",
     "Harbor-492evx6"),
    ("Command '['keytool', '-importcert', '-storepass', 'violet7150UOuO']' returned non-zero exit status 1.",
     "violet7150UOuO"),
    ("Command '['openssl', 'pkcs12', '-passin', 'pass:Maple_88xy']' returned non-zero exit status 1.", "Maple_88xy"),
    ("Command '['smbclient', '//f/s', '-U', 'etl%Kestrel_41zz']' returned non-zero exit status 1.", "Kestrel_41zz"),
    ("Command '['docker', 'login', '-u', 'ci', '-p', 'walrus.77qQ', 'r.example']' returned non-zero exit status 1.",
     "walrus.77qQ"),
    # (c) basic-auth pairs on a traceback's source line, whatever the first element is
    ("    r = requests.get(url, auth=('etl', 'Falcon#19ab'), timeout=30)", "Falcon#19ab"),
    ('    resp = httpx.post(URL, auth=(USER, "Falcon#19ab"))', "Falcon#19ab"),
    ("    server.login(sender, 'Falcon#19ab')", "Falcon#19ab"),
    ("    conn.simple_bind_s('cn=etl,dc=example,dc=org', 'Falcon#19ab')", "Falcon#19ab"),
])
def test_the_families_that_leaked_are_redacted(line: str, secret: str) -> None:
    assert secret not in Redactor().redact(line)


@pytest.mark.parametrize(("line", "keep"), [
    ("[('spark.executor.memory', '4g'), ('spark.hadoop.fs.s3a.endpoint', 's3.eu-west-1.amazonaws.com')]",
     "s3.eu-west-1.amazonaws.com"),
    ("Command '['mysql', '-h', 'db', '-P', '3306', 'orders']' returned non-zero exit status 1.", "3306"),
    ("    auth=(settings.user, settings.password)", "settings.password"),
    ("Command '['openssl', 'pkcs12', '-passin', 'env:P12_PASS']' returned 1", "env:P12_PASS"),
    ("password: ${DB_PASSWORD}", "${DB_PASSWORD}"),
])
def test_their_look_alikes_are_kept(line: str, keep: str) -> None:
    assert keep in Redactor().redact(line)


def test_a_private_key_logged_one_record_per_line_is_redacted_whole() -> None:
    """Issue 25: each body record alone is only base64; every record between a BEGIN record and its
    END is redacted, per stream (another task's records in between are left alone)."""
    from prefect_failure_insights.redaction import LogRedactor

    body = ["MIIEowIBAAKCAQEAx7r0aT5m4Qq8pX1bY2cZ3dW4eV5fU6gT7hS8iR9jQ0kP1lO2", "nM3oL4pK5qJ6rI7sH8tG9uF0vE1wD2x"]
    log, redactor = None, Redactor()
    log = LogRedactor(redactor)
    out = [log.redact("writing key", stream="t1"), log.redact("-----BEGIN RSA PRIVATE KEY-----", stream="t1"),
           log.redact(body[0], stream="t1"), log.redact("other task: fetched 10 rows", stream="t2"),
           log.redact(body[1], stream="t1"), log.redact("-----END RSA PRIVATE KEY----- done", stream="t1"),
           log.redact("connected", stream="t1")]
    assert not any(b in o for b in body for o in out)
    assert out[0] == "writing key" and out[3] == "other task: fetched 10 rows" and out[6] == "connected"
    assert out[5] == "[REDACTED:private_key] done" and redactor.counts["private_key"] >= 3
    public = LogRedactor(Redactor())
    assert public.redact("-----BEGIN PUBLIC KEY-----") == "-----BEGIN PUBLIC KEY-----"
    assert public.redact("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx7r") == "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx7r"


def test_a_key_without_its_end_stops_being_redacted_after_a_keys_length() -> None:
    from prefect_failure_insights.redaction import LogRedactor

    log = LogRedactor(Redactor(), max_key_records=3)
    out = [log.redact(r) for r in ["-----BEGIN PRIVATE KEY-----", "a" * 64, "b" * 64, "c" * 64, "job finished"]]
    assert out[-1] == "job finished" and "a" * 64 not in out[1]
