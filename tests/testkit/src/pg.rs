//! A throwaway PostgreSQL cluster for the tests: `initdb` into a temporary folder, a server
//! listening only on a Unix socket in that folder, stopped and deleted when dropped.
//!
//! The server binaries are found with `pg_config --bindir`, then under
//! `/usr/lib/postgresql/*/bin`, then on `PATH`. PostgreSQL refuses to run as root: as root the
//! cluster belongs to the `postgres` user and its commands run through `runuser`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running throwaway cluster.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as: Option<&'static str>,
    /// The server's options, for every start.
    options: std::sync::Mutex<String>,
}

fn bindir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_default()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgCluster {
    /// Creates and starts a cluster (a few seconds), or panics saying what is missing.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// A cluster that also listens on 127.0.0.1 with TLS only (a certificate for `127.0.0.1`
    /// signed by its own CA, [`PgCluster::ca_cert`]); plain TCP connections are rejected.
    pub fn start_tls() -> Self {
        Self::start_with(true)
    }

    /// What the server logged (a TLS cluster logs each connection, with its TLS state).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The CA that signed a TLS cluster's certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The URL of database `db` over TCP with `sslmode`, trusting `root_cert` when given.
    pub fn tcp_url(&self, db: &str, sslmode: &str, root_cert: Option<&Path>) -> String {
        let mut url = format!(
            "postgres://postgres@127.0.0.1:{}/{db}?sslmode={sslmode}",
            self.port
        );
        if let Some(ca) = root_cert {
            url.push_str(&format!("&sslrootcert={}", ca.display()));
        }
        url
    }

    /// Writes a throwaway CA (`ca.pem`, `ca.key`) and a server certificate it signed for
    /// `127.0.0.1` and `localhost` (`server.pem`, `server.key`) into `dir`.
    pub fn make_certificates(dir: &Path) {
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=host test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
    }

    fn start_with(tls: bool) -> Self {
        let bin = bindir();
        let dir = tempfile::Builder::new()
            .prefix("host-pg-")
            .tempdir()
            .expect("temp dir");
        if tls {
            Self::make_certificates(dir.path());
        }
        let run_as = is_root().then_some("postgres");
        if run_as.is_some() {
            let status = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "cannot give the cluster to `postgres`");
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cluster = Self {
            dir,
            bin,
            port,
            run_as,
            options: std::sync::Mutex::new(String::new()),
        };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let mut options = format!(
            "-k {} -p {} -c fsync=off -c max_connections=600 -c shared_buffers=16MB",
            cluster.socket_dir().display(),
            port
        );
        if tls {
            let d = cluster.dir.path();
            options.push_str(&format!(
                " -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c log_connections=on",
                d.join("server.pem").display(),
                d.join("server.key").display()
            ));
            // TCP only with TLS.
            let hba = data.join("pg_hba.conf");
            let rules = std::fs::read_to_string(&hba).unwrap();
            std::fs::write(
                &hba,
                format!("hostnossl all all 127.0.0.1/32 reject\n{rules}"),
            )
            .unwrap();
        } else {
            options.push_str(" -c listen_addresses=''");
        }
        *cluster.options.lock().unwrap() = options;
        cluster.start_again();
        cluster.watch();
        cluster
    }

    /// Stops the cluster and deletes its folder when this process ends, however it ends (a
    /// cluster kept in a `static` is never dropped): a shell polls for the process.
    fn watch(&self) {
        let pg_ctl = if self.bin.join("pg_ctl").exists() {
            self.bin.join("pg_ctl")
        } else {
            PathBuf::from("pg_ctl")
        };
        let stop = match self.run_as {
            Some(user) => format!("runuser -u {user} -- '{}'", pg_ctl.display()),
            None => format!("'{}'", pg_ctl.display()),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data_dir().display(),
            dir = self.dir.path().display(),
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The folder of the server's socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let program = if path.exists() {
            path
        } else {
            PathBuf::from(program)
        };
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} (is PostgreSQL installed?): {e}"));
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stops the server (fast shutdown: sessions are ended), as a restart or an outage does.
    pub fn stop(&self) {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }

    /// Starts the server (again, after [`PgCluster::stop`]) with its settings.
    pub fn start_again(&self) {
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        let options = self.options.lock().unwrap().clone();
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Creates a database.
    pub fn create_db(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
    }

    /// The connection URL of database `db` (over the Unix socket, as `postgres`).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@localhost:{}/{db}?host={}",
            self.port,
            self.socket_dir().display()
        )
    }

    /// Runs SQL in `db` with psql; returns its unaligned output (`-At`).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.run(
            "psql",
            &[
                "-h",
                self.socket_dir().to_str().unwrap(),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ],
        )
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}
