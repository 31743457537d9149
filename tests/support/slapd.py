"""A throwaway OpenLDAP slapd: cn=config built with slapadd, LDAPS and StartTLS, test data."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .certs import ServerCert, make_server_cert
from .process import ServiceProcess, ServiceStartError, free_port, start_process
from .tools import system_bin

BASE_DN = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PASSWORD = "directory-admin-pw"
# The service account the authenticators search with (defined in tests/data/*.ldif).
SERVICE_DN = f"cn=hub-reader,ou=services,{BASE_DN}"
SERVICE_PASSWORD = "hub-reader-pw"


@dataclass(frozen=True)
class Directory:
    """A running slapd: where it listens, how to bind, and the CA that signs its cert."""

    host: str
    port: int
    ldaps_port: int
    base_dn: str
    admin_dn: str
    admin_password: str
    service_dn: str
    service_password: str
    tls: ServerCert

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:{self.ldaps_port}"

    def user_dn(self, uid: str) -> str:
        return f"uid={uid},ou=people,{self.base_dn}"

    def group_dn(self, cn: str) -> str:
        return f"cn={cn},ou=groups,{self.base_dn}"


def _config_ldif(workdir: Path, tls: ServerCert, admin_hash: str, anonymous_read: bool) -> str:
    # Anonymous clients may only authenticate; reading needs a bind unless a test asks
    # for an open directory (the authenticators' anonymous-search option).
    reader = "by * read" if anonymous_read else "by users read by * none"
    return f"""\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {workdir}/slapd.pid
olcArgsFile: {workdir}/slapd.args
olcLogLevel: stats
olcTLSCACertificateFile: {tls.ca_cert}
olcTLSCertificateFile: {tls.cert}
olcTLSCertificateKeyFile: {tls.key}

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: memberof
olcModuleLoad: refint

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/nis.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {BASE_DN}
olcRootDN: {ADMIN_DN}
olcRootPW: {admin_hash}
olcDbDirectory: {workdir}/data
olcDbMaxSize: 67108864
olcDbIndex: objectClass eq
olcDbIndex: uid,memberUid,member,uniqueMember,cn eq
olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {{1}}to * {reader}

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={{1}}refint,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {{1}}refint
olcRefintAttribute: memberof
olcRefintAttribute: member
olcRefintAttribute: uniqueMember
"""


def _run(argv: Sequence[str], what: str, *, input_text: str | None = None) -> str:
    done = subprocess.run(
        list(argv), input=input_text, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise ServiceStartError(f"{what} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def start_slapd(
    workdir: Path,
    ldif_files: Sequence[Path],
    *,
    anonymous_read: bool = False,
    tls: ServerCert | None = None,
) -> tuple[ServiceProcess, Directory]:
    """Configure and start slapd in ``workdir``, then load ``ldif_files`` in order.

    Entries are added with ``ldapadd`` while slapd runs, not with ``slapadd``, so that
    the memberof overlay fills ``memberOf`` as it would in production. Pass ``tls`` to
    share a certificate (and so one CA file) with another slapd, e.g. a replica.
    """
    slapadd = system_bin("slapadd", "slapd")
    slappasswd = system_bin("slappasswd", "slapd")
    ldapadd = system_bin("ldapadd", "ldap-utils")

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "slapd.d").mkdir()
    (workdir / "data").mkdir()
    tls = tls or make_server_cert(workdir / "tls")
    admin_hash = _run([slappasswd, "-s", ADMIN_PASSWORD], "slappasswd").strip()
    config = workdir / "config.ldif"
    config.write_text(_config_ldif(workdir, tls, admin_hash, anonymous_read))
    _run(
        [slapadd, "-n", "0", "-F", str(workdir / "slapd.d"), "-l", str(config)],
        "slapadd cn=config",
    )

    port, ldaps_port = free_port(), free_port()
    proc = launch_slapd(workdir, port, ldaps_port)
    password_file = workdir / "admin.pw"
    password_file.write_text(ADMIN_PASSWORD)  # ldapadd -y reads it without a newline
    password_file.chmod(0o600)
    for ldif in ldif_files:
        try:
            _run(
                [
                    ldapadd,
                    "-x",
                    "-H",
                    f"ldap://127.0.0.1:{port}",
                    "-D",
                    ADMIN_DN,
                    "-y",
                    str(password_file),
                    "-f",
                    str(ldif),
                ],
                f"ldapadd {ldif.name}",
            )
        except ServiceStartError:
            proc.stop()
            raise
    return proc, Directory(
        host="127.0.0.1",
        port=port,
        ldaps_port=ldaps_port,
        base_dn=BASE_DN,
        admin_dn=ADMIN_DN,
        admin_password=ADMIN_PASSWORD,
        service_dn=SERVICE_DN,
        service_password=SERVICE_PASSWORD,
        tls=tls,
    )


def launch_slapd(workdir: Path, port: int, ldaps_port: int) -> ServiceProcess:
    """Run the slapd configured in ``workdir`` on these ports; return once it answers."""
    slapd = system_bin("slapd", "slapd")
    ldapsearch = system_bin("ldapsearch", "ldap-utils")
    urls = f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{ldaps_port}/"
    # -d keeps slapd in the foreground, so the PID we hold is slapd's own.
    proc = start_process(
        "slapd",
        [slapd, "-d", "256", "-F", str(workdir / "slapd.d"), "-h", urls],
        log_path=workdir / "slapd.log",
    )

    def answers() -> bool:
        probe = subprocess.run(
            [
                ldapsearch,
                "-x",
                "-H",
                f"ldap://127.0.0.1:{port}",
                "-b",
                "",
                "-s",
                "base",
                "-o",
                "nettimeout=1",
                "namingContexts",
            ],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return probe.returncode == 0

    proc.wait_until(answers, timeout=20, what="answering LDAP searches")
    return proc


@dataclass
class Slapd:
    """A slapd of one test's own that it may stop, start again, or freeze.

    The data and the ports stay the same across restarts, as for a directory an admin
    restarts; ``proc`` is always the current process.
    """

    workdir: Path
    directory: Directory
    proc: ServiceProcess

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM, and wait until the PID is gone (the ports are free again)."""
        self.proc.stop()

    def start(self) -> None:
        if self.proc.running():
            raise RuntimeError("slapd is still running; stop it first")
        self.proc = launch_slapd(self.workdir, self.directory.port, self.directory.ldaps_port)

    def restart(self) -> None:
        self.stop()
        self.start()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP slapd: it keeps its sockets and accepts connections, answers nothing.

        Always continued (SIGCONT) on the way out, whatever happens inside.
        """
        os.kill(self.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.pid, signal.SIGCONT)


@contextlib.contextmanager
def own_slapd(
    workdir: Path, ldif_files: Sequence[Path], *, tls: ServerCert | None = None
) -> Iterator[Slapd]:
    """A :class:`Slapd` for the block; whatever process it runs at the end is stopped."""
    proc, directory = start_slapd(workdir, ldif_files, tls=tls)
    server = Slapd(workdir=workdir, directory=directory, proc=proc)
    try:
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGCONT)  # a stopped process would ignore SIGTERM
        server.stop()
