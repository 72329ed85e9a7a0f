#!/usr/bin/env python3
"""Builds the redaction corpus of issue 25: bench/corpora/secrets/corpus.jsonl and lookalikes.jsonl.

Every item imitates a shape seen in public material (a scanner's rule or test fixture, a public
issue where a log leaked a secret), named in its ``provenance`` field; the surrounding text was
written for this corpus and every secret value is generated here (fixed seed), never copied.

The ``split`` of an item is decided by its *format* alone (a hash of the name, 40 % ``frozen``),
so all variants of a format are on the same side: the ``frozen`` formats were set aside before
any redaction rule was tuned on the ``dev`` ones, and their figures are reported apart.

An item is either one log message (``line``) or several consecutive log records of one stream
(``records``: what a program that logs a file line by line writes, e.g. a PEM key). ``secrets``
must not survive anywhere in the output; ``keep`` is text a good redactor leaves alone.

Run: python3 build.py   (deterministic: the same bytes every time)
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
from pathlib import Path

SEED = 25_2026
R = random.Random(SEED)
HERE = Path(__file__).resolve().parent
FROZEN_SHARE = 4  # of 10

GL = "gitleaks cmd/generate/config/rules/"
TH = "trufflehog pkg/detectors/"
DS = "Yelp/detect-secrets "

ALNUM = string.ascii_letters + string.digits
LOWER_DIGITS = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"


def rs(alphabet: str, n: int) -> str:
    return "".join(R.choice(alphabet) for _ in range(n))


def password() -> str:
    word = R.choice(["Harbor", "falcon", "Copper", "nebula", "Granite", "violet", "Kestrel", "walrus", "Maple"])
    return f"{word}{R.choice(['-', '_', '.', '!', '#', ''])}{R.randint(10, 9999)}{rs(ALNUM, 4)}"


def aws_secret() -> str:
    return rs(ALNUM + "/+", 40)


def pem_body(n_lines: int) -> list[str]:
    raw = bytes(R.getrandbits(8) for _ in range(48 * n_lines))
    text = base64.b64encode(raw).decode()
    return [text[i:i + 64] for i in range(0, len(text), 64)]


def split_of(fmt: str) -> str:
    digest = hashlib.sha256(f"issue25:{fmt}".encode()).hexdigest()
    return "frozen" if int(digest[:8], 16) % 10 < FROZEN_SHARE else "dev"


ITEMS: list[dict] = []


def item(family: str, fmt: str, provenance: str, shape: str, *, line: str | None = None,
         records: list[str] | None = None, secrets: list[str], keep: list[str] = ()) -> None:
    text = line if line is not None else "\n".join(records or [])
    for s in secrets:
        assert s and s in text, (fmt, s)
    for k in keep:
        assert k in text and not any(k in s or s in k for s in secrets), (fmt, k)
    entry = {"id": f"c{len(ITEMS) + 1:03d}", "family": family, "format": fmt, "provenance": provenance,
             "shape": shape, "split": split_of(fmt)}
    entry.update({"line": line} if line is not None else {"records": records})
    entry.update({"secrets": list(secrets), "keep": list(keep)})
    ITEMS.append(entry)


# -- (a) a secret as the value of a config pair in a repr ----------------------------------------------
SPARK = "apache/spark PR #31912 (redacting fs.s3a keys in Spark properties and logs)"
GLUTEN = "apache/gluten PR #12367 review (case-class toString dumps fs.s3a.secret.key)"
SDL = "smart-data-lake/smart-data-lake PR #79 (mask secret spark properties in log)"

s = aws_secret()
item("config_pair", "spark_conf_getall_list", SPARK, "print(spark.sparkContext.getConf().getAll())",
     line=f"[('spark.app.name', 'orders-etl'), ('spark.hadoop.fs.s3a.access.key', 'AKIA{rs(string.ascii_uppercase + string.digits, 16)}'), "
          f"('spark.hadoop.fs.s3a.secret.key', '{s}'), ('spark.executor.memory', '4g')]",
     secrets=[s], keep=["spark.hadoop.fs.s3a.secret.key", "spark.executor.memory"])
s = aws_secret()
item("config_pair", "spark_conf_single_tuple", GLUTEN, "a config pair logged alone",
     line=f"setting ('spark.hadoop.fs.s3a.secret.key', '{s}') on the session", secrets=[s],
     keep=["spark.hadoop.fs.s3a.secret.key"])
s = rs(B64, 86) + "=="
item("config_pair", "hadoop_conf_azure_account_key_list", SDL, "conf pairs as a JSON list of lists",
     line=f'hadoop conf: [["fs.azure.account.key.lakeacct.dfs.core.windows.net", "{s}"], ["fs.azure.always.use.https", "true"]]',
     secrets=[s], keep=["fs.azure.account.key.lakeacct.dfs.core.windows.net"])
s = password()
item("config_pair", "dict_items_repr", DS + "tests/plugins/keyword_test.py (keyword families)", "dict.items() printed",
     line=f"connection options: dict_items([('host', 'db.internal'), ('db_password', '{s}'), ('port', 5432)])",
     secrets=[s], keep=["db.internal", "db_password"])
s = aws_secret()
item("config_pair", "environ_items_tuple_list", GL + "aws.go", "sorted(os.environ.items()) in a debug log",
     line=f"env: [('AWS_DEFAULT_REGION', 'eu-west-1'), ('AWS_SECRET_ACCESS_KEY', '{s}'), ('HOME', '/root')]",
     secrets=[s], keep=["AWS_SECRET_ACCESS_KEY", "eu-west-1"])
s = password()
item("config_pair", "kafka_sasl_tuple", "confluentinc/librdkafka CONFIGURATION.md (sasl.password)", "client config pairs",
     line=f"producer config: (('bootstrap.servers', 'broker:9093'), ('sasl.username', 'etl'), ('sasl.password', '{s}'))",
     secrets=[s], keep=["sasl.password", "broker:9093"])
s = password()
item("config_pair", "name_value_repr", DS + "tests/plugins/keyword_test.py", "a settings object's repr",
     line=f"Loaded Setting(name='snowflake_password', value='{s}', source='env')", secrets=[s],
     keep=["snowflake_password"])
s = aws_secret()
item("config_pair", "pyspark_row_key_value", SPARK, "spark.sql('SET -v').collect() rows",
     line=f"Row(key='spark.hadoop.fs.s3a.secret.key', value='{s}', meaning='')", secrets=[s],
     keep=["spark.hadoop.fs.s3a.secret.key"])
s = password()
item("config_pair", "k8s_env_var_dict", GL + "kubernetes.go", "a container's env printed by the Kubernetes client",
     line=f"env=[{{'name': 'DB_PASSWORD', 'value': '{s}', 'value_from': None}}, {{'name': 'LOG_LEVEL', 'value': 'info'}}]",
     secrets=[s], keep=["DB_PASSWORD", "LOG_LEVEL"])
s = password()
item("config_pair", "ssm_parameter_dict", GL + "aws.go", "boto3 ssm.get_parameters() response logged",
     line=f"{{'Parameters': [{{'Name': '/prod/warehouse/password', 'Type': 'SecureString', 'Value': '{s}', 'Version': 3}}]}}",
     secrets=[s], keep=["/prod/warehouse/password"])
s = aws_secret()
item("config_pair", "scala_tuple_tostring", SPARK, "SparkConf.getAll printed from Scala",
     line=f"ArrayBuffer((spark.master,k8s://https://kube:443), (spark.hadoop.fs.s3a.secret.key,{s}), (spark.app.name,etl))",
     secrets=[s], keep=["spark.hadoop.fs.s3a.secret.key", "spark.app.name"])
s = rs(ALNUM, 32)
item("config_pair", "airflow_conn_extra_pairs", "apache/airflow docs: connection extras", "connection extras as pairs",
     line=f"extras: [('account', 'xy12345'), ('private_key_passphrase', '{s}')]", secrets=[s],
     keep=["private_key_passphrase"])
s = password()
item("config_pair", "ini_items_tuple", "python configparser .items() output", "config section items",
     line=f"[database] items: [('user', 'etl'), ('passwd', '{s}'), ('host', 'db')]", secrets=[s], keep=["passwd"])
s = rs(HEX, 40)
item("config_pair", "tuple_token_value", GL + "generic.go (generic-api-key)", "header pairs as a tuple list",
     line=f"request headers: [('Accept', 'application/json'), ('X-Api-Token', '{s}')]", secrets=[s],
     keep=["X-Api-Token", "application/json"])

# -- (b) password flags inside a command's argv repr -------------------------------------------------
CPE = "python subprocess.CalledProcessError message: Command '[argv...]' returned non-zero exit status"
s = password()
item("argv_flag", "sqlcmd_P_argv", "Microsoft sqlcmd docs (-P password); " + CPE, "CalledProcessError",
     line=f"subprocess.CalledProcessError: Command '['sqlcmd', '-S', 'tcp:db,1433', '-U', 'sa', '-P', '{s}', '-Q', 'select 1']' returned non-zero exit status 1.",
     secrets=[s], keep=["sqlcmd", "tcp:db,1433"])
s = password()
item("argv_flag", "bcp_P_argv", "Microsoft bcp utility docs (-P password); " + CPE, "CalledProcessError",
     line=f"Command '['bcp', 'dbo.orders', 'in', '/tmp/orders.csv', '-S', 'db', '-U', 'loader', '-P', '{s}', '-c']' returned non-zero exit status 1.",
     secrets=[s], keep=["dbo.orders", "loader"])
s = password()
item("argv_flag", "mysql_p_attached_argv", "MySQL docs: --password / -p (attached); " + CPE, "CalledProcessError",
     line=f"Command '['mysql', '-h', 'db', '-uetl', '-p{s}', 'orders', '-e', 'source load.sql']' returned non-zero exit status 1.",
     secrets=[s], keep=["orders", "load.sql"])
s = password()
item("argv_flag", "mysqldump_long_separate_argv", "MySQL docs: --password; " + CPE, "CalledProcessError",
     line=f"Command '['mysqldump', '--user', 'etl', '--password', '{s}', 'orders']' returned non-zero exit status 2.",
     secrets=[s], keep=["mysqldump", "orders"])
s = password()
item("argv_flag", "sshpass_p_argv", "sshpass(1) -p; " + CPE, "CalledProcessError",
     line=f"Command '['sshpass', '-p', '{s}', 'scp', 'out.csv', 'etl@sftp.vendor.example:/in/']' returned non-zero exit status 5.",
     secrets=[s], keep=["sftp.vendor.example"])
s = rs(ALNUM, 24)
item("argv_flag", "redis_cli_a_argv", "redis-cli -a password docs; " + CPE, "Popen args",
     line=f"Popen(args=['redis-cli', '-h', 'cache', '-a', '{s}', 'PING'], returncode=1)", secrets=[s],
     keep=["redis-cli", "cache"])
s = password()
item("argv_flag", "mongosh_p_argv", "MongoDB mongosh --password / -p docs; " + CPE, "CalledProcessError",
     line=f"Command '['mongosh', 'mongodb://db:27017/admin', '-u', 'root', '-p', '{s}', '--eval', 'db.stats()']' returned non-zero exit status 1.",
     secrets=[s], keep=["db.stats()"])
s = password()
item("argv_flag", "docker_login_p_argv", GL + "(docker login); " + CPE, "CalledProcessError",
     line=f"Command '['docker', 'login', '-u', 'ci-bot', '-p', '{s}', 'registry.example.com']' returned non-zero exit status 1.",
     secrets=[s], keep=["registry.example.com", "ci-bot"])
s = password()
item("argv_flag", "openssl_passin_argv", "OpenSSL docs: pass phrase options (-passin pass:...); " + CPE, "CalledProcessError",
     line=f"Command '['openssl', 'pkcs12', '-in', 'client.p12', '-nodes', '-passin', 'pass:{s}']' returned non-zero exit status 1.",
     secrets=[s], keep=["client.p12"])
s = password()
item("argv_flag", "keytool_storepass_argv", "Java keytool docs (-storepass); " + CPE, "CalledProcessError",
     line=f"Command '['keytool', '-importcert', '-keystore', 'truststore.jks', '-storepass', '{s}', '-noprompt']' returned non-zero exit status 1.",
     secrets=[s], keep=["truststore.jks"])
s = password()
item("argv_flag", "smbclient_user_percent_argv", "smbclient(1) -U user%password; " + CPE, "CalledProcessError",
     line=f"Command '['smbclient', '//files/share', '-U', 'etl%{s}', '-c', 'get report.xlsx']' returned non-zero exit status 1.",
     secrets=[s], keep=["//files/share", "report.xlsx"])
s = password()
item("argv_flag", "curl_u_argv", GL + "curl.go (curl-auth-user); " + CPE, "CalledProcessError",
     line=f"Command '['curl', '-fsS', '-u', 'etl:{s}', 'https://api.vendor.example/export']' returned non-zero exit status 22.",
     secrets=[s], keep=["https://api.vendor.example/export"])
s = password()
item("argv_flag", "sqlcmd_P_tuple", "Microsoft sqlcmd docs (-P password)", "args as a tuple",
     line=f"running ('sqlcmd', '-S', 'db', '-U', 'sa', '-P', '{s}', '-i', 'migrate.sql')", secrets=[s],
     keep=["migrate.sql"])
s = password()
item("argv_flag", "sqlcmd_P_shell", "Microsoft sqlcmd docs (-P password)", "a shell command line (set -x)",
     line=f"+ sqlcmd -S tcp:db,1433 -U sa -P {s} -Q 'exec load_orders'", secrets=[s], keep=["exec load_orders"])
s = password()
item("argv_flag", "pg_dump_env_argv", "PostgreSQL docs: PGPASSWORD; " + CPE, "env prefix in argv",
     line=f"Command '['env', 'PGPASSWORD={s}', 'pg_dump', '-h', 'db', '-U', 'etl', 'orders']' returned non-zero exit status 1.",
     secrets=[s], keep=["pg_dump", "orders"])
s = password()
item("argv_flag", "lftp_u_user_comma_argv", "lftp(1) -u user,password; " + CPE, "CalledProcessError",
     line=f"Command '['lftp', '-u', 'etl,{s}', '-e', 'mirror -R out /in; bye', 'sftp://ftp.vendor.example']' returned non-zero exit status 1.",
     secrets=[s], keep=["sftp://ftp.vendor.example"])

# -- (c) basic-auth tuples on a traceback's source line ------------------------------------------------
TB = "psf/requests issue #3751 (a traceback through requests' auth path)"
s = password()
item("auth_tuple", "requests_auth_tuple_source_line", TB, "traceback source line",
     line="Traceback (most recent call last):\n  File \"/opt/etl/vendor.py\", line 42, in fetch\n"
          f"    r = requests.get(url, auth=('etl', '{s}'), timeout=30)\nrequests.exceptions.HTTPError: 401 Client Error",
     secrets=[s], keep=["/opt/etl/vendor.py", "401 Client Error"])
s = password()
item("auth_tuple", "session_auth_assign_source_line", TB, "traceback source line",
     line=f"  File \"/opt/etl/client.py\", line 18, in __init__\n    self.session.auth = (\"svc-orders\", \"{s}\")\nTypeError: x",
     secrets=[s], keep=["svc-orders", "/opt/etl/client.py"])
s = password()
item("auth_tuple", "auth_tuple_variable_user", TB, "traceback source line, the user a variable",
     line=f"  File \"/opt/etl/vendor.py\", line 51, in push\n    resp = httpx.post(URL, json=rows, auth=(USER, \"{s}\"))",
     secrets=[s], keep=["/opt/etl/vendor.py"])
s = password()
item("auth_tuple", "auth_tuple_py311_carets", TB, "Python 3.11 traceback with carets",
     line=f"    r = requests.get(url, auth=('etl', '{s}'))\n        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
     secrets=[s])
s = password()
item("auth_tuple", "ftplib_login_positional", "python ftplib FTP.login(user, passwd)", "traceback source line",
     line=f"  File \"/opt/etl/ftp.py\", line 9, in upload\n    ftp.login('etl', '{s}')\nftplib.error_perm: 530 Login incorrect.",
     secrets=[s], keep=["530 Login incorrect."])
s = password()
item("auth_tuple", "smtp_login_variable_user", "python smtplib SMTP.login(user, password)", "traceback source line",
     line=f"    server.login(sender, '{s}')\nsmtplib.SMTPAuthenticationError: (535, b'5.7.8 Username and Password not accepted')",
     secrets=[s], keep=["SMTPAuthenticationError"])
s = password()
item("auth_tuple", "ldap_simple_bind_positional", "python-ldap simple_bind_s(who, cred)", "traceback source line",
     line=f"    conn.simple_bind_s('cn=etl,ou=svc,dc=example,dc=org', '{s}')\nldap.INVALID_CREDENTIALS: {{'desc': 'Invalid credentials'}}",
     secrets=[s], keep=["cn=etl,ou=svc,dc=example,dc=org"])
s = password()
item("auth_tuple", "rich_locals_auth_tuple", "Textualize/rich traceback locals panel (show_locals)", "rich locals",
     line=f"│ auth = ('etl', '{s}')\n│  url = 'https://api.vendor.example/v2/orders'",
     secrets=[s], keep=["https://api.vendor.example/v2/orders"])
s = password()
item("auth_tuple", "httpbasicauth_variable_user", TB, "traceback source line",
     line=f"    r = session.get(url, auth=HTTPBasicAuth(cfg.user, '{s}'))", secrets=[s])
s = password()
item("auth_tuple", "proxy_auth_tuple", "psf/requests docs (proxies with auth)", "traceback source line",
     line=f"    r = requests.get(url, proxies=proxies, auth=('proxyuser', '{s}'))\nProxyError: 407", secrets=[s],
     keep=["ProxyError: 407"])
s = password()
item("auth_tuple", "aiohttp_basicauth_kw", "aio-libs/aiohttp docs (BasicAuth)", "traceback source line",
     line=f"    auth = aiohttp.BasicAuth(login='etl', password='{s}')", secrets=[s])
s = password()
item("auth_tuple", "pymongo_positional_credentials", "pymongo MongoClient(username=..., password=...)",
     "traceback source line", line=f"    client = MongoClient(host, 27017, 'etl', '{s}')  # noqa", secrets=[s])

# -- (d) a private key logged one record per line -------------------------------------------------------
OPENSHIFT = "openshift/origin issue #3951 (private RSA key in the journal, one line per entry)"
ACME = "acmesh-official/acme.sh issue #6267 (private keys pasted from --debug logs)"
AUTOSSL = "auto-ssl/lua-resty-auto-ssl issue #64 (set -x prints the key file)"
BONFIRE = "bonfire-networks/bonfire-app issue #892 (actor keys logged at debug)"
for fmt, kind, n, prov, prefix in [
    ("pem_rsa_per_record", "RSA PRIVATE KEY", 12, OPENSHIFT, ""),
    ("pem_ec_per_record", "EC PRIVATE KEY", 3, ACME, ""),
    ("pem_pkcs8_per_record", "PRIVATE KEY", 10, GL + "PKCS8.go", ""),
    ("pem_openssh_per_record", "OPENSSH PRIVATE KEY", 7, GL + "privatekey.go", ""),
    ("pem_encrypted_per_record", "ENCRYPTED PRIVATE KEY", 9, GL + "privatekey.go", ""),
    ("pem_prefixed_per_record", "RSA PRIVATE KEY", 8, BONFIRE, "key: "),
    ("pem_set_x_per_record", "RSA PRIVATE KEY", 6, AUTOSSL, ""),
]:
    body = pem_body(n)
    head = f"-----BEGIN {kind}-----"
    if fmt == "pem_set_x_per_record":
        head = f"+ local 'PRIVKEY=-----BEGIN {kind}-----"
    records = ["writing the client key to /etc/etl/client.key", f"{prefix}{head}",
               *(f"{prefix}{ln}" for ln in body), f"{prefix}-----END {kind}-----" + ("'" if "set_x" in fmt else ""),
               "key written, connecting to sftp.vendor.example"]
    item("pem_records", fmt, prov, "one log record per line of the key", records=records, secrets=body,
         keep=["sftp.vendor.example", "/etc/etl/client.key"])
body = pem_body(5)
item("pem_records", "pem_rsa_with_headers_per_record", GL + "RSA.go", "an encrypted PKCS#1 key with headers",
     records=["-----BEGIN RSA PRIVATE KEY-----", "Proc-Type: 4,ENCRYPTED", f"DEK-Info: AES-128-CBC,{rs(HEX, 32).upper()}",
              "", *body, "-----END RSA PRIVATE KEY-----", "done"], secrets=body, keep=["done"])
body = pem_body(4)
item("pem_records", "pem_one_record", GL + "privatekey.go", "the whole key in one record",
     line="private key loaded:\n-----BEGIN PRIVATE KEY-----\n" + "\n".join(body) + "\n-----END PRIVATE KEY-----",
     secrets=body)

# -- general coverage: vendor tokens, URLs, assignments, headers, command lines -----------------------
tok = "ghp_" + rs(ALNUM, 36)
item("token", "github_pat", GL + "github.go", "git clone error", line=f"fatal: could not read from https://{tok}@github.com/acme/etl.git", secrets=[tok], keep=["github.com/acme/etl.git"])
tok = "github_pat_" + rs(ALNUM, 22) + "_" + rs(ALNUM, 59)
item("token", "github_fine_grained", GL + "github.go", "env dump", line=f"GH_TOKEN={tok}", secrets=[tok], keep=["GH_TOKEN"])
tok = "glpat-" + rs(ALNUM + "_-", 20)
item("token", "gitlab_pat", GL + "gitlab.go", "header", line=f"PRIVATE-TOKEN: {tok}", secrets=[tok])
tok = "xoxb-" + rs(string.digits, 12) + "-" + rs(string.digits, 12) + "-" + rs(ALNUM, 24)
item("token", "slack_bot", GL + "slack.go", "client config", line=f"SlackClient(token='{tok}')", secrets=[tok])
tok = "sk_live_" + rs(ALNUM, 24)
item("token", "stripe_live", GL + "stripe.go", "exception", line=f"stripe.error.AuthenticationError: Invalid API Key provided: {tok}", secrets=[tok], keep=["AuthenticationError"])
tok = "sk-proj-" + rs(ALNUM + "_-", 48)
item("token", "openai_project", GL + "openai.go", "request log", line=f"Authorization: Bearer {tok}", secrets=[tok])
tok = "sk-ant-api03-" + rs(ALNUM + "_-", 93) + "AA"
item("token", "anthropic", GL + "anthropic.go", "env", line=f"ANTHROPIC_API_KEY={tok}", secrets=[tok])
tok = "AIza" + rs(ALNUM + "_-", 35)
item("token", "google_api_key", GL + "gcp.go", "url", line=f"GET https://maps.googleapis.com/maps/api/geocode/json?address=x&key={tok} 403", secrets=[tok], keep=["maps.googleapis.com"])
tok = "SG." + rs(ALNUM + "_-", 22) + "." + rs(ALNUM + "_-", 43)
item("token", "sendgrid", GL + "sendgrid.go", "client repr", line=f"SendGridAPIClient(api_key='{tok}')", secrets=[tok])
tok = "npm_" + rs(ALNUM, 36)
item("token", "npm", GL + "npm.go", "npmrc", line=f"//registry.npmjs.org/:_authToken={tok}", secrets=[tok])
tok = "pypi-AgEIcHlwaS5vcmc" + rs(ALNUM + "_-", 70)
item("token", "pypi", GL + "pypi.go", "twine env", line=f"TWINE_PASSWORD={tok}", secrets=[tok])
tok = "hf_" + rs(ALNUM, 34)
item("token", "huggingface", GL + "huggingface.go", "hub error", line=f"401 for https://huggingface.co/api/models (token {tok})", secrets=[tok])
tok = "dapi" + rs(HEX, 32)
item("token", "databricks", GL + "databricks.go", "cli config", line=f"host = https://adb-1.azuredatabricks.net\ntoken = {tok}", secrets=[tok], keep=["https://adb-1.azuredatabricks.net"])
tok = "hvs." + rs(ALNUM + "_-", 90)
item("token", "vault", GL + "hashicorp_vault.go", "env", line=f"export VAULT_TOKEN={tok}", secrets=[tok])
tok = "AKIA" + rs(string.ascii_uppercase + string.digits, 16)
sec = aws_secret()
item("token", "aws_credentials_file", GL + "aws.go", "credentials file echoed", line=f"[default]\naws_access_key_id = {tok}\naws_secret_access_key = {sec}", secrets=[tok, sec], keep=["[default]"])
tok = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + base64.urlsafe_b64encode(json.dumps({"sub": "etl", "exp": 1900000000}).encode()).decode().rstrip("=") + "." + rs(ALNUM + "_-", 43)
item("token", "jwt", GL + "jwt.go", "header dump", line=f"{{'Authorization': 'Bearer {tok}', 'Accept': '*/*'}}", secrets=[tok])
tok = "dop_v1_" + rs(HEX, 64)
item("token", "digitalocean", GL + "digitalocean.go", "env", line=f"DIGITALOCEAN_TOKEN={tok}", secrets=[tok])
tok = "glsa_" + rs(ALNUM, 32) + "_" + rs(HEX, 8)
item("token", "grafana_sa", GL + "grafana.go", "provisioning", line=f"grafana api key: {tok}", secrets=[tok])
tok = "xkeysib-" + rs(HEX, 64) + "-" + rs(ALNUM, 16)
item("token", "brevo", GL + "sendinblue.go", "client", line=f"configuration.api_key['api-key'] = '{tok}'", secrets=[tok])
tok = "AGE-SECRET-KEY-1" + rs("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)
item("token", "age", GL + "age.go", "key file", line=f"# created: 2026-11-20\n{tok}", secrets=[tok])

p = password()
item("url", "postgres_url", TH + "postgres/postgres.go", "sqlalchemy error", line=f"(psycopg2.OperationalError) could not connect: postgresql://etl:{p}@db.internal:5432/orders", secrets=[p], keep=["db.internal:5432/orders"])
p = password()
item("url", "mongodb_srv", TH + "mongodb/mongodb.go", "driver error", line=f"ServerSelectionTimeoutError: mongodb+srv://reader:{p}@cluster0.ab1cd.mongodb.net/test", secrets=[p], keep=["cluster0.ab1cd.mongodb.net"])
p = password()
item("url", "redis_url", TH + "redis/redis.go", "celery banner", line=f"- ** ---------- .> transport:   redis://:{p}@cache:6379/0", secrets=[p])
p = password()
item("url", "amqp_url", TH + "rabbitmq/rabbitmq.go", "broker error", line=f"AMQPConnectionError: amqp://etl:{p}@mq:5672/%2F", secrets=[p])
p = password()
item("url", "jdbc_sqlserver", TH + "jdbc/jdbc.go", "JDBC url", line=f"jdbc:sqlserver://db:1433;databaseName=orders;user=etl;password={p};encrypt=true", secrets=[p], keep=["databaseName=orders"])
p = password()
item("url", "snowflake_url", TH + "snowflake/snowflake.go", "sqlalchemy url", line=f"create_engine('snowflake://loader:{p}@xy12345.eu-west-1/RAW/PUBLIC')", secrets=[p], keep=["xy12345.eu-west-1"])
p = password()
item("url", "oracle_ezconnect", "Oracle EZConnect docs user/password@host:port", "cx_Oracle dsn", line=f"connecting etl/{p}@dbhost:1521/ORCLPDB1", secrets=[p], keep=["dbhost:1521/ORCLPDB1"])
tail = rs(ALNUM, 24)
item("url", "slack_webhook", GL + "slack.go (slack-webhook-url)", "notifier error", line=f"POST https://hooks.slack.com/services/T{rs(string.ascii_uppercase + string.digits, 8)}/B{rs(string.ascii_uppercase + string.digits, 10)}/{tail} 404", secrets=[tail])

p = password()
item("assignment", "env_password", DS + "tests/plugins/keyword_test.py", "env", line=f"DB_PASSWORD={p}", secrets=[p], keep=["DB_PASSWORD"])
p = password()
item("assignment", "yaml_password", DS + "tests/plugins/keyword_test.py", "yaml", line=f"warehouse:\n  user: etl\n  password: \"{p}\"", secrets=[p])
p = password()
item("assignment", "json_client_secret", GL + "generic.go", "json", line=f'{{"client_id": "etl-app", "client_secret": "{p}"}}', secrets=[p], keep=["etl-app"])
p = password()
item("assignment", "kwargs_repr", DS + "tests/plugins/keyword_test.py", "function call repr", line=f"connect(host='db', user='etl', password='{p}', dbname='orders')", secrets=[p], keep=["orders"])
p = rs(ALNUM, 40)
item("assignment", "django_secret_key", GL + "django.go", "settings dump", line=f"SECRET_KEY = '{p}'", secrets=[p])
p = rs(B64, 86) + "=="
item("assignment", "azure_storage_connstr", TH + "azure_storage/storage.go", "connection string", line=f"DefaultEndpointsProtocol=https;AccountName=lake;AccountKey={p};EndpointSuffix=core.windows.net", secrets=[p], keep=["AccountName=lake"])
p = rs(ALNUM + "%", 44)
item("assignment", "azure_sas_sig", TH + "azuresastoken/azuresastoken.go", "blob url", line=f"https://lake.blob.core.windows.net/raw/a.csv?sv=2022-11-02&se=2026-12-01&sp=r&sig={p}", secrets=[p], keep=["lake.blob.core.windows.net"])
p = password()
item("assignment", "sql_identified_by", GL + "database.go", "sql error", line=f"ORA-01017 while running: ALTER USER etl IDENTIFIED BY \"{p}\"", secrets=[p], keep=["ORA-01017"])
p = password()
item("assignment", "netrc", "GNU inetutils .netrc format", "netrc", line=f"machine api.vendor.example login etl password {p}", secrets=[p], keep=["api.vendor.example"])
b = base64.b64encode(f"etl:{password()}".encode()).decode()
item("header", "basic_auth_header", "RFC 7617", "http.client debug", line=f"send: b'GET /v2 HTTP/1.1\\r\\nHost: api.vendor.example\\r\\nAuthorization: Basic {b}\\r\\n'", secrets=[b])
p = rs(ALNUM, 32)
item("header", "x_api_key_header", GL + "generic.go", "header dict", line=f"headers={{'x-api-key': '{p}', 'content-type': 'application/json'}}", secrets=[p])
p = password()
item("command", "curl_u_shell", GL + "curl.go", "set -x", line=f"+ curl -sS -u etl:{p} https://api.vendor.example/export", secrets=[p])
p = password()
item("command", "mysql_p_attached_shell", "MySQL docs -p", "set -x", line=f"+ mysql -h db -u etl -p{p} orders", secrets=[p])
p = password()
item("command", "psql_long_flag", "PostgreSQL docs", "command line", line=f"pg_restore --dbname=orders --password={p} dump.sql", secrets=[p])

# -- look-alikes: must survive ----------------------------------------------------------------------
LOOKS: list[dict] = []


def look(shape: str, line: str, keep: list[str], provenance: str) -> None:
    for k in keep:
        assert k in line, (shape, k)
    LOOKS.append({"id": f"n{len(LOOKS) + 1:03d}", "shape": shape, "provenance": provenance, "line": line,
                  "keep": keep, "split": split_of("lookalike:" + shape)})


look("spark_conf_non_secret_pairs", "[('spark.app.name', 'orders-etl'), ('spark.executor.memory', '4g'), "
     "('spark.sql.shuffle.partitions', '200')]", ["orders-etl", "4g", "200"], SPARK)
look("s3a_endpoint_pair", "('spark.hadoop.fs.s3a.endpoint', 's3.eu-west-1.amazonaws.com')", ["s3.eu-west-1.amazonaws.com"], SPARK)
look("argv_without_secret", "Command '['dbt', 'run', '-s', 'orders', '--target', 'prod']' returned non-zero exit status 1.",
     ["orders", "prod", "dbt"], CPE)
look("mysql_port_flag", "Command '['mysql', '-h', 'db', '-P', '3306', '-u', 'etl', 'orders']' returned non-zero exit status 1.",
     ["3306", "orders"], "MySQL docs: -P is the port")
look("mysql_p_database", "+ mysql -u etl -p orders < load.sql", ["orders", "load.sql"], "MySQL docs: -p alone prompts")
look("tar_p_flag", "Command '['tar', '-p', '-xzf', 'bundle.tgz']' returned non-zero exit status 2.", ["bundle.tgz"], CPE)
look("auth_tuple_of_names", "    auth=(settings.user, settings.password)", ["settings.user", "settings.password"], TB)
look("auth_env_lookup", "    r = requests.get(url, auth=(os.environ['API_USER'], os.environ['API_PASS']))",
     ["os.environ['API_USER']", "os.environ['API_PASS']"], TB)
look("pem_public_key_records", "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx7r\n-----END PUBLIC KEY-----",
     ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx7r"], GL + "privatekey.go (public keys are not secrets)")
look("certificate_records", "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n-----END CERTIFICATE-----",
     ["MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa"], "RFC 7468")
look("password_column", "psycopg2.errors.UndefinedColumn: column \"password_hash\" does not exist", ["password_hash"],
     DS + "tests/plugins/keyword_test.py")
look("secret_name", "secret_name='prod/warehouse' not found in region eu-west-1", ["prod/warehouse"], GL + "aws.go")
look("placeholder", "password: ${DB_PASSWORD}", ["${DB_PASSWORD}"], DS + "tests/plugins/keyword_test.py")
look("git_sha", "HEAD is now at 3f5669d54579033ec6a1b1c9913510e7e42963cb fix retries", ["3f5669d54579033ec6a1b1c9913510e7e42963cb"],
     "git output")
look("uuid_run_id", "Flow run 0b7c2c1e-4a2b-4c1d-9f3e-8a7b6c5d4e3f failed", ["0b7c2c1e-4a2b-4c1d-9f3e-8a7b6c5d4e3f"], "Prefect logs")
look("keytool_list", "Command '['keytool', '-list', '-keystore', 'truststore.jks']' returned non-zero exit status 1.",
     ["truststore.jks"], "Java keytool docs")

if __name__ == "__main__":
    with (HERE / "corpus.jsonl").open("w") as fh:
        for entry in ITEMS:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    with (HERE / "lookalikes.jsonl").open("w") as fh:
        for entry in LOOKS:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
    formats = {e["format"] for e in ITEMS}
    frozen = {e["format"] for e in ITEMS if e["split"] == "frozen"}
    print(f"{len(ITEMS)} items, {len(formats)} formats ({len(frozen)} frozen), {len(LOOKS)} look-alikes")
