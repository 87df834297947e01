"""The embedded PostgreSQL + PostGIS cluster that the platform runs when no server is configured.

The cluster lives in ``<data_dir>/pg`` (git-ignored), listens on 127.0.0.1 on a free port chosen when it
first starts, and uses password authentication with a password generated at ``initdb`` time and kept in
the cluster folder (mode 0600). ``initdb`` refuses to run as root, so when the platform runs as root the
cluster is owned and run by an unprivileged operating-system user (``Settings.db_os_user``, created if it
does not exist).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from gis.errors import ConfigError, DatabaseUnavailable
from gis.settings import Settings

SUPERUSER = "gis"


@dataclass(frozen=True)
class PgBinaries:
    """Paths of the PostgreSQL server programs used by the embedded cluster."""

    bindir: Path
    version: str

    def __getitem__(self, name: str) -> str:
        return str(self.bindir / name)


def find_binaries() -> PgBinaries:
    """Find a PostgreSQL server installation that has PostGIS.

    Returns
    -------
    PgBinaries
        The newest Debian-style installation (``/usr/lib/postgresql/<v>/bin``) with the PostGIS
        extension, else ``initdb`` on the PATH.

    Raises
    ------
    DatabaseUnavailable
        When no PostgreSQL server programs are installed.
    """
    candidates = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        bindir = Path(initdb).parent
        version = bindir.parent.name
        has_postgis = bool(glob.glob(f"/usr/share/postgresql/{version}/extension/postgis.control"))
        with contextlib.suppress(ValueError):
            candidates.append((has_postgis, float(version), bindir, version))
    if candidates:
        candidates.sort(reverse=True)
        has_postgis, _, bindir, version = candidates[0]
        if not has_postgis:
            raise DatabaseUnavailable(
                f"PostgreSQL {version} is installed but PostGIS is not: install the Debian package "
                f"postgresql-{version}-postgis-3 (the README's commands do this)."
            )
        return PgBinaries(bindir, version)
    initdb = shutil.which("initdb")
    if initdb:
        return PgBinaries(Path(initdb).resolve().parent, "unknown")
    raise DatabaseUnavailable(
        "No PostgreSQL server is installed for the embedded database: install the Debian packages "
        "postgresql-15 and postgresql-15-postgis-3 (the README's commands do this), or set DATABASE_URL."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


class EmbeddedCluster:
    """A PostgreSQL cluster in the project's data folder.

    Parameters
    ----------
    settings : Settings
        Where the cluster lives (``settings.embedded_dir``), its database name and OS user.

    Examples
    --------
    >>> cluster = EmbeddedCluster(Settings())  # doctest: +SKIP
    >>> cluster.start()  # doctest: +SKIP
    >>> cluster.url  # doctest: +SKIP
    'postgresql://gis:...@127.0.0.1:54123/gis'
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.embedded_dir).resolve()
        self.pgdata = self.root / "data"
        self.rundir = self.root / "run"
        self.logfile = self.root / "postgresql.log"
        self.password_file = self.root / "password"
        self.port_file = self.root / "port"

    # -- identity ---------------------------------------------------------------------------------
    @property
    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _os_user(self) -> pwd.struct_passwd | None:
        """The unprivileged user that runs the cluster when we are root, created on first use."""
        if not self._as_root:
            return None
        name = self.settings.db_os_user
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        proc = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
        )
        if proc.returncode not in (0, 9):  # 9: the user exists (a concurrent creation)
            raise ConfigError(
                f"Cannot create the operating-system user {name!r} that runs the embedded database "
                f"(initdb refuses root): {proc.stderr.strip()}"
            )
        return pwd.getpwnam(name)

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        user = self._os_user()
        kwargs: dict = {"capture_output": True, "text": True}
        if user is not None:
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
            kwargs["env"] = {**os.environ, "HOME": str(self.root), "USER": user.pw_name}
        proc = subprocess.run(args, cwd=str(self.root), **kwargs)
        if check and proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise DatabaseUnavailable(
                f"The embedded database command {Path(args[0]).name} failed: " + " | ".join(tail)
                + f" (see {self.logfile})"
            )
        return proc

    def _chown(self, path: Path) -> None:
        user = self._os_user()
        if user is not None:
            os.chown(path, user.pw_uid, user.pw_gid)

    def reachable(self) -> bool:
        """True when the OS user that runs the cluster can reach its folder (always true if not root)."""
        user = self._os_user()
        if user is None:
            return True
        probe = self.root
        while not probe.exists():
            probe = probe.parent
        return subprocess.run(
            ["test", "-x", str(probe)], user=user.pw_uid, group=user.pw_gid, extra_groups=[]
        ).returncode == 0

    def _check_reachable(self) -> None:
        """The OS user must be able to traverse to the cluster folder."""
        user = self._os_user()
        if user is None:
            return
        probe = subprocess.run(
            ["test", "-x", str(self.root)], user=user.pw_uid, group=user.pw_gid, extra_groups=[]
        )
        if probe.returncode != 0:
            raise ConfigError(
                f"The embedded database runs as the unprivileged user {user.pw_name!r} (PostgreSQL "
                f"refuses root), who cannot reach {self.root}: a parent folder is not searchable. "
                "Set GIS_DATA_DIR to a folder that user can reach, or set DATABASE_URL."
            )

    @contextlib.contextmanager
    def _lock(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- state ------------------------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        """True when ``initdb`` has run in the cluster folder."""
        return (self.pgdata / "PG_VERSION").exists()

    @property
    def port(self) -> int | None:
        """The port the cluster listens on (None before the first start)."""
        try:
            return int(self.port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    @property
    def url(self) -> str:
        """The connection URL of the cluster's database."""
        if not self.initialised or self.port is None:
            raise DatabaseUnavailable("The embedded database has not been started yet: run `gis db up`.")
        return (
            f"postgresql://{SUPERUSER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/"
            f"{self.settings.db_name}"
        )

    def running(self) -> bool:
        """True when the cluster's server process is running."""
        if not self.initialised:
            return False
        bins = find_binaries()
        return self._run([bins["pg_ctl"], "status", "-D", str(self.pgdata)], check=False).returncode == 0

    # -- lifecycle --------------------------------------------------------------------------------
    def init(self) -> None:
        """Create the cluster (``initdb``) if it does not exist yet."""
        if self.initialised:
            return
        bins = find_binaries()
        self.root.mkdir(parents=True, exist_ok=True)
        self._chown(self.root)
        self._check_reachable()
        if self.pgdata.exists():  # a half-made earlier attempt: start over
            shutil.rmtree(self.pgdata)
        self.rundir.mkdir(exist_ok=True)
        self._chown(self.rundir)
        self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
        os.chmod(self.password_file, 0o600)
        self._chown(self.password_file)
        self._run(
            [
                bins["initdb"], "-D", str(self.pgdata), "-U", SUPERUSER, "-E", "UTF8",
                "--locale=C.UTF-8", "--auth=scram-sha-256", f"--pwfile={self.password_file}",
            ]
        )
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# set by gis (embedded cluster)\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.rundir}'\n"
                "shared_buffers = '256MB'\n"
                "maintenance_work_mem = '512MB'\n"
                "max_wal_size = '2GB'\n"
                "logging_collector = off\n"
            )

    def start(self, timeout: float = 60.0) -> None:
        """Initialise if needed and start the cluster; no-op when it runs already."""
        with self._lock():
            self.init()
            if self.running():
                return
            bins = find_binaries()
            port = self.port
            if port is None or _port_in_use(port):
                port = _free_port()
                self.port_file.write_text(f"{port}\n")
            if not self.logfile.exists():
                self.logfile.touch()
            self._chown(self.logfile)
            self._run(
                [
                    bins["pg_ctl"], "start", "-D", str(self.pgdata), "-l", str(self.logfile),
                    "-w", "-t", str(int(timeout)), "-o", f"-p {port}",
                ]
            )
            self._ensure_database()

    def stop(self) -> bool:
        """Stop the cluster. Returns False when it was not running."""
        with self._lock():
            if not self.running():
                return False
            bins = find_binaries()
            self._run([bins["pg_ctl"], "stop", "-D", str(self.pgdata), "-m", "fast", "-w"])
            return True

    def _ensure_database(self) -> None:
        import psycopg
        from psycopg import sql

        admin_url = self.url.rsplit("/", 1)[0] + "/postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise DatabaseUnavailable(
                        f"The embedded database started but does not accept connections (see {self.logfile})."
                    ) from None
                time.sleep(0.2)
        with conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.settings.db_name,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.settings.db_name)))
